// A small command-line parser shared by the programs: --name value or --name=value;
// boolean flags accept --flag, --flag=1/0/true/false. Unknown flags are errors.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sg::cli {

struct Flag {
  std::string name, help, default_text;
  bool boolean = false;
  std::function<void(const std::string&)> set;
};

class Parser {
 public:
  Parser(std::string program, std::string summary) : program_(std::move(program)), summary_(std::move(summary)) {}
  void add(Flag f) { flags_.push_back(std::move(f)); }
  // Returns false after printing --help. Throws sg::Error on bad flags or values.
  bool parse(int argc, char** argv);
  std::string help() const;

 private:
  std::string program_, summary_;
  std::vector<Flag> flags_;
};

// Value converters with errors naming the flag.
int64_t to_int(const std::string& flag, const std::string& v);
double to_double(const std::string& flag, const std::string& v);
bool to_bool(const std::string& flag, const std::string& v);
// The same, checked against a range; the error names the flag, the value and the range.
int64_t to_int_in(const std::string& flag, const std::string& v, int64_t lo, int64_t hi);
// A finite number in [lo, hi] (inf and nan are refused).
double to_double_in(const std::string& flag, const std::string& v, double lo, double hi);
// "0-63" or "1,5,9" or "0-3,8" -> numbers.
std::vector<int64_t> to_range_list(const std::string& flag, const std::string& v);

}  // namespace sg::cli
