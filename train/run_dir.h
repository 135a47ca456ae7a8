// Run directories and the files a training run writes into them.
//
//   create_run_dir("runs", "fmnist-32")  ->  "runs/00003-fmnist-32"
//     (one more than the largest numeric prefix already in runs/, stylegan2-ada style;
//      the first run is 00000)
//   write_file_atomic / write_text_atomic: path.tmp, fsync, rename over path — a crash
//     leaves either the old file or the new one, never half of one.
//   JsonLog: one JSON object per line (JSON lines), flushed after every record.
#pragma once
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sg::data {

// Creates outdir (and parents) if needed, then outdir/NNNNN-name; returns its path.
// sg::Error on an empty name, a name with '/', or when the directory cannot be created.
std::string create_run_dir(const std::string& outdir, const std::string& name);

// Writes bytes to path atomically (path + ".tmp", fsync, rename). sg::Error naming the
// file on failure; the tmp file is removed then.
void write_file_atomic(const std::string& path, const void* data, size_t nbytes);
void write_text_atomic(const std::string& path, const std::string& text);

// Escapes a string for use inside JSON double quotes (the quotes are not added):
// " \ and control characters; other bytes (UTF-8 included) pass through.
std::string json_escape(const std::string& s);

// Formats a number for JSON: shortest round-trip form; NaN and infinities become null.
std::string json_number(double v);

class JsonLog {
 public:
  // Opens path for appending (created if missing). sg::Error naming the file on failure.
  explicit JsonLog(const std::string& path);
  ~JsonLog();
  JsonLog(const JsonLog&) = delete;
  JsonLog& operator=(const JsonLog&) = delete;

  // Appends {"k": number, ..., "s": "string", ...} and a newline, then flushes.
  // Thread-safe.
  void write(const std::vector<std::pair<std::string, double>>& numbers,
             const std::vector<std::pair<std::string, std::string>>& strings = {});
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  std::mutex mu_;
};

}  // namespace sg::data
