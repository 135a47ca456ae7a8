// safetensors reader and writer, with a small JSON parser / writer of our own.
// Format and guarantees: see engine/io/safetensors.h.
#include "engine/io/safetensors.h"
#include "engine/io/json.h"
#include "engine/io/write_steps.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

namespace sg::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host needs byte swapping here");

namespace {

// Largest header we accept (the Python reader's limit is 100 MB as well).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int kMaxJsonDepth = 64;

// ---- JSON ------------------------------------------------------------------------------------
struct JsonMember;  // a named member of an object (after Json: it holds one)

struct Json {
  enum class Kind { null, boolean, number, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  std::string text;  // string value, or the number's literal text
  std::vector<Json> items;
  std::vector<JsonMember> members;  // in document order

  const char* kind_name() const {
    switch (kind) {
      case Kind::null:
        return "null";
      case Kind::boolean:
        return "a boolean";
      case Kind::number:
        return "a number";
      case Kind::string:
        return "a string";
      case Kind::array:
        return "an array";
      case Kind::object:
        return "an object";
    }
    return "?";
  }
};

struct JsonMember {
  std::string first;
  Json second;
};

struct JsonError {
  size_t pos;
  std::string what;
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& s) : s_(s) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected trailing characters");
    return v;
  }

 private:
  const std::string& s_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const { throw JsonError{pos_, what}; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void expect(char c) {
    if (pos_ >= s_.size()) fail(str("expected '", c, "' but the header ended"));
    if (s_[pos_] != c) fail(str("expected '", c, "' but found '", printable(s_[pos_]), "'"));
    ++pos_;
  }
  static std::string printable(char c) {
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    return buf;
  }

  Json parse_value(int depth) {
    if (depth > kMaxJsonDepth) fail("nested too deeply");
    if (pos_ >= s_.size()) fail("expected a value but the header ended");
    char c = s_[pos_];
    Json v;
    if (c == '{') {
      v.kind = Json::Kind::object;
      ++pos_;
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        return v;
      }
      std::set<std::string> seen;
      for (;;) {
        skip_ws();
        if (peek() != '"') fail("expected a string key");
        size_t key_pos = pos_;
        std::string key = parse_string();
        if (!seen.insert(key).second) {
          pos_ = key_pos;
          fail(str("duplicate key \"", key, "\""));
        }
        skip_ws();
        expect(':');
        skip_ws();
        v.members.push_back(JsonMember{std::move(key), parse_value(depth + 1)});
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect('}');
        return v;
      }
    }
    if (c == '[') {
      v.kind = Json::Kind::array;
      ++pos_;
      skip_ws();
      if (peek() == ']') {
        ++pos_;
        return v;
      }
      for (;;) {
        skip_ws();
        v.items.push_back(parse_value(depth + 1));
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect(']');
        return v;
      }
    }
    if (c == '"') {
      v.kind = Json::Kind::string;
      v.text = parse_string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::Kind::number;
      v.text = parse_number();
      return v;
    }
    if (s_.compare(pos_, 4, "true") == 0) {
      pos_ += 4;
      v.kind = Json::Kind::boolean;
      v.boolean = true;
      return v;
    }
    if (s_.compare(pos_, 5, "false") == 0) {
      pos_ += 5;
      v.kind = Json::Kind::boolean;
      return v;
    }
    if (s_.compare(pos_, 4, "null") == 0) {
      pos_ += 4;
      return v;
    }
    fail(str("unexpected character '", printable(c), "'"));
  }

  std::string parse_number() {
    size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++pos_;
    } else {
      fail("bad number");
    }
    if (peek() == '.') {
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("bad number: digits expected after '.'");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("bad number: digits expected in the exponent");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }

  unsigned hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= (unsigned)(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= (unsigned)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= (unsigned)(c - 'A' + 10);
      else
        fail("bad hex digit in \\u escape");
    }
    return v;
  }

  static void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += (char)cp;
    } else if (cp < 0x800) {
      out += (char)(0xC0 | (cp >> 6));
      out += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += (char)(0xE0 | (cp >> 12));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    } else {
      out += (char)(0xF0 | (cp >> 18));
      out += (char)(0x80 | ((cp >> 12) & 0x3F));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if ((unsigned char)c < 0x20) {
        --pos_;
        fail("control character in string");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.compare(pos_, 2, "\\u") != 0) fail("unpaired surrogate in \\u escape");
            pos_ += 2;
            uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired surrogate in \\u escape");
          }
          put_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          fail(str("bad escape '\\", printable(e), "'"));
      }
    }
  }
};

