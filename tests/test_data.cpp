// train/: PNG write and read back, fit_image, make_grid, the dataset readers (image folder
// with corrupt and non-image files, idx plain and gzip, Debian's Fashion-MNIST when
// installed, CIFAR-10 binary), their errors, BatchLoader determinism / seek / mirror, and
// run directories + JSON lines.
#include <catch2/catch.hpp>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <jpeglib.h>  // after <cstdio>: the tests make their JPEGs with libjpeg's compressor

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "train/batch_loader.h"
#include "train/dataset.h"
#include "train/idx_dataset.h"
#include "train/image_io.h"
#include "train/run_dir.h"

using namespace sg;
using namespace sg::data;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("sg_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), (std::streamsize)bytes.size());
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

Image solid(int w, int h, std::vector<uint8_t> color) {
  Image img;
  img.w = w, img.h = h, img.channels = (int)color.size();
  for (int i = 0; i < w * h; ++i) img.pixels.insert(img.pixels.end(), color.begin(), color.end());
  return img;
}

Image pattern(int w, int h, int c) {
  Image img;
  img.w = w, img.h = h, img.channels = c;
  for (int i = 0; i < w * h * c; ++i) img.pixels.push_back((uint8_t)(i * 37 + 11));
  return img;
}

std::vector<float> get_image(const Dataset& ds, int64_t i) {
  std::vector<float> v((size_t)ds.image_numel(), 7.0f);  // poison
  ds.get(i, v.data());
  return v;
}

void check_range(const std::vector<float>& v) {
  for (float x : v) REQUIRE((x >= -1.0f && x <= 1.0f));
}

std::string be32(uint32_t v) { return std::string{(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v}; }

// An idx3 file of n images rows x cols: image i pixel p = (i * 50 + p) % 256.
std::string idx_bytes(int n, int rows, int cols) {
  std::string s = be32(0x803) + be32(n) + be32(rows) + be32(cols);
  for (int i = 0; i < n; ++i)
    for (int p = 0; p < rows * cols; ++p) s += (char)(uint8_t)((i * 50 + p) % 256);
  return s;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), (unsigned)bytes.size()) == (int)bytes.size());
  gzclose(f);
}

// ---- hand-made PNG and JPEG files ------------------------------------------------------------
std::string png_chunk(const char* type, const std::string& data) {
  const std::string td = std::string(type, 4) + data;
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(td.data()), (uInt)td.size());
  return be32((uint32_t)data.size()) + td + be32((uint32_t)crc);
}

std::string png_ihdr(uint32_t w, uint32_t h, int depth, int color_type) {
  return png_chunk("IHDR", be32(w) + be32(h) + std::string{(char)depth, (char)color_type, 0, 0, 0});
}

// A PNG from its header and its filtered rows (each row: filter byte 0, then the samples);
// `extra` chunks go between IHDR and IDAT (PLTE, tRNS).
std::string png_file(uint32_t w, uint32_t h, int depth, int color_type, const std::string& rows,
                     const std::string& extra = "") {
  uLongf n = compressBound((uLong)rows.size());
  std::string z(n, '\0');
  REQUIRE(compress(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(rows.data()),
                   (uLong)rows.size()) == Z_OK);
  z.resize(n);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_ihdr(w, h, depth, color_type) + extra + png_chunk("IDAT", z) +
         png_chunk("IEND", "");
}

Image decode(const std::string& bytes, const std::string& name = "mem.img") {
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
}

// A JPEG through libjpeg's compressor: `components` channels of color space cs.
std::string jpeg_file(int w, int h, int components, J_COLOR_SPACE cs, const std::vector<uint8_t>& px,
                      bool progressive = false) {
  REQUIRE(px.size() == (size_t)w * h * components);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h;
  c.input_components = components, c.in_color_space = cs;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 1;  // no chroma subsampling
  if (progressive) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(&px[(size_t)c.next_scanline * w * components]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::string out(reinterpret_cast<char*>(buf), size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

// Smooth: JPEG at quality 100 without subsampling keeps it within a few levels.
std::vector<uint8_t> gradient(int w, int h, int c) {
  std::vector<uint8_t> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        px.push_back((uint8_t)(k == 0 ? x * 255 / (w - 1) : k == 1 ? y * 255 / (h - 1) : 128));
  return px;
}

int max_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  int m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs((int)a[i] - (int)b[i]));
  return m;
}

// CIFAR-10 records: label, then CHW 32x32x3 with value (i + c * 40 + y + x) % 256.
std::string cifar_bytes(int n, int first = 0) {
  std::string s;
  for (int i = first; i < first + n; ++i) {
    s += (char)(i % 10);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) s += (char)(uint8_t)((i + c * 40 + y + x) % 256);
  }
  return s;
}

float to_unit(int v) { return (float)v / 127.5f - 1.0f; }

// A synthetic dataset for the loader: image i has row 0 = i / 100 everywhere (survives a
// flip) and the other rows a ramp in x (reveals one).
class Synthetic final : public Dataset {
 public:
  explicit Synthetic(int64_t n) : Dataset(8, 1), n_(n) { description_ = "synthetic"; }
  int64_t size() const override { return n_; }
  void get(int64_t i, float* out) const override {
    check_index(i);
    for (int64_t y = 0; y < 8; ++y)
      for (int64_t x = 0; x < 8; ++x) out[y * 8 + x] = y == 0 ? (float)i / 100.0f : (float)x / 10.0f;
  }
  static int64_t id_of(const float* img) { return (int64_t)std::lround(img[0] * 100.0f); }
  static bool is_flipped(const float* img) { return img[8] > img[15]; }

