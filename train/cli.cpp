#include "train/cli.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "engine/error.h"

namespace sg::cli {

bool Parser::parse(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf("%s", help().c_str());
      return false;
    }
    SG_CHECK(a.rfind("--", 0) == 0, program_, "unexpected argument '", a, "' (see --help)");
    std::string name = a.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const Flag* f = nullptr;
    for (auto& x : flags_)
      if (x.name == name) f = &x;
    SG_CHECK(f != nullptr, program_, "unknown option --", name, " (see --help)");
    if (!has_value) {
      if (f->boolean)
        value.push_back('1');  // (not value = "1": a GCC 12 -Wrestrict false positive)
      else {
        SG_CHECK(i + 1 < argc, program_, "--", name, " needs a value");
        value = argv[++i];
      }
    }
    f->set(value);
  }
  return true;
}

std::string Parser::help() const {
  std::ostringstream s;
  s << "usage: " << program_ << " [options]\n\n" << summary_ << "\n\noptions:\n";
  for (auto& f : flags_) {
    std::string left = "  --" + f.name + (f.boolean ? "" : " VALUE");
    s << left << std::string(left.size() < 24 ? 24 - left.size() : 1, ' ') << f.help;
    if (!f.default_text.empty()) s << " (default: " << f.default_text << ")";
    s << "\n";
  }
  s << "  --help                "
    << "print this help and exit\n";
  return s.str();
}

int64_t to_int(const std::string& flag, const std::string& v) {
  try {
    size_t n = 0;
    long long r = std::stoll(v, &n);
    if (n == v.size()) return r;
  } catch (...) {
  }
  throw Error(str("--", flag, ": expected an integer, got '", v, "'"));
}

double to_double(const std::string& flag, const std::string& v) {
  try {
    size_t n = 0;
    double r = std::stod(v, &n);
    if (n == v.size()) return r;
  } catch (...) {
  }
  throw Error(str("--", flag, ": expected a number, got '", v, "'"));
}

int64_t to_int_in(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
  const int64_t r = to_int(flag, v);
  if (r < lo || r > hi) throw Error(str("--", flag, ": expected an integer in [", lo, ", ", hi, "], got '", v, "'"));
  return r;
}

double to_double_in(const std::string& flag, const std::string& v, double lo, double hi) {
  const double r = to_double(flag, v);
  if (!std::isfinite(r) || r < lo || r > hi)
    throw Error(str("--", flag, ": expected a finite number in [", lo, ", ", hi, "], got '", v, "'"));
  return r;
}

bool to_bool(const std::string& flag, const std::string& v) {
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "no") return false;
  throw Error(str("--", flag, ": expected 0/1/true/false, got '", v, "'"));
}

std::vector<int64_t> to_range_list(const std::string& flag, const std::string& v) {
  std::vector<int64_t> r;
  std::stringstream ss(v);
  std::string part;
  while (std::getline(ss, part, ',')) {
    auto dash = part.find('-', 1);
    if (dash == std::string::npos) {
      r.push_back(to_int(flag, part));
    } else {
      int64_t a = to_int(flag, part.substr(0, dash)), b = to_int(flag, part.substr(dash + 1));
      SG_CHECK(a <= b && b - a < 100000, "--" + flag, "bad range '", part, "'");
      for (int64_t x = a; x <= b; ++x) r.push_back(x);
    }
  }
  SG_CHECK(!r.empty(), "--" + flag, "empty list '", v, "'");
  return r;
}

}  // namespace sg::cli
