#include "train/idx_dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "engine/error.h"

namespace sg::data {

namespace {

// Raw bytes, in order: a file or a buffer in memory.
class RawSource {
 public:
  virtual ~RawSource() = default;
  // Up to n bytes into dst; fewer only at the end. Throws sg::Error on a read error.
  virtual size_t read(uint8_t* dst, size_t n) = 0;
  // The total number of bytes.
  virtual uint64_t size() const = 0;
};

class FileSource final : public RawSource {
 public:
  explicit FileSource(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "rb"), &std::fclose) {
    SG_CHECK(f_ != nullptr, "read_idx_images", "cannot open '", path, "': ", std::strerror(errno));
    if (std::fseek(f_.get(), 0, SEEK_END) == 0) {
      const long end = std::ftell(f_.get());
      size_ = end > 0 ? (uint64_t)end : 0;
    }
    SG_CHECK(std::fseek(f_.get(), 0, SEEK_SET) == 0, "read_idx_images", "cannot read '", path,
             "' (not a regular file?)");
  }
  size_t read(uint8_t* dst, size_t n) override {
    const size_t got = std::fread(dst, 1, n, f_.get());
    SG_CHECK(got == n || !std::ferror(f_.get()), "read_idx_images", "read error in '", path_, "'");
    return got;
  }
  uint64_t size() const override { return size_; }

 private:
  std::string path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f_;
  uint64_t size_ = 0;
};

class MemorySource final : public RawSource {
 public:
  MemorySource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t read(uint8_t* dst, size_t n) override {
    n = std::min(n, size_ - at_);
    if (n) std::memcpy(dst, data_ + at_, n);
    at_ += n;
    return n;
  }
  uint64_t size() const override { return size_; }

 private:
  const uint8_t* data_;
  size_t size_, at_ = 0;
};

// The idx bytes: the raw bytes themselves, or their gzip decompression when they start
// with the gzip magic. Like zlib's gzread: concatenated gzip members are read one after the
// other, and anything after a member that is not another member is ignored.
class IdxStream {
 public:
  IdxStream(RawSource& src, const std::string& name) : src_(src), name_(name) {
    fill();
    gzip_ = avail_ >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
    if (gzip_) {
      std::memset(&z_, 0, sizeof z_);
      SG_CHECK(inflateInit2(&z_, 16 + MAX_WBITS) == Z_OK, "read_idx_images", "zlib initialisation failed");
      z_live_ = true;
    }
  }
  ~IdxStream() {
    if (z_live_) inflateEnd(&z_);
  }
  IdxStream(const IdxStream&) = delete;
  IdxStream& operator=(const IdxStream&) = delete;

  bool compressed() const { return gzip_; }

  // Up to n bytes; fewer only at the end of the data (or of a truncated gzip stream).
  size_t read(uint8_t* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      if (!gzip_) {
        if (avail_ == 0 && !fill()) break;
        const size_t k = std::min(n - done, avail_);
        std::memcpy(dst + done, in_ + pos_, k);
        pos_ += k, avail_ -= k, done += k;
        continue;
      }
      if (finished_) break;
      if (avail_ == 0 && !fill()) break;  // truncated: the stream ended inside a member
      z_.next_in = in_ + pos_;
      z_.avail_in = (uInt)avail_;
      const size_t want = std::min<size_t>(n - done, 1u << 30);
      z_.next_out = dst + done;
      z_.avail_out = (uInt)want;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      const size_t used = avail_ - z_.avail_in, made = want - z_.avail_out;
      pos_ += used, avail_ -= used, done += made;
      if (rc == Z_STREAM_END) {
        // Another member follows only if its magic does.
        if (avail_ < 2) fill();
        if (avail_ >= 2 && in_[pos_] == 0x1f && in_[pos_ + 1] == 0x8b) {
          SG_CHECK(inflateReset(&z_) == Z_OK, "read_idx_images", "zlib reset failed");
        } else {
          finished_ = true;
        }
      } else if ((rc != Z_OK && rc != Z_BUF_ERROR) || (used == 0 && made == 0)) {
        throw Error(str("read_idx_images: '", name_, "' is corrupt: bad gzip data (",
                        z_.msg ? z_.msg : "zlib error " + std::to_string(rc), ")"));
      }
    }
    return done;
  }