 private:
  int64_t n_;
};

std::vector<std::vector<float>> take(BatchLoader& l, int k) {
  std::vector<std::vector<float>> out;
  for (int i = 0; i < k; ++i) {
    Tensor t = l.next();
    out.emplace_back(t.data<float>(), t.data<float>() + t.numel());
  }
  return out;
}

}  // namespace

// ---- images ---------------------------------------------------------------------------------

TEST_CASE("write_png and load_image round trip", "[data]") {
  TempDir dir;
  for (int c : {1, 2, 3, 4}) {
    const Image img = pattern(5, 3, c);
    const std::string path = dir.file("img" + std::to_string(c) + ".png");
    write_png(path, img);
    CHECK_FALSE(fs::exists(path + ".tmp"));
    const Image back = load_image(path);
    CHECK(back.w == 5);
    CHECK(back.h == 3);
    CHECK(back.channels == c);
    CHECK(back.pixels == img.pixels);
  }
  CHECK_THROWS_WITH(write_png(dir.file("no/such/dir/x.png"), pattern(2, 2, 3)), Contains("no/such/dir"));
  write_bytes(dir.file("junk.png"), "this is not a png");
  CHECK_THROWS_WITH(load_image(dir.file("junk.png")), Contains("junk.png"));
  CHECK_THROWS_WITH(load_image(dir.file("missing.png")), Contains("missing.png"));
}

TEST_CASE("decode_image: PNG gray, 16-bit and palette files decode to what they hold", "[data]") {
  SECTION("8-bit gray, and gray with tRNS gets an alpha channel") {
    const std::string rows = std::string("\0\x00\x40", 3) + std::string("\0\x80\xff", 3);
    const Image g = decode(png_file(2, 2, 8, 0, rows));
    CHECK((g.w == 2 && g.h == 2 && g.channels == 1));
    CHECK(g.pixels == std::vector<uint8_t>{0x00, 0x40, 0x80, 0xff});
    const Image ga = decode(png_file(2, 2, 8, 0, rows, png_chunk("tRNS", std::string("\0\x40", 2))));
    CHECK(ga.channels == 2);
    CHECK(ga.pixels == std::vector<uint8_t>{0x00, 0xff, 0x40, 0x00, 0x80, 0xff, 0xff, 0xff});
  }
  SECTION("16-bit gray and RGBA become 8-bit (v * 257 -> v)") {
    std::string rows;
    const std::vector<int> v = {0, 1, 127, 128, 254, 255};
    rows += '\0';
    for (int x : v) rows += std::string{(char)x, (char)x};  // x * 257, big-endian
    const Image g = decode(png_file(6, 1, 16, 0, rows));
    CHECK(g.channels == 1);
    CHECK(g.pixels == std::vector<uint8_t>{0, 1, 127, 128, 254, 255});
    std::string rgba = std::string(1, '\0');
    const std::vector<uint8_t> want = {10, 20, 30, 255, 200, 100, 0, 255};
    for (uint8_t x : want) rgba += std::string{(char)x, (char)x};
    const Image c = decode(png_file(2, 1, 16, 6, rgba));
    CHECK(c.channels == 4);
    CHECK(c.pixels == want);
  }
  SECTION("palette: expanded to RGB, to RGBA with tRNS, at bit depths 8 and 2") {
    const std::string plte = png_chunk("PLTE", std::string("\xff\x00\x00\x00\xff\x00\x00\x00\xff\x10\x20\x30", 12));
    const std::string rows = std::string("\0\x00\x01\x02\x03", 5);
    const Image p = decode(png_file(4, 1, 8, 3, rows, plte));
    CHECK(p.channels == 3);
    CHECK(p.pixels == std::vector<uint8_t>{255, 0, 0, 0, 255, 0, 0, 0, 255, 16, 32, 48});
    const Image pa = decode(png_file(4, 1, 8, 3, rows, plte + png_chunk("tRNS", std::string("\x80\x00", 2))));
    CHECK(pa.channels == 4);
    CHECK(pa.pixels == std::vector<uint8_t>{255, 0, 0, 128, 0, 255, 0, 0, 0, 0, 255, 255, 16, 32, 48, 255});
    // 2 bits per index: 0b00011011 = indices 0, 1, 2, 3.
    const Image p2 = decode(png_file(4, 1, 2, 3, std::string("\0\x1b", 2), plte));
    CHECK(p2.pixels == p.pixels);
  }
  SECTION("the format is told by content, not by name") {
    const std::string png = png_file(1, 1, 8, 0, std::string("\0\x7f", 2));
    CHECK(decode(png, "photo.jpg").pixels == std::vector<uint8_t>{0x7f});
    CHECK_THROWS_WITH(decode("BM" + std::string(60, '\0'), "old.bmp"),
                      Contains("old.bmp") && Contains("not a PNG or JPEG"));
    CHECK_THROWS_WITH(decode("GIF89a" + std::string(40, '\0'), "anim.gif"), Contains("not a PNG or JPEG"));
    CHECK_THROWS_WITH(decode("", "empty.png"), Contains("empty.png"));
  }
}