void json_write_string(std::string& out, const std::string& s) {
  out += '"';
  out += json_escape(s);
  out += '"';
}

// ---- helpers -----------------------------------------------------------------------------
[[noreturn]] void fail_load(const std::string& path, const std::string& what) {
  throw Error(str("load_safetensors: ", path, ": ", what));
}
[[noreturn]] void fail_save(const std::string& path, const std::string& what) {
  throw Error(str("save_safetensors: ", path, ": ", what));
}

// A non-negative JSON integer that fits in uint64, or an error naming `what`.
uint64_t json_uint(const std::string& path, const Json& v, const std::string& what) {
  if (v.kind != Json::Kind::number) fail_load(path, str(what, " must be a non-negative integer, got ", v.kind_name()));
  const std::string& t = v.text;
  if (t.empty() || !std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; }))
    fail_load(path, str(what, " must be a non-negative integer, got ", t));
  uint64_t r = 0;
  for (char c : t) {
    uint64_t d = (uint64_t)(c - '0');
    if (r > (std::numeric_limits<uint64_t>::max() - d) / 10) fail_load(path, str(what, " is too large: ", t));
    r = r * 10 + d;
  }
  return r;
}

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
  }
  return "?";
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

}  // namespace

// ---- save ----------------------------------------------------------------------------------
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Check everything and bring the data to the CPU before touching the file system.
  std::set<std::string> names;
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    if (name.empty()) fail_save(path, "a tensor has an empty name");
    if (name == "__metadata__") fail_save(path, "\"__metadata__\" is reserved and cannot name a tensor");
    if (!names.insert(name).second) fail_save(path, str("duplicate tensor name \"", name, "\""));
    if (!t.defined()) fail_save(path, str("tensor \"", name, "\" is undefined"));
    host.push_back(t.is_cpu() ? t : t.cpu());
  }

  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool mfirst = true;
    for (const auto& [k, v] : metadata) {
      if (!mfirst) header += ',';
      mfirst = false;
      json_write_string(header, k);
      header += ':';
      json_write_string(header, v);
    }
    header += '}';
    first = false;
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = host[i];
    uint64_t nbytes = (uint64_t)t.numel() * dtype_size(t.dtype());
    if (!first) header += ',';
    first = false;
    json_write_string(header, tensors[i].first);
    header += str(":{\"dtype\":\"", safetensors_dtype(t.dtype()), "\",\"shape\":[");
    for (size_t d = 0; d < t.shape().size(); ++d) header += str(d ? "," : "", t.shape()[d]);
    header += str("],\"data_offsets\":[", offset, ",", offset + nbytes, "]}");
    offset += nbytes;
  }
  header += '}';
  while (header.size() % 8 != 0) header += ' ';  // keeps the data 8-byte aligned

  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_save(path, str("cannot open ", tmp, " for writing: ", std::strerror(errno)));
  write_step("open", tmp);
  auto write_all = [&](const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(fd, c, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        fail_save(path, str("cannot write ", tmp, ": ", std::strerror(e)));
      }
      c += w;
      n -= (size_t)w;
    }
  };
  uint8_t len[8];
  uint64_t hl = header.size();
  for (int i = 0; i < 8; ++i) len[i] = (uint8_t)(hl >> (8 * i));
  write_all(len, 8);
  write_all(header.data(), header.size());
  write_step("write-header", tmp);
  for (const Tensor& t : host) {
    size_t nbytes = (size_t)t.numel() * dtype_size(t.dtype());
    if (nbytes) write_all(t.raw_data(), nbytes);
  }
  write_step("write-data", tmp);
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail_save(path, str("fsync of ", tmp, " failed: ", std::strerror(e)));
  }
  write_step("fsync", tmp);
  if (::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail_save(path, str("close of ", tmp, " failed: ", std::strerror(e)));
  }
  write_step("close", tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    fail_save(path, str("cannot rename ", tmp, " to ", path, ": ", std::strerror(e)));
  }
  write_step("rename", path);
  // Make the rename itself durable (best effort).
  std::string dir = ".";
  if (auto slash = path.find_last_of('/'); slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  write_step("fsync-dir", dir);
}