 private:
  // Moves what is left to the front and reads more raw bytes; false when none came.
  bool fill() {
    if (pos_ > 0 && avail_ > 0) std::memmove(in_, in_ + pos_, avail_);
    pos_ = 0;
    const size_t got = src_.read(in_ + avail_, sizeof in_ - avail_);
    avail_ += got;
    return got > 0;
  }

  RawSource& src_;
  std::string name_;
  uint8_t in_[1 << 16];
  size_t pos_ = 0, avail_ = 0;
  bool gzip_ = false, finished_ = false, z_live_ = false;
  z_stream z_;
};

// The reader for both entry points: the header is checked, and not trusted with memory.
IdxImages read_idx(RawSource& src, const std::string& name, int64_t max_count) {
  IdxStream in(src, name);
  auto fail = [&](const std::string& what) { return Error(str("read_idx_images: '", name, "' ", what)); };
  uint8_t hdr[16];
  if (in.read(hdr, 16) != 16) throw fail("is truncated or corrupt (reading header)");
  auto be32 = [&](int at) {
    return (int64_t)((uint32_t)hdr[at] << 24 | (uint32_t)hdr[at + 1] << 16 | (uint32_t)hdr[at + 2] << 8 | hdr[at + 3]);
  };
  if (be32(0) != 0x803) throw fail(str("is not an idx3 image file (magic ", be32(0), ")"));
  IdxImages r;
  r.count = be32(4), r.rows = be32(8), r.cols = be32(12);
  if (r.rows <= 0 || r.cols <= 0 || r.rows > 4096 || r.cols > 4096)
    throw fail(str("has implausible image size ", r.rows, "x", r.cols));
  if (max_count >= 0 && max_count < r.count) r.count = max_count;
  // A plain file must hold what its header claims before anything is allocated; a
  // compressed one is read in chunks, growing as data arrives.
  const uint64_t want = (uint64_t)r.count * (uint64_t)(r.rows * r.cols);  // < 2^32 * 2^24
  auto short_file = [&](uint64_t have) {
    return fail(str("is truncated or corrupt: its header claims ", r.count, " images of ", r.rows, "x", r.cols, " (",
                    want, " bytes of pixels) but it holds only ", have));
  };
  if (!in.compressed() && src.size() < 16 + want) throw short_file(src.size() - 16);
  constexpr uint64_t kChunk = uint64_t(1) << 24;
  while (r.pixels.size() < want) {
    const uint64_t at = r.pixels.size(), n = std::min<uint64_t>(kChunk, want - at);
    r.pixels.resize(at + n);
    const size_t got = in.read(r.pixels.data() + at, n);
    if (got != n) throw short_file(at + got);
  }
  return r;
}

}  // namespace

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  FileSource src(path);
  IdxStream in(src, path);
  uint8_t hdr[8];
  SG_CHECK(in.read(hdr, 8) == 8, "read_idx_labels", "'", path, "' is truncated or corrupt (reading header)");
  auto be32 = [&](int at) {
    return (int64_t)((uint32_t)hdr[at] << 24 | (uint32_t)hdr[at + 1] << 16 | (uint32_t)hdr[at + 2] << 8 | hdr[at + 3]);
  };
  SG_CHECK(be32(0) == 0x801, "read_idx_labels", "'", path, "' is not an idx1 label file (magic ", be32(0), ")");
  const int64_t count = be32(4);
  SG_CHECK(count < (int64_t(1) << 28), "read_idx_labels", "'", path, "' claims an implausible ", count, " labels");
  SG_CHECK(in.compressed() || src.size() >= 8 + (uint64_t)count, "read_idx_labels", "'", path,
           "' is truncated: its header claims ", count, " labels");
  std::vector<uint8_t> labels((size_t)count);
  const size_t got = in.read(labels.data(), labels.size());
  SG_CHECK(got == labels.size(), "read_idx_labels", "'", path, "' is truncated: its header claims ", count,
           " labels but it holds ", got);
  return labels;
}

IdxImages read_idx_images(const std::string& path, int64_t max_count) {
  FileSource src(path);
  return read_idx(src, path, max_count);
}

IdxImages read_idx_images_from_memory(const void* data, size_t size, const std::string& name, int64_t max_count) {
  MemorySource src(static_cast<const uint8_t*>(data), size);
  return read_idx(src, name, max_count);
}

}  // namespace sg::data