TEST_CASE("decode_image: JPEG through libjpeg-turbo, gray and RGB, baseline and progressive", "[data]") {
  const std::vector<uint8_t> rgb = gradient(24, 16, 3), gray = gradient(24, 16, 1);
  for (bool progressive : {false, true}) {
    INFO("progressive " << progressive);
    const Image c = decode(jpeg_file(24, 16, 3, JCS_RGB, rgb, progressive));
    CHECK((c.w == 24 && c.h == 16 && c.channels == 3));
    CHECK(max_abs_diff(c.pixels, rgb) <= 6);
    const Image g = decode(jpeg_file(24, 16, 1, JCS_GRAYSCALE, gray, progressive));
    CHECK((g.w == 24 && g.h == 16 && g.channels == 1));
    CHECK(max_abs_diff(g.pixels, gray) <= 3);
  }
  // CMYK is refused, not converted.
  const std::string cmyk = jpeg_file(8, 8, 4, JCS_CMYK, std::vector<uint8_t>(8 * 8 * 4, 100));
  CHECK_THROWS_WITH(decode(cmyk, "print.jpg"), Contains("print.jpg") && Contains("CMYK"));
  // And from a file, with probe_image agreeing.
  TempDir dir;
  write_bytes(dir.file("a.jpg"), jpeg_file(24, 16, 3, JCS_RGB, rgb));
  int w = 0, h = 0, ch = 0;
  CHECK(probe_image(dir.file("a.jpg"), &w, &h, &ch));
  CHECK((w == 24 && h == 16 && ch == 3));
  CHECK(load_image(dir.file("a.jpg")).channels == 3);
}

TEST_CASE("decode_image: truncated PNG and JPEG files are errors naming the file", "[data][errors]") {
  TempDir dir;
  // Noise compresses badly: half the file holds half the rows.
  std::vector<uint8_t> noise(64 * 64 * 3);
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = (uint8_t)((i * 2654435761u) >> 13);
  write_png(dir.file("full.png"), noise.data(), 64, 64, 3);
  const std::string png = read_bytes(dir.file("full.png"));
  const std::string jpg = jpeg_file(64, 64, 3, JCS_RGB, noise);
  const std::string pjpg = jpeg_file(64, 64, 3, JCS_RGB, noise, /*progressive=*/true);
  write_bytes(dir.file("cut.png"), png.substr(0, png.size() / 2));
  write_bytes(dir.file("cut.jpg"), jpg.substr(0, jpg.size() / 2));
  write_bytes(dir.file("cut-progressive.jpg"), pjpg.substr(0, pjpg.size() / 2));
  write_bytes(dir.file("header-only.jpg"), jpg.substr(0, 200));
  for (const char* name : {"cut.png", "cut.jpg", "cut-progressive.jpg", "header-only.jpg"}) {
    INFO(name);
    CHECK_THROWS_WITH(load_image(dir.file(name)), Contains(name) && Contains("truncated or corrupt"));
  }
  // The headers are whole: probe_image accepts them, as the on-demand dataset relies on.
  CHECK(probe_image(dir.file("cut.png"), nullptr, nullptr, nullptr));
  CHECK(probe_image(dir.file("cut.jpg"), nullptr, nullptr, nullptr));
  // Corrupt entropy-coded data (libjpeg would only warn and fill in gray).
  std::string bad = jpg;
  for (size_t i = bad.size() / 2; i < bad.size() / 2 + 64; ++i) bad[i] = (char)0xff;
  CHECK_THROWS_WITH(decode(bad, "bad.jpg"), Contains("bad.jpg"));
}

TEST_CASE("decode_image: dimensions over the limits are refused from the header", "[data][errors]") {
  // A PNG whose IHDR claims 100000x100000 (10^10 pixels, 40 GB as RGBA) with 1 row of data.
  const std::string huge = png_file(100000, 100000, 8, 6, std::string(1 + 4 * 100000, '\0'));
  CHECK_THROWS_WITH(decode(huge, "huge.png"),
                    Contains("huge.png") && Contains("100000x100000") && Contains("16384") && Contains("100000000"));
  // One side too long, or too many pixels with both sides allowed.
  CHECK_THROWS_WITH(decode(png_file(16385, 1, 8, 0, std::string(16386, '\0')), "wide.png"), Contains("16385x1"));
  CHECK_THROWS_WITH(decode(png_file(12000, 12000, 1, 0, std::string(1501, '\0')), "big.png"),
                    Contains("12000x12000") && Contains("over the limit"));
  // The same for a JPEG: its SOF0 frame header patched to 30000x30000.
  std::string jpg = jpeg_file(8, 8, 1, JCS_GRAYSCALE, std::vector<uint8_t>(64, 50));
  const size_t sof = jpg.find("\xff\xc0");
  REQUIRE(sof != std::string::npos);
  jpg.replace(sof + 5, 4, std::string("\x75\x30\x75\x30", 4));  // height, width: 30000
  CHECK_THROWS_WITH(decode(jpg, "huge.jpg"), Contains("huge.jpg") && Contains("30000x30000") && Contains("16384"));
  // probe_image applies the same limits.
  TempDir dir;
  write_bytes(dir.file("huge.png"), huge);
  std::string why;
  CHECK_FALSE(probe_image(dir.file("huge.png"), nullptr, nullptr, nullptr, &why));
  CHECK_THAT(why, Contains("100000x100000") && Contains("16384"));
}

