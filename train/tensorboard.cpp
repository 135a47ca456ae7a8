#include "train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>

#include "engine/error.h"

namespace sg::tensorboard {

namespace {

// ---- CRC32C -------------------------------------------------------------------------------
constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

// ---- protobuf wire format: just what the Event message needs --------------------------------
enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back((char)(uint8_t)(v | 0x80));
    v >>= 7;
  }
  out.push_back((char)(uint8_t)v);
}
void put_key(std::string& out, uint32_t field, Wire wire) { put_varint(out, (uint64_t)field << 3 | wire); }
template <class T>
void put_le(std::string& out, T bits) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back((char)(uint8_t)(bits >> (8 * i)));
}
void put_bytes(std::string& out, uint32_t field, const void* data, size_t n) {
  put_key(out, field, kBytes);
  put_varint(out, n);
  out.append(static_cast<const char*>(data), n);
}
void put_bytes(std::string& out, uint32_t field, const std::string& s) { put_bytes(out, field, s.data(), s.size()); }
void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_key(out, field, kFixed64);
  put_le(out, bits);
}
void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  put_key(out, field, kFixed32);
  put_le(out, bits);
}
void put_int(std::string& out, uint32_t field, int64_t v) {
  put_key(out, field, kVarint);
  put_varint(out, (uint64_t)v);  // negative int64: ten bytes, two's complement, as protobuf does
}

// Event field numbers (tensorboard/compat/proto/event.proto, summary.proto).
constexpr uint32_t kEventWallTime = 1, kEventStep = 2, kEventFileVersion = 3, kEventSummary = 5;
constexpr uint32_t kSummaryValue = 1;
constexpr uint32_t kValueTag = 1, kValueSimpleValue = 2, kValueImage = 4;
constexpr uint32_t kImageHeight = 1, kImageWidth = 2, kImageColorspace = 3, kImageEncoded = 4;

// An Event with wall_time, step and a Summary of the given serialized Values.
std::string summary_event(const std::vector<std::string>& values, int64_t step, double wall_time) {
  std::string summary;
  for (const std::string& v : values) put_bytes(summary, kSummaryValue, v);
  std::string e;
  put_double(e, kEventWallTime, wall_time);
  put_int(e, kEventStep, step);
  put_bytes(e, kEventSummary, summary);
  return e;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == 0) return "localhost";
  std::string h = buf;
  for (char& c : h)
    if (c == '/') c = '_';
  return h;
}

std::atomic<int> g_file_counter{0};  // the <n> of the file name: distinct files within a process

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = kCrcTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string file_version_event(double wall_time) {
  std::string e;
  put_double(e, kEventWallTime, wall_time);
  put_bytes(e, kEventFileVersion, std::string("brain.Event:2"));
  return e;
}

std::string scalars_event(const std::vector<std::pair<std::string, double>>& values, int64_t step, double wall_time) {
  std::vector<std::string> vs;
  for (const auto& [tag, v] : values) {
    std::string value;
    put_bytes(value, kValueTag, tag);
    put_float(value, kValueSimpleValue, (float)v);
    vs.push_back(std::move(value));
  }
  return summary_event(vs, step, wall_time);
}

std::string image_event(const std::string& tag, const data::Image& img, int64_t step, double wall_time) {
  const std::vector<uint8_t> png = data::encode_png(img, tag);
  std::string image;
  put_int(image, kImageHeight, img.h);
  put_int(image, kImageWidth, img.w);
  put_int(image, kImageColorspace, img.channels);  // 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA
  put_bytes(image, kImageEncoded, png.data(), png.size());
  std::string value;
  put_bytes(value, kValueTag, tag);
  put_bytes(value, kValueImage, image);
  return summary_event({value}, step, wall_time);
}

std::string tfrecord(const std::string& data) {
  std::string r;
  r.reserve(data.size() + 16);
  const uint64_t n = data.size();
  put_le(r, n);
  put_le(r, masked_crc32c(r.data(), 8));
  r += data;
  put_le(r, masked_crc32c(data.data(), data.size()));
  return r;
}

std::vector<std::string> read_records(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  SG_CHECK(f.good(), "tensorboard", "cannot open '", path, "'");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto le = [&](size_t at, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= (uint64_t)(uint8_t)bytes[at + i] << (8 * i);
    return v;
  };
  std::vector<std::string> records;
  size_t at = 0;
  while (at < bytes.size()) {
    SG_CHECK(bytes.size() - at >= 12, "tensorboard", "'", path, "': record at byte ", at, " is cut short (",
             bytes.size() - at, " bytes, its header needs 12)");
    const uint64_t n = le(at, 8);
    SG_CHECK(le(at + 8, 4) == masked_crc32c(bytes.data() + at, 8), "tensorboard", "'", path,
             "': the length CRC of the record at byte ", at, " does not match");
    SG_CHECK(n <= bytes.size() - at - 12 && bytes.size() - at - 12 - n >= 4, "tensorboard", "'", path,
             "': record at byte ", at, " is cut short (", n, " data bytes announced, ", bytes.size() - at - 12,
             " left with its CRC)");
    SG_CHECK(le(at + 12 + n, 4) == masked_crc32c(bytes.data() + at + 12, n), "tensorboard", "'", path,
             "': the data CRC of the record at byte ", at, " does not match");
    records.push_back(bytes.substr(at + 12, n));
    at += 12 + n + 4;
  }
  return records;
}

EventWriter::EventWriter(const std::string& dir) {
  const double now = now_seconds();
  char secs[32];
  std::snprintf(secs, sizeof secs, "%010lld", (long long)now);
  path_ = str(dir, "/events.out.tfevents.", secs, ".", hostname(), ".", (long long)getpid(), ".", g_file_counter++);
  f_ = std::fopen(path_.c_str(), "wbx");  // x: never over an existing file
  SG_CHECK(f_ != nullptr, "tensorboard", "cannot create the events file '", path_, "': ", std::strerror(errno));
  write_record(file_version_event(now));
}

EventWriter::~EventWriter() {
  if (f_) std::fclose(f_);
}

void EventWriter::write_record(const std::string& event) {
  SG_CHECK(f_ != nullptr, "tensorboard", "'", path_, "' is closed");
  const std::string r = tfrecord(event);
  const bool ok = std::fwrite(r.data(), 1, r.size(), f_) == r.size() && std::fflush(f_) == 0;
  SG_CHECK(ok, "tensorboard", "writing '", path_, "' failed: ", std::strerror(errno));
}

void EventWriter::add_scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step,
                              double wall_time) {
  write_record(scalars_event(values, step, wall_time));
}

void EventWriter::add_image(const std::string& tag, const data::Image& img, int64_t step, double wall_time) {
  write_record(image_event(tag, img, step, wall_time));
}

void EventWriter::close() {
  if (!f_) return;
  std::FILE* f = f_;
  f_ = nullptr;
  SG_CHECK(std::fclose(f) == 0, "tensorboard", "closing '", path_, "' failed: ", std::strerror(errno));
}

}  // namespace sg::tensorboard