// ---- load ----------------------------------------------------------------------------------
namespace {

// Where the bytes come from: a file or a buffer in memory. Both loaders below work on a Source.
class Source {
 public:
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  // Reads n bytes at offset into dst; false on a read error or when they are not all there.
  virtual bool read(uint64_t offset, void* dst, size_t n) = 0;
};

class FileSource final : public Source {
 public:
  explicit FileSource(const std::string& path) : f_(path, std::ios::binary) {
    if (!f_) fail_load(path, str("cannot open file: ", std::strerror(errno)));
    f_.seekg(0, std::ios::end);
    const auto end_pos = f_.tellg();
    if (end_pos < 0) fail_load(path, "cannot determine the file size (not a regular file?)");
    size_ = (uint64_t)end_pos;
  }
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* dst, size_t n) override {
    f_.seekg((std::streamoff)offset, std::ios::beg);
    f_.read(static_cast<char*>(dst), (std::streamsize)n);
    return f_ && (uint64_t)f_.gcount() == n;
  }

 private:
  std::ifstream f_;
  uint64_t size_ = 0;
};

class MemorySource final : public Source {
 public:
  MemorySource(const void* data, size_t size) : data_(static_cast<const uint8_t*>(data)), size_(size) {}
  uint64_t size() const override { return size_; }
  bool read(uint64_t offset, void* dst, size_t n) override {
    if (offset > size_ || n > size_ - offset) return false;
    if (n) std::memcpy(dst, data_ + offset, n);
    return true;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
};

// Parses the JSON header of a safetensors file (checked: length, JSON, an object); the data
// section starts at data_begin and holds data_size bytes.
Json read_header(const std::string& path, Source& src, uint64_t& data_begin, uint64_t& data_size) {
  const uint64_t file_size = src.size();
  if (file_size < 8)
    fail_load(path, str("truncated: the file is ", file_size, " bytes, shorter than the 8-byte header length"));

  uint8_t len[8];
  if (!src.read(0, len, 8)) fail_load(path, "read error in the header length");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= (uint64_t)len[i] << (8 * i);
  if (header_len < 2 || header_len > kMaxHeaderBytes || header_len > file_size - 8)
    fail_load(path, str("bad header length ", header_len, " (the file is ", file_size, " bytes",
                        header_len > file_size - 8 ? ": truncated or not a safetensors file)" : ")"));
  std::string header((size_t)header_len, '\0');
  if (!src.read(8, header.data(), header.size())) fail_load(path, "read error in the header");
  data_begin = 8 + header_len;
  data_size = file_size - 8 - header_len;

  Json root;
  try {
    root = JsonParser(header).parse_document();
  } catch (const JsonError& e) {
    fail_load(path, str("bad JSON header at byte ", e.pos, ": ", e.what));
  }
  if (root.kind != Json::Kind::object)
    fail_load(path, str("bad JSON header: expected an object, got ", root.kind_name()));
  return root;
}

// The "__metadata__" member of a header (string values only) into *metadata.
void read_metadata(const std::string& path, const Json& v, std::map<std::string, std::string>* metadata) {
  if (v.kind != Json::Kind::object) fail_load(path, str("__metadata__ must be an object, got ", v.kind_name()));
  for (const auto& [k, mv] : v.members) {
    if (mv.kind != Json::Kind::string)
      fail_load(path, str("__metadata__ value of \"", k, "\" must be a string, got ", mv.kind_name()));
    if (metadata) (*metadata)[k] = mv.text;
  }
}

}  // namespace

std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  FileSource src(path);
  uint64_t data_begin = 0, data_size = 0;
  const Json root = read_header(path, src, data_begin, data_size);
  std::map<std::string, std::string> metadata;
  for (const auto& [name, v] : root.members)
    if (name == "__metadata__") read_metadata(path, v, &metadata);
  return metadata;
}