TEST_CASE("decode_image: a JPEG with a bogus Huffman table is refused cleanly", "[data][errors]") {
  // A DHT segment whose 16 code-length counts sum to 320 (a table holds at most 256 codes),
  // in front of an otherwise valid JPEG: the shape of the file that made stb_image 2.27
  // write past its 257-entry array.
  const std::string jpg = jpeg_file(8, 8, 1, JCS_GRAYSCALE, std::vector<uint8_t>(64, 50));
  std::string dht = std::string("\xff\xc4", 2);
  const int len = 2 + 1 + 16 + 320;
  dht += (char)(len >> 8), dht += (char)(len & 0xff), dht += '\x00';  // class 0 (DC), table 0
  dht += std::string(16, (char)20) + std::string(320, '\x01');
  const std::string bogus = jpg.substr(0, 2) + dht + jpg.substr(2);
  CHECK_THROWS_WITH(decode(bogus, "bogus.jpg"), Contains("bogus.jpg") && Contains("Huffman"));
}

TEST_CASE("image folder: only .png .jpg .jpeg files are images; a JPEG named .png decodes", "[data]") {
  TempDir dir;
  write_png(dir.file("a.png"), solid(8, 8, {255, 0, 0}));
  write_bytes(dir.file("b.png"), jpeg_file(8, 8, 3, JCS_RGB, solid(8, 8, {0, 255, 0}).pixels));
  write_bytes(dir.file("c.bmp"), "BM" + std::string(200, '\0'));  // not counted, not skipped
  write_bytes(dir.file("d.gif"), "GIF89a" + std::string(200, '\0'));
  write_bytes(dir.file("e.jpeg"), "not a jpeg");  // counted, skipped
  for (int64_t cache : {int64_t(1) << 30, int64_t(0)}) {
    INFO("max_cache_bytes " << cache);
    auto ds = open_dataset(dir.path.string(), 8, 3, cache);
    CHECK(ds->size() == 2);
    CHECK(ds->skipped() == 1);
    const auto green = get_image(*ds, 1);
    CHECK(green[0] < -0.9f);
    CHECK(green[64] > 0.9f);
  }
}

TEST_CASE("fit_image crops the centre, resizes and converts channels", "[data]") {
  // 60x20: left third red, middle green, right third blue -> the centre square is green.
  Image img;
  img.w = 60, img.h = 20, img.channels = 3;
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 60; ++x) {
      const int third = x / 20;
      img.pixels.push_back(third == 0 ? 255 : 0);
      img.pixels.push_back(third == 1 ? 255 : 0);
      img.pixels.push_back(third == 2 ? 255 : 0);
    }
  const Image f = fit_image(img, 8, 3);
  CHECK(f.w == 8);
  CHECK(f.h == 8);
  CHECK(f.channels == 3);
  REQUIRE(f.pixels.size() == 8 * 8 * 3);
  for (int i = 0; i < 64; ++i) {
    CHECK(f.pixels[i * 3 + 0] == 0);
    CHECK(f.pixels[i * 3 + 1] == 255);
    CHECK(f.pixels[i * 3 + 2] == 0);
  }
  // Tall image, upsampled, to gray: luma of green = 0.587 * 255.
  const Image g = fit_image(img, 32, 1);
  CHECK(g.w == 32);
  CHECK(g.channels == 1);
  CHECK(g.pixels.size() == 32 * 32);
  CHECK(std::abs((int)g.pixels[32 * 16 + 16] - 150) <= 1);
  // Gray -> RGB repeats; a solid colour stays solid through the resize.
  const Image s = fit_image(solid(13, 29, {77}), 16, 3);
  CHECK(s.pixels.size() == 16 * 16 * 3);
  CHECK(std::all_of(s.pixels.begin(), s.pixels.end(), [](uint8_t v) { return v == 77; }));
  // RGBA drops alpha.
  const Image a = fit_image(solid(8, 8, {10, 20, 30, 40}), 8, 3);
  CHECK(a.pixels[0] == 10);
  CHECK(a.pixels[2] == 30);
  CHECK_THROWS_AS(fit_image(img, 8, 2), Error);
}

