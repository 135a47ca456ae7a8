#include "train/run_dir.h"

#include "engine/io/json.h"
#include "engine/io/write_steps.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/error.h"

namespace fs = std::filesystem;

namespace sg::data {

std::string create_run_dir(const std::string& outdir, const std::string& name) {
  SG_CHECK(!name.empty() && name.find('/') == std::string::npos, "create_run_dir",
           "run name must be non-empty and contain no '/': '", name, "'");
  std::error_code ec;
  fs::create_directories(outdir, ec);
  SG_CHECK(!ec && fs::is_directory(outdir), "create_run_dir", "cannot create output directory '", outdir,
           "': ", ec ? ec.message() : "not a directory");
  int64_t largest = -1;
  for (const auto& entry : fs::directory_iterator(outdir, ec)) {
    const std::string n = entry.path().filename().string();
    size_t digits = 0;
    while (digits < n.size() && n[digits] >= '0' && n[digits] <= '9') ++digits;
    if (digits == 0 || digits > 15) continue;
    largest = std::max<int64_t>(largest, std::stoll(n.substr(0, digits)));
  }
  SG_CHECK(!ec, "create_run_dir", "cannot list '", outdir, "': ", ec.message());
  // Another process may take the same number between the scan and the mkdir: try the next.
  for (int64_t id = largest + 1; id < largest + 1000; ++id) {
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "%05lld", (long long)id);
    const fs::path dir = fs::path(outdir) / (std::string(prefix) + "-" + name);
    if (fs::create_directory(dir, ec)) return dir.string();
    SG_CHECK(!ec || ec == std::errc::file_exists, "create_run_dir", "cannot create '", dir.string(),
             "': ", ec.message());
  }
  throw Error(str("create_run_dir: cannot find a free run number in '", outdir, "'"));
}

void write_file_atomic(const std::string& path, const void* data, size_t nbytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SG_CHECK(fd >= 0, "write_file_atomic", "cannot open '", tmp, "' for writing: ", std::strerror(errno));
  io::write_step("open", tmp);
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(str("write_file_atomic: ", what, " '", tmp, "' failed: ", std::strerror(err)));
  };
  const char* p = static_cast<const char*>(data);
  size_t left = nbytes;
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("writing");
    }
    p += w;
    left -= (size_t)w;
  }
  io::write_step("write-data", tmp);
  if (::fsync(fd) != 0) fail("fsync of");
  io::write_step("fsync", tmp);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(str("write_file_atomic: closing '", tmp, "' failed: ", std::strerror(err)));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(str("write_file_atomic: renaming '", tmp, "' to '", path, "' failed: ", std::strerror(err)));
  }
  io::write_step("rename", path);
}

void write_text_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, text.data(), text.size());
}

std::string json_escape(const std::string& s) { return io::json_escape(s); }

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

JsonLog::JsonLog(const std::string& path) : path_(path) {
  f_ = std::fopen(path.c_str(), "a");
  SG_CHECK(f_ != nullptr, "JsonLog", "cannot open '", path, "' for appending: ", std::strerror(errno));
}

JsonLog::~JsonLog() {
  if (f_) std::fclose(f_);
}

void JsonLog::write(const std::vector<std::pair<std::string, double>>& numbers,
                    const std::vector<std::pair<std::string, std::string>>& strings) {
  std::string line = "{";
  bool first = true;
  auto key = [&](const std::string& k) {
    if (!first) line += ", ";
    first = false;
    line += '"';
    line += json_escape(k);
    line += "\": ";
  };
  for (const auto& [k, v] : numbers) {
    key(k);
    line += json_number(v);
  }
  for (const auto& [k, v] : strings) {
    key(k);
    line += '"';
    line += json_escape(v);
    line += '"';
  }
  line += "}\n";
  std::lock_guard<std::mutex> lock(mu_);
  const bool ok = std::fwrite(line.data(), 1, line.size(), f_) == line.size() && std::fflush(f_) == 0;
  SG_CHECK(ok, "JsonLog", "writing '", path_, "' failed: ", std::strerror(errno));
}

}  // namespace sg::data