namespace {

// The whole file: header checks, then every tensor read from src.
std::vector<std::pair<std::string, Tensor>> load_from(const std::string& path, Source& src,
                                                      std::map<std::string, std::string>* metadata) {
  uint64_t data_begin = 0, data_size = 0;
  const Json root = read_header(path, src, data_begin, data_size);
  if (metadata) metadata->clear();
  std::vector<Entry> entries;
  for (const auto& [name, v] : root.members) {
    if (name == "__metadata__") {
      read_metadata(path, v, metadata);
      continue;
    }
    // The writer refuses an empty name, so a file holding one is not ours to trust (and a caller
    // looking tensors up by name could not tell it from a missing one).
    if (name.empty()) fail_load(path, "a tensor has an empty name");
    const std::string who = str("tensor \"", name, "\"");
    if (v.kind != Json::Kind::object) fail_load(path, str(who, ": expected an object, got ", v.kind_name()));
    const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto& [k, mv] : v.members) {
      if (k == "dtype")
        dtype = &mv;
      else if (k == "shape")
        shape = &mv;
      else if (k == "data_offsets")
        offsets = &mv;
    }
    if (!dtype || !shape || !offsets) fail_load(path, str(who, ": needs \"dtype\", \"shape\" and \"data_offsets\""));
    Entry e;
    e.name = name;
    if (dtype->kind != Json::Kind::string) fail_load(path, str(who, ": dtype must be a string"));
    if (dtype->text == "F32")
      e.dtype = DType::f32;
    else if (dtype->text == "F64")
      e.dtype = DType::f64;
    else
      fail_load(path, str(who, ": unsupported dtype ", dtype->text, " (only F32 and F64 are supported)"));
    if (shape->kind != Json::Kind::array) fail_load(path, str(who, ": shape must be an array"));
    uint64_t numel = 1;
    bool overflow = false;
    for (const Json& d : shape->items) {
      uint64_t n = json_uint(path, d, who + " shape entry");
      if (n > (uint64_t)std::numeric_limits<int64_t>::max()) fail_load(path, str(who, ": shape entry too large"));
      e.shape.push_back((int64_t)n);
      if (n != 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / n) overflow = true;
      numel *= n;
    }
    if (overflow) fail_load(path, str(who, ": shape ", shape_str(e.shape), " is too large"));
    if (offsets->kind != Json::Kind::array || offsets->items.size() != 2)
      fail_load(path, str(who, ": data_offsets must be an array [begin, end]"));
    e.begin = json_uint(path, offsets->items[0], who + " data_offsets begin");
    e.end = json_uint(path, offsets->items[1], who + " data_offsets end");
    if (e.end < e.begin) fail_load(path, str(who, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin"));
    if (e.end > data_size)
      fail_load(path, str(who, ": data_offsets [", e.begin, ", ", e.end, "] out of range: the data section is ",
                          data_size, " bytes (truncated file?)"));
    uint64_t want = numel * dtype_size(e.dtype);
    if (e.end - e.begin != want)
      fail_load(path, str(who, ": data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin,
                          " bytes but shape ", shape_str(e.shape), " ", dtype->text, " needs ", want));
    entries.push_back(std::move(e));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].begin < entries[i - 1].end)
      fail_load(path, str("tensors \"", entries[i - 1].name, "\" [", entries[i - 1].begin, ", ", entries[i - 1].end,
                          "] and \"", entries[i].name, "\" [", entries[i].begin, ", ", entries[i].end, "] overlap"));
  }

  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(entries.size());
  for (const Entry& e : entries) {
    Tensor t = empty(e.shape, e.dtype);
    uint64_t n = e.end - e.begin;
    if (n && !src.read(data_begin + e.begin, t.raw_data(), (size_t)n))
      fail_load(path, str("tensor \"", e.name, "\": truncated data"));
    out.emplace_back(e.name, std::move(t));
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> load_safetensors(const std::string& path,
                                                             std::map<std::string, std::string>* metadata) {
  FileSource src(path);
  return load_from(path, src, metadata);
}

std::vector<std::pair<std::string, Tensor>> load_safetensors_from_memory(const void* data, size_t size,
                                                                         const std::string& name,
                                                                         std::map<std::string, std::string>* metadata) {
  MemorySource src(data, size);
  return load_from(name, src, metadata);
}

std::map<std::string, Tensor> load_safetensors_map(const std::string& path) {
  std::map<std::string, Tensor> m;
  for (auto& [name, t] : load_safetensors(path)) m.emplace(name, std::move(t));
  return m;
}

}  // namespace sg::io