TEST_CASE("make_grid lays out images like torchvision", "[data]") {
  for (DType dt : {DType::f32, DType::f64}) {
    // 5 images of 3x2x3 (C, H, W); image k filled with (k - 2) / 2 -> -1, -0.5, 0, 0.5, 1.
    std::vector<double> v;
    for (int k = 0; k < 5; ++k)
      for (int i = 0; i < 3 * 2 * 3; ++i) v.push_back((k - 2) / 2.0);
    const Image g = make_grid(from_vector(v, {5, 3, 2, 3}, dt), 3, 1);
    CHECK(g.w == 3 * (3 + 1) + 1);
    CHECK(g.h == 2 * (2 + 1) + 1);
    CHECK(g.channels == 3);
    REQUIRE(g.pixels.size() == (size_t)g.w * g.h * 3);
    auto px = [&](int x, int y, int c) { return (int)g.pixels[((size_t)y * g.w + x) * 3 + c]; };
    const int expect[5] = {0, 64, 128, 191, 255};  // round((v + 1) * 127.5), ties to even
    for (int k = 0; k < 5; ++k) {
      const int ox = (k % 3) * 4 + 1, oy = (k / 3) * 3 + 1;
      for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 3; ++x)
          for (int c = 0; c < 3; ++c) CHECK(px(ox + x, oy + y, c) == expect[k]);
    }
    CHECK(px(0, 0, 0) == 0);   // padding
    CHECK(px(10, 5, 1) == 0);  // the empty sixth cell
    CHECK(px(12, 1, 2) == 0);  // right border
  }
  // Clamping, gray.
  const Image c = make_grid(from_vector({-3.0, 3.0}, {2, 1, 1, 1}), 1, 0);
  CHECK(c.w == 1);
  CHECK(c.h == 2);
  CHECK(c.channels == 1);
  CHECK(c.pixels == std::vector<uint8_t>{0, 255});
  CHECK_THROWS_AS(make_grid(zeros({2, 2, 4, 4}), 1), Error);
}

// ---- datasets ---------------------------------------------------------------------------------

TEST_CASE("image folder dataset: recursive, skips corrupt files, values in [-1, 1]", "[data]") {
  TempDir dir;
  fs::create_directories(dir.path / "sub");
  write_png(dir.file("a.png"), solid(40, 30, {255, 0, 0}));
  write_png(dir.file("sub/b.png"), solid(16, 16, {0}));
  write_png(dir.file("c.PNG"), solid(10, 20, {0, 255, 0, 128}));
  write_bytes(dir.file("corrupt.png"), std::string(100, 'x'));  // not an image at all
  write_bytes(dir.file("notes.txt"), "not an image, ignored");
  // A PNG whose header is fine but whose data is cut: only a full decode finds out.
  write_png(dir.file("truncated.png"), pattern(16, 16, 3));
  {
    std::string bytes = read_bytes(dir.file("truncated.png"));
    write_bytes(dir.file("truncated.png"), bytes.substr(0, bytes.size() / 2));
  }

  SECTION("decoded at open") {
    auto ds = open_dataset(dir.path.string(), 8, 3);
    CHECK(ds->size() == 3);
    CHECK(ds->skipped() == 2);
    CHECK(ds->resolution() == 8);
    CHECK(ds->channels() == 3);
    CHECK_THAT(ds->description(), Contains(dir.path.string()));
    // Sorted: a.png (red), c.PNG (green), sub/b.png (black).
    const auto red = get_image(*ds, 0);
    check_range(red);
    CHECK(red[0] == 1.0f);
    CHECK(red[64] == -1.0f);
    CHECK(red[128] == -1.0f);
    const auto green = get_image(*ds, 1);
    CHECK(green[64 + 10] == 1.0f);
    const auto black = get_image(*ds, 2);
    CHECK(std::all_of(black.begin(), black.end(), [](float x) { return x == -1.0f; }));
    CHECK_THROWS_AS(get_image(*ds, 3), Error);
    // Gray output.
    auto gray = open_dataset(dir.path.string(), 16, 1);
    CHECK(gray->image_numel() == 256);
    check_range(get_image(*gray, 0));
  }
  SECTION("decoded on demand: the truncated file is skipped in get()") {
    auto ds = open_dataset(dir.path.string(), 8, 3, /*max_cache_bytes=*/0);
    CHECK(ds->size() == 4);  // the header of truncated.png looks fine
    CHECK(ds->skipped() == 1);
    // Sorted: a.png, c.PNG, sub/b.png, truncated.png -> index 3 falls through to index 0.
    const auto v = get_image(*ds, 3);
    CHECK(ds->skipped() == 2);
    CHECK(v == get_image(*ds, 0));
    CHECK(get_image(*ds, 3) == v);  // and again, without a second warning
    CHECK(ds->skipped() == 2);
  }
}

TEST_CASE("dataset errors name the path", "[data]") {
  TempDir dir;
  fs::create_directories(dir.path / "empty");
  CHECK_THROWS_WITH(open_dataset(dir.file("empty"), 32, 3), Contains("empty") && Contains("no readable images"));
  fs::create_directories(dir.path / "bad");
  write_bytes(dir.file("bad/x.jpg"), "garbage");
  CHECK_THROWS_WITH(open_dataset(dir.file("bad"), 32, 3), Contains("bad"));
  CHECK_THROWS_WITH(open_dataset(dir.file("missing"), 32, 3), Contains("missing") && Contains("does not exist"));
  for (int64_t res : {0, 4, 30, 2048})
    CHECK_THROWS_WITH(open_dataset(dir.file("empty"), res, 3), Contains("power of two") && Contains("empty"));
  CHECK_THROWS_WITH(open_dataset(dir.file("empty"), 32, 2), Contains("channels"));
  write_bytes(dir.file("random.dat"), std::string(64, '\1'));
  CHECK_THROWS_WITH(open_dataset(dir.file("random.dat"), 32, 1), Contains("random.dat"));
  write_bytes(dir.file("short.bin"), std::string(3000, '\0'));
  CHECK_THROWS_WITH(open_dataset(dir.file("short.bin"), 32, 3), Contains("short.bin") && Contains("3073"));
  std::string idx = idx_bytes(2, 28, 28);
  write_bytes(dir.file("trunc-idx3-ubyte"), idx.substr(0, idx.size() - 5));
  CHECK_THROWS_WITH(open_dataset(dir.file("trunc-idx3-ubyte"), 32, 1), Contains("trunc-idx3-ubyte"));
  write_bytes(dir.file("zero-idx3-ubyte"), idx_bytes(0, 28, 28));
  CHECK_THROWS_WITH(open_dataset(dir.file("zero-idx3-ubyte"), 32, 1), Contains("no images"));
}

