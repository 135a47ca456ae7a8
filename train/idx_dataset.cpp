#include "train/idx_dataset.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "engine/error.h"

namespace sg::data {

IdxImages read_idx_images(const std::string& path, int64_t max_count) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  SG_CHECK(f != nullptr, "read_idx_images", "cannot open '", path, "'");
  auto read_exact = [&](void* dst, size_t n, const char* what) {
    int got = gzread(f, dst, (unsigned)n);
    if (got != (int)n) {
      gzclose(f);
      throw Error(str("read_idx_images: '", path, "' is truncated or corrupt (reading ", what, ")"));
    }
  };
  uint8_t hdr[16];
  read_exact(hdr, 16, "header");
  auto be32 = [&](int at) {
    return (int64_t)((uint32_t)hdr[at] << 24 | (uint32_t)hdr[at + 1] << 16 | (uint32_t)hdr[at + 2] << 8 | hdr[at + 3]);
  };
  if (be32(0) != 0x803) {
    gzclose(f);
    throw Error(str("read_idx_images: '", path, "' is not an idx3 image file (magic ", be32(0), ")"));
  }
  IdxImages r;
  r.count = be32(4), r.rows = be32(8), r.cols = be32(12);
  if (r.rows <= 0 || r.cols <= 0 || r.rows > 4096 || r.cols > 4096) {
    gzclose(f);
    throw Error(str("read_idx_images: '", path, "' has implausible image size ", r.rows, "x", r.cols));
  }
  if (max_count >= 0 && max_count < r.count) r.count = max_count;
  // The header is not trusted with memory: a plain file must hold what it claims before
  // anything is allocated, and a compressed one is read in chunks, growing as data arrives.
  const uint64_t want = (uint64_t)r.count * (uint64_t)(r.rows * r.cols);  // < 2^32 * 2^24
  auto short_file = [&](uint64_t have) {
    gzclose(f);
    return Error(str("read_idx_images: '", path, "' is truncated or corrupt: its header claims ", r.count,
                     " images of ", r.rows, "x", r.cols, " (", want, " bytes of pixels) but it holds only ", have));
  };
  if (gzdirect(f)) {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    if (!ec && size < 16 + want) throw short_file(size - 16);
  }
  constexpr uint64_t kChunk = uint64_t(1) << 24;
  while (r.pixels.size() < want) {
    const uint64_t at = r.pixels.size(), n = std::min<uint64_t>(kChunk, want - at);
    r.pixels.resize(at + n);
    const int got = gzread(f, r.pixels.data() + at, (unsigned)n);
    if (got != (int)n) throw short_file(at + (got > 0 ? (uint64_t)got : 0));
  }
  gzclose(f);
  return r;
}

}  // namespace sg::data