TEST_CASE("idx dataset: plain and gzip, padded to 32, resized otherwise", "[data]") {
  TempDir dir;
  const std::string bytes = idx_bytes(3, 28, 28);
  write_bytes(dir.file("plain-idx3-ubyte"), bytes);
  write_gz(dir.file("gz-idx3-ubyte.gz"), bytes);
  for (const char* name : {"plain-idx3-ubyte", "gz-idx3-ubyte.gz"}) {
    auto ds = open_dataset(dir.file(name), 32, 1);
    CHECK(ds->size() == 3);
    const auto v = get_image(*ds, 2);
    check_range(v);
    for (int x = 0; x < 32; ++x) {
      CHECK(v[x] == -1.0f);  // rows 0, 1, 30, 31 and columns 0, 1, 30, 31: padding
      CHECK(v[31 * 32 + x] == -1.0f);
      CHECK(v[x * 32 + 1] == -1.0f);
      CHECK(v[x * 32 + 30] == -1.0f);
    }
    // Pixel (y, x) of the 28x28 image lands at (y + 2, x + 2).
    CHECK(v[(2 + 5) * 32 + (2 + 7)] == to_unit((2 * 50 + 5 * 28 + 7) % 256));
  }
  auto rgb = open_dataset(dir.file("gz-idx3-ubyte.gz"), 16, 3);
  CHECK(rgb->image_numel() == 3 * 16 * 16);
  const auto v = get_image(*rgb, 1);
  check_range(v);
  CHECK(std::equal(v.begin(), v.begin() + 256, v.begin() + 256));  // channels repeat
  CHECK(std::equal(v.begin(), v.begin() + 256, v.begin() + 512));
}

TEST_CASE("idx reader: a header that claims more than the file holds allocates nothing", "[data][errors]") {
  // 73 bytes whose header claims 3 million 28x28 images (2.35 GB), and a 1 KB file claiming
  // 2^32 - 1 images of 4096x4096: refused by size (plain) or while reading (gzip), with the
  // counts in the message, not a 2 GB allocation or a bare std::bad_alloc.
  TempDir dir;
  const std::string liar = idx_bytes(0, 28, 28).replace(4, 4, be32(3000000)) + std::string(57, '\x7f');
  const std::string huge = idx_bytes(0, 4096, 4096).replace(4, 4, be32(0xffffffffu)) + std::string(1008, '\x01');
  write_bytes(dir.file("liar-idx3-ubyte"), liar);
  write_gz(dir.file("liar-idx3-ubyte.gz"), liar);
  write_bytes(dir.file("huge-idx3-ubyte"), huge);
  write_gz(dir.file("huge-idx3-ubyte.gz"), huge);
  for (const char* name : {"liar-idx3-ubyte", "liar-idx3-ubyte.gz"}) {
    INFO(name);
    CHECK_THROWS_WITH(data::read_idx_images(dir.file(name)),
                      Contains(name) && Contains("3000000 images") && Contains("holds only 57"));
  }
  for (const char* name : {"huge-idx3-ubyte", "huge-idx3-ubyte.gz"}) {
    INFO(name);
    CHECK_THROWS_WITH(data::read_idx_images(dir.file(name)),
                      Contains(name) && Contains("4294967295 images") && Contains("holds only 1008"));
  }
}

TEST_CASE("idx reader from memory: plain, gzip, gzip members, the same as from a file", "[data]") {
  TempDir dir;
  const std::string plain = idx_bytes(3, 4, 5);
  write_gz(dir.file("a.gz"), plain);
  const std::string gz = read_bytes(dir.file("a.gz"));
  write_gz(dir.file("head.gz"), plain.substr(0, 30));
  write_gz(dir.file("tail.gz"), plain.substr(30));
  const std::string members = read_bytes(dir.file("head.gz")) + read_bytes(dir.file("tail.gz"));
  write_bytes(dir.file("members.gz"), members);
  const IdxImages want = read_idx_images(dir.file("a.gz"));
  CHECK((want.count == 3 && want.rows == 4 && want.cols == 5));
  CHECK(want.pixels == std::vector<uint8_t>(plain.begin() + 16, plain.end()));
  for (const std::string& bytes : {plain, gz, members, gz + "trailing bytes, ignored like gzread does"}) {
    const IdxImages r = read_idx_images_from_memory(bytes.data(), bytes.size(), "mem");
    CHECK((r.count == 3 && r.rows == 4 && r.cols == 5));
    CHECK(r.pixels == want.pixels);
  }
  CHECK(read_idx_images(dir.file("members.gz")).pixels == want.pixels);
  CHECK(read_idx_images_from_memory(gz.data(), gz.size(), "mem", 2).pixels.size() == 40);
  // Corrupt deflate data, a truncated member: errors naming the input.
  std::string bad = gz;
  for (size_t i = 12; i < 20; ++i) bad[i] = (char)0xff;
  CHECK_THROWS_WITH(read_idx_images_from_memory(bad.data(), bad.size(), "bad.gz"), Contains("bad.gz"));
  const std::string cut = gz.substr(0, gz.size() - 20);
  CHECK_THROWS_WITH(read_idx_images_from_memory(cut.data(), cut.size(), "cut.gz"),
                    Contains("cut.gz") && Contains("truncated"));
}

TEST_CASE("Fashion-MNIST from Debian's dataset-fashion-mnist", "[data]") {
  if (!fs::exists(kDefaultDatasetPath)) {
    WARN("dataset-fashion-mnist not installed: skipped");
    return;
  }
  auto ds = open_dataset(kDefaultDatasetPath, 32, 1);
  CHECK(ds->size() == 60000);
  CHECK(ds->resolution() == 32);
  for (int64_t i : {0, 59999}) {
    const auto v = get_image(*ds, i);
    check_range(v);
    for (int x = 0; x < 32; ++x) {
      CHECK(v[x] == -1.0f);
      CHECK(v[32 + x] == -1.0f);
      CHECK(v[30 * 32 + x] == -1.0f);
      CHECK(v[31 * 32 + x] == -1.0f);
    }
    CHECK(*std::max_element(v.begin(), v.end()) > 0.0f);  // something is drawn
  }
}

TEST_CASE("CIFAR-10 binary: a file and a directory of batches", "[data]") {
  TempDir dir;
  write_bytes(dir.file("one.bin"), cifar_bytes(3));
  auto one = open_dataset(dir.file("one.bin"), 32, 3);
  CHECK(one->size() == 3);
  const auto v = get_image(*one, 2);
  check_range(v);
  for (int c = 0; c < 3; ++c) CHECK(v[c * 1024 + 4 * 32 + 9] == to_unit((2 + c * 40 + 4 + 9) % 256));

  fs::create_directories(dir.path / "cifar");
  write_bytes(dir.file("cifar/data_batch_1.bin"), cifar_bytes(2, 0));
  write_bytes(dir.file("cifar/data_batch_2.bin"), cifar_bytes(3, 2));
  write_bytes(dir.file("cifar/test_batch.bin"), cifar_bytes(4, 100));  // not training data
  auto all = open_dataset(dir.file("cifar"), 32, 3);
  CHECK(all->size() == 5);
  CHECK(get_image(*all, 2) == v);  // the first record of data_batch_2 is record 2 overall
  auto small = open_dataset(dir.file("cifar"), 16, 1);
  CHECK(small->image_numel() == 256);
  check_range(get_image(*small, 4));
}

// ---- batch loader -----------------------------------------------------------------------------

TEST_CASE("BatchLoader: permutations are deterministic and complete", "[data]") {
  const auto p = BatchLoader::permutation(1000, 7, 3);
  CHECK(p == BatchLoader::permutation(1000, 7, 3));
  CHECK(p != BatchLoader::permutation(1000, 7, 4));
  CHECK(p != BatchLoader::permutation(1000, 8, 3));
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(sorted[i] == i);
  // Pinned so the order never changes across versions and platforms (values checked with an
  // independent Python reimplementation of Philox4x32-10 + this Fisher-Yates).
  CHECK(BatchLoader::permutation(10, 0, 0) == std::vector<int64_t>{7, 1, 3, 2, 6, 0, 5, 4, 8, 9});
  CHECK(BatchLoader::permutation(10, 1234, 5) == std::vector<int64_t>{8, 9, 3, 7, 6, 0, 2, 5, 4, 1});
  std::string bits;
  for (int64_t i = 0; i < 16; ++i) bits += BatchLoader::flipped(1234, 5, i) ? '1' : '0';
  CHECK(bits == "1111011100000101");
  int flips = 0;
  for (int64_t i = 0; i < 2000; ++i) flips += BatchLoader::flipped(5, 1, i);
  CHECK(flips > 850);
  CHECK(flips < 1150);
}

TEST_CASE("BatchLoader: same seed, same batches; epochs; seek resumes exactly", "[data]") {
  Synthetic ds(10);
  BatchLoader a(ds, 4, 42, false, 2), b(ds, 4, 42, false, 0), c(ds, 4, 43, false, 3);
  const auto ba = take(a, 7), bb = take(b, 7), bc = take(c, 7);
  CHECK(ba == bb);
  CHECK(ba != bc);
  CHECK(a.epoch() == 2);  // 28 images = 2 epochs of 10 + 8
  CHECK(a.position() == 8);
  // The first 10 images are epoch 0's permutation, in order; each image once per epoch.
  const auto perm0 = BatchLoader::permutation(10, 42, 0);
  std::vector<int64_t> seen;
  for (const auto& batch : ba)
    for (int k = 0; k < 4; ++k) seen.push_back(Synthetic::id_of(&batch[(size_t)k * 64]));
  CHECK(std::vector<int64_t>(seen.begin(), seen.begin() + 10) == perm0);
  CHECK(std::vector<int64_t>(seen.begin() + 10, seen.begin() + 20) == BatchLoader::permutation(10, 42, 1));
  // Seek: a fresh loader positioned where `a` was after 3 batches sees batches 4..7.
  BatchLoader d(ds, 4, 42, false, 2);
  d.seek(1, 2);  // 12 images in
  CHECK(take(d, 4) == std::vector<std::vector<float>>(ba.begin() + 3, ba.end()));
  // Seeking back on a loader with batches in flight drops them.
  a.seek(0, 0);
  CHECK(a.epoch() == 0);
  CHECK(take(a, 2) == std::vector<std::vector<float>>(ba.begin(), ba.begin() + 2));
  a.seek(0, 14);  // carries into epoch 1
  CHECK(a.epoch() == 1);
  CHECK(a.position() == 4);
  const auto after = take(a, 1)[0];
  for (int k = 0; k < 4; ++k) CHECK(Synthetic::id_of(&after[(size_t)k * 64]) == seen[(size_t)(14 + k)]);
}

TEST_CASE("BatchLoader: mirror flips the images flipped() names", "[data]") {
  Synthetic ds(16);
  BatchLoader plain(ds, 8, 5, false), mirrored(ds, 8, 5, true);
  int flipped = 0;
  for (int step = 0; step < 8; ++step) {
    const uint64_t epoch = mirrored.epoch();
    const int64_t pos0 = mirrored.position();
    Tensor p = plain.next(), m = mirrored.next();
    for (int k = 0; k < 8; ++k) {
      const float* pi = p.data<float>() + k * 64;
      const float* mi = m.data<float>() + k * 64;
      REQUIRE(Synthetic::id_of(pi) == Synthetic::id_of(mi));
      const bool f = BatchLoader::flipped(5, epoch, pos0 + k);
      CHECK(Synthetic::is_flipped(mi) == f);
      CHECK_FALSE(Synthetic::is_flipped(pi));
      flipped += f;
    }
  }
  CHECK(flipped > 16);
  CHECK(flipped < 48);
  CHECK_THROWS_AS(BatchLoader(ds, 0, 1, false), Error);
}

TEST_CASE("BatchLoader over a real dataset returns [B, C, R, R] in [-1, 1]", "[data]") {
  TempDir dir;
  write_bytes(dir.file("c.bin"), cifar_bytes(5));
  auto ds = open_dataset(dir.file("c.bin"), 16, 3);
  BatchLoader l(*ds, 3, 1, true, 1);
  for (int i = 0; i < 4; ++i) {
    Tensor t = l.next();
    CHECK(t.shape() == Shape{3, 3, 16, 16});
    CHECK(t.dtype() == DType::f32);
    const auto v = t.to_vector();
    CHECK(*std::min_element(v.begin(), v.end()) >= -1.0);
    CHECK(*std::max_element(v.begin(), v.end()) <= 1.0);
  }
}

// ---- run directories and logs ----------------------------------------------------------------

TEST_CASE("run directories, atomic text, JSON lines", "[data]") {
  TempDir dir;
  const std::string out = dir.file("runs");
  const std::string r0 = create_run_dir(out, "fmnist");
  CHECK(fs::path(r0).filename() == "00000-fmnist");
  CHECK(fs::is_directory(r0));
  fs::create_directories(fs::path(out) / "00007-old");
  fs::create_directories(fs::path(out) / "notes");
  CHECK(fs::path(create_run_dir(out, "next")).filename() == "00008-next");
  CHECK_THROWS_AS(create_run_dir(out, "a/b"), Error);

  const std::string txt = dir.file("t.txt");
  write_text_atomic(txt, "hello\n");
  write_text_atomic(txt, "world\n");
  CHECK(read_bytes(txt) == "world\n");
  CHECK_FALSE(fs::exists(txt + ".tmp"));
  CHECK_THROWS_WITH(write_text_atomic(dir.file("nope/t.txt"), "x"), Contains("nope/t.txt"));

  CHECK(json_escape("a\"b\\c\nd\x01") == "a\\\"b\\\\c\\nd\\u0001");
  {
    JsonLog log(dir.file("stats.jsonl"));
    log.write({{"kimg", 4}, {"loss", 0.25}, {"bad", std::nan("")}}, {{"phase", "G\"main"}});
    log.write({{"kimg", 8}});
    CHECK(read_bytes(dir.file("stats.jsonl")) ==  // flushed before the log closes
          "{\"kimg\": 4, \"loss\": 0.25, \"bad\": null, \"phase\": \"G\\\"main\"}\n{\"kimg\": 8}\n");
  }
  JsonLog again(dir.file("stats.jsonl"));  // appends
  again.write({{"kimg", 12}});
  CHECK(read_bytes(dir.file("stats.jsonl")).ends_with("{\"kimg\": 8}\n{\"kimg\": 12}\n"));
  CHECK_THROWS_AS(JsonLog(dir.file("nope/x.jsonl")), Error);
}
