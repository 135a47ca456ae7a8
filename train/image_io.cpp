#include "train/image_io.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <jpeglib.h>  // after <cstdio>: it uses FILE and size_t
#include <jerror.h>   // the JWRN_ warning codes
#include <png.h>

#include "engine/autograd.h"
#include "engine/error.h"
#include "train/run_dir.h"

// The one translation unit with the stb implementations (writing and resizing only).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#include <stb_image_resize.h>
#pragma GCC diagnostic pop

namespace sg::data {

namespace {

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

// The PNG bytes of an image; `op` and `name` are for the messages.
std::vector<uint8_t> encode_png_named(const char* op, const std::string& name, const uint8_t* pixels, int w, int h,
                                      int channels) {
  SG_CHECK(pixels != nullptr && w > 0 && h > 0 && channels >= 1 && channels <= 4, op, "'", name, "': bad image ", w,
           "x", h, "x", channels);
  std::vector<uint8_t> png;
  const int ok = stbi_write_png_to_func(append_bytes, &png, w, h, channels, pixels, w * channels);
  SG_CHECK(ok && !png.empty(), op, "encoding '", name, "' failed");
  return png;
}

}  // namespace

std::vector<uint8_t> encode_png(const uint8_t* pixels, int w, int h, int channels, const std::string& name) {
  return encode_png_named("encode_png", name, pixels, w, h, channels);
}

void write_png(const std::string& path, const uint8_t* pixels, int w, int h, int channels) {
  const std::vector<uint8_t> png = encode_png_named("write_png", path, pixels, w, h, channels);
  write_file_atomic(path, png.data(), png.size());
}

// ---- reading: PNG through libpng, JPEG through libjpeg-turbo -------------------------------
namespace {

constexpr int kMaxJpegScans = 500;                // TurboJPEG's TJFLAG_LIMITSCANS limit
constexpr size_t kProbeBytes = size_t(64) << 10;  // what probe_image reads first

enum class Format { png, jpeg, unknown };

Format sniff(const uint8_t* d, size_t n) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 8 && std::memcmp(d, kPng, 8) == 0) return Format::png;
  if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) return Format::jpeg;
  return Format::unknown;
}

[[noreturn]] void fail_decode(const std::string& name, const std::string& why) {
  throw Error(str("decode_image: '", name, "': ", why));
}

// The size limits, on the header's dimensions, before anything is allocated for pixels: ""
// when the image is within them, else what is wrong.
std::string dimension_problem(const char* format, int64_t w, int64_t h, int64_t max_pixels) {
  if (w <= 0 || h <= 0) return str(format, " header gives an empty image (", w, "x", h, ")");
  if (w > kMaxImageSide || h > kMaxImageSide || w * h > max_pixels)
    return str(format, " image of ", w, "x", h, " pixels is over the limit of ", kMaxImageSide, " pixels per side and ",
               max_pixels, " pixels in all");
  return "";
}

void check_dimensions(const std::string& name, const char* format, int64_t w, int64_t h, int64_t max_pixels) {
  const std::string problem = dimension_problem(format, w, h, max_pixels);
  if (!problem.empty()) fail_decode(name, problem);
}

struct Header {
  int w = 0, h = 0, channels = 0;
};

// ---- PNG: libpng's simplified API (it does its own setjmp / longjmp inside libpng) -----------
struct PngReader {
  png_image img;
  PngReader() {
    std::memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
  }
  ~PngReader() { png_image_free(&img); }
  PngReader(const PngReader&) = delete;
  PngReader& operator=(const PngReader&) = delete;
};

// Reads the chunks up to the image data; on success chooses the 8-bit output format with the
// file's own channels and returns the header. false with *why on failure.
bool png_begin(PngReader& r, const uint8_t* data, size_t size, Header* hdr, std::string* why) {
  if (!png_image_begin_read_from_memory(&r.img, data, size)) {
    *why = str("truncated or corrupt PNG header: ", r.img.message);
    return false;
  }
  const bool color = r.img.format & PNG_FORMAT_FLAG_COLOR, alpha = r.img.format & PNG_FORMAT_FLAG_ALPHA;
  r.img.format = (color ? PNG_FORMAT_FLAG_COLOR : 0u) | (alpha ? PNG_FORMAT_FLAG_ALPHA : 0u);  // 8-bit, sRGB
  r.img.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;  // 16-bit data without gAMA is sRGB-encoded, not linear
  hdr->w = (int)std::min<png_uint_32>(r.img.width, INT32_MAX);
  hdr->h = (int)std::min<png_uint_32>(r.img.height, INT32_MAX);
  hdr->channels = (color ? 3 : 1) + (alpha ? 1 : 0);
  return true;
}

Image decode_png(const uint8_t* data, size_t size, const std::string& name, int64_t max_pixels) {
  PngReader r;
  Header hdr;
  std::string why;
  if (!png_begin(r, data, size, &hdr, &why)) fail_decode(name, why);
  check_dimensions(name, "PNG", r.img.width, r.img.height, max_pixels);
  Image img;
  img.w = hdr.w, img.h = hdr.h, img.channels = hdr.channels;
  img.pixels.resize((size_t)img.w * img.h * img.channels);
  if (!png_image_finish_read(&r.img, nullptr, img.pixels.data(), 0, nullptr))
    fail_decode(name, str("truncated or corrupt PNG: ", r.img.message));
  return img;
}

// ---- JPEG: libjpeg-turbo, errors through setjmp / longjmp --------------------------------------
// Plain C data only: the longjmp out of libjpeg's error handler lands in jpeg_begin or
// jpeg_decode, which hold nothing with a destructor.
struct JpegError {
  jpeg_error_mgr pub;  // first: libjpeg's cinfo->err points here
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
};

struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegError err;
  jpeg_progress_mgr progress;
};

[[noreturn]] void jpeg_on_error(j_common_ptr cinfo) {
  JpegError* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// libjpeg only warns about a file cut short or corrupt entropy-coded data (and fills in gray);
// those are errors here. Warnings about harmless oddities are counted and ignored.
void jpeg_on_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;  // trace messages
  switch (cinfo->err->msg_code) {
    case JWRN_EXTRANEOUS_DATA:  // stray bytes between markers
    case JWRN_ADOBE_XFORM:
    case JWRN_JFIF_MAJOR:
    case JWRN_BOGUS_ICC:
      cinfo->err->num_warnings++;
      return;
    default:
      jpeg_on_error(cinfo);
  }
}

// A progressive JPEG can hold any number of scans, each a pass over the whole image.
void jpeg_on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  const int scans = reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number;
  if (scans > kMaxJpegScans) {
    JpegError* e = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(e->message, sizeof e->message, "progressive JPEG with more than %d scans", kMaxJpegScans);
    std::longjmp(e->jump, 1);
  }
}

// Creates the decompressor on data and reads the header. false with st->err.message on
// failure. st must be zero-initialised; jpeg_destroy_decompress(&st->cinfo) is always safe
// afterwards.
bool jpeg_begin(JpegState* st, const uint8_t* data, size_t size, long max_memory) {
  st->cinfo.err = jpeg_std_error(&st->err.pub);
  st->err.pub.error_exit = jpeg_on_error;
  st->err.pub.emit_message = jpeg_on_message;
  if (setjmp(st->err.jump)) return false;
  jpeg_create_decompress(&st->cinfo);
  st->cinfo.mem->max_memory_to_use = max_memory;
  st->progress.progress_monitor = jpeg_on_progress;
  st->cinfo.progress = &st->progress;
  jpeg_mem_src(&st->cinfo, data, (unsigned long)size);
  jpeg_read_header(&st->cinfo, TRUE);
  return true;
}

// After jpeg_begin and the caller's choice of out_color_space: decodes every row into out
// (output_height rows of `stride` bytes). false with st->err.message on failure. The rest
// of the file after the last row is not read: a missing EOI marker is no error.
bool jpeg_decode(JpegState* st, uint8_t* out, size_t stride) {
  if (setjmp(st->err.jump)) return false;
  const JDIMENSION w = st->cinfo.output_width, h = st->cinfo.output_height;
  const int c = st->cinfo.output_components;
  jpeg_start_decompress(&st->cinfo);
  if (st->cinfo.output_width != w || st->cinfo.output_height != h || st->cinfo.output_components != c) {
    std::snprintf(st->err.message, sizeof st->err.message, "JPEG output size changed when decoding started");
    return false;
  }
  while (st->cinfo.output_scanline < h) {
    JSAMPROW row = out + (size_t)st->cinfo.output_scanline * stride;
    jpeg_read_scanlines(&st->cinfo, &row, 1);
  }
  return true;
}

struct JpegReader {
  JpegState st;
  JpegReader() { std::memset(&st, 0, sizeof st); }
  ~JpegReader() { jpeg_destroy_decompress(&st.cinfo); }
  JpegReader(const JpegReader&) = delete;
  JpegReader& operator=(const JpegReader&) = delete;
};

// jpeg_begin, then the colour space: gray stays gray, YCbCr / RGB become RGB, the rest is
// refused. false with *why on failure.
bool jpeg_header(JpegReader& r, const uint8_t* data, size_t size, int64_t max_pixels, Header* hdr, std::string* why) {
  // Enough for the whole-image coefficient buffers of a progressive 3-component image at
  // the largest size allowed (2 bytes per coefficient), with room for the tables.
  const long max_memory = (long)std::min<int64_t>(8 * max_pixels + (int64_t(64) << 20), LONG_MAX);
  if (!jpeg_begin(&r.st, data, size, max_memory)) {
    *why = str("truncated or corrupt JPEG header: ", r.st.err.message);
    return false;
  }
  jpeg_decompress_struct& ci = r.st.cinfo;
  switch (ci.jpeg_color_space) {
    case JCS_GRAYSCALE:
      ci.out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_YCbCr:
    case JCS_RGB:
      ci.out_color_space = JCS_RGB;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      *why = "CMYK JPEGs are not supported (convert the file to RGB)";
      return false;
    default:
      *why = str("unsupported JPEG colour space (", ci.num_components, " components)");
      return false;
  }
  hdr->w = (int)std::min<JDIMENSION>(ci.image_width, INT32_MAX);
  hdr->h = (int)std::min<JDIMENSION>(ci.image_height, INT32_MAX);
  hdr->channels = ci.out_color_space == JCS_GRAYSCALE ? 1 : 3;
  return true;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name, int64_t max_pixels) {
  JpegReader r;
  Header hdr;
  std::string why;
  if (!jpeg_header(r, data, size, max_pixels, &hdr, &why)) fail_decode(name, why);
  check_dimensions(name, "JPEG", r.st.cinfo.image_width, r.st.cinfo.image_height, max_pixels);
  jpeg_calc_output_dimensions(&r.st.cinfo);  // cannot fail once the header is read: scale 1/1
  if ((int)r.st.cinfo.output_width != hdr.w || (int)r.st.cinfo.output_height != hdr.h ||
      r.st.cinfo.output_components != hdr.channels)
    fail_decode(name, "JPEG output size differs from its header");
  Image img;
  img.w = hdr.w, img.h = hdr.h, img.channels = hdr.channels;
  img.pixels.resize((size_t)img.w * img.h * img.channels);
  if (!jpeg_decode(&r.st, img.pixels.data(), (size_t)img.w * img.channels))
    fail_decode(name, str("truncated or corrupt JPEG: ", r.st.err.message));
  return img;
}

// Reads at most `limit` bytes of the file; *complete tells whether that was all of it.
std::vector<uint8_t> read_file_prefix(const std::string& path, size_t limit, bool* complete, const char* who) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error(str(who, ": cannot open '", path, "': ", std::strerror(errno)));
  std::vector<uint8_t> out;
  size_t chunk = 64 << 10;  // grows: the file's size is not trusted with an allocation
  while (out.size() < limit) {
    const size_t at = out.size(), n = std::min(chunk, limit - at);
    out.resize(at + n);
    const size_t got = std::fread(out.data() + at, 1, n, f.get());
    out.resize(at + got);
    if (got < n) {
      if (std::ferror(f.get())) throw Error(str(who, ": cannot read '", path, "'"));
      *complete = true;
      return out;
    }
    chunk = std::min<size_t>(chunk * 2, size_t(16) << 20);
  }
  *complete = std::fgetc(f.get()) == EOF;
  return out;
}

bool probe_memory(const uint8_t* data, size_t size, Header* hdr, std::string* why) {
  switch (sniff(data, size)) {
    case Format::png: {
      PngReader r;
      if (!png_begin(r, data, size, hdr, why)) return false;
      *why = dimension_problem("PNG", r.img.width, r.img.height, kMaxImagePixels);
      return why->empty();
    }
    case Format::jpeg: {
      JpegReader r;
      if (!jpeg_header(r, data, size, kMaxImagePixels, hdr, why)) return false;
      *why = dimension_problem("JPEG", r.st.cinfo.image_width, r.st.cinfo.image_height, kMaxImagePixels);
      return why->empty();
    }
    case Format::unknown:
      *why = "not a PNG or JPEG file";
      return false;
  }
  return false;
}

}  // namespace

Image decode_image(const uint8_t* data, size_t size, const std::string& name, int64_t max_pixels) {
  if (data == nullptr || size == 0) fail_decode(name, "empty file");
  max_pixels = std::min(max_pixels, kMaxImagePixels);
  switch (sniff(data, size)) {
    case Format::png:
      return decode_png(data, size, name, max_pixels);
    case Format::jpeg:
      return decode_jpeg(data, size, name, max_pixels);
    case Format::unknown:
      break;
  }
  fail_decode(name, "not a PNG or JPEG file (only those are read; the format is told by the first bytes)");
}

Image load_image(const std::string& path) {
  bool complete = false;
  const std::vector<uint8_t> bytes = read_file_prefix(path, (size_t)kMaxImageFileBytes, &complete, "load_image");
  if (!complete)
    throw Error(
        str("load_image: '", path, "' is larger than the limit of ", kMaxImageFileBytes, " bytes for an image"));
  return decode_image(bytes.data(), bytes.size(), path);
}

bool probe_image(const std::string& path, int* w, int* h, int* channels, std::string* why) {
  std::string reason;
  Header hdr;
  bool ok = false;
  try {
    bool complete = false;
    std::vector<uint8_t> bytes = read_file_prefix(path, kProbeBytes, &complete, "probe_image");
    ok = probe_memory(bytes.data(), bytes.size(), &hdr, &reason);
    if (!ok && !complete) {  // the header may lie past the first bytes
      bytes = read_file_prefix(path, (size_t)kMaxImageFileBytes, &complete, "probe_image");
      if (!complete)
        reason = str("larger than the limit of ", kMaxImageFileBytes, " bytes for an image");
      else
        ok = probe_memory(bytes.data(), bytes.size(), &hdr, &reason);
    }
  } catch (const std::exception& e) {
    reason = e.what();
  }
  if (!ok) {
    if (why) *why = reason;
    return false;
  }
  if (w) *w = hdr.w;
  if (h) *h = hdr.h;
  if (channels) *channels = hdr.channels;
  return true;
}

Image convert_channels(const Image& img, int channels) {
  SG_CHECK(channels == 1 || channels == 3, "convert_channels", "channels must be 1 or 3, got ", channels);
  SG_CHECK(img.channels >= 1 && img.channels <= 4 && img.pixels.size() == (size_t)img.w * img.h * img.channels,
           "convert_channels", "bad image ", img.w, "x", img.h, "x", img.channels);
  const bool src_color = img.channels >= 3;
  if (img.channels == channels) return img;
  Image out;
  out.w = img.w, out.h = img.h, out.channels = channels;
  const size_t n = (size_t)img.w * img.h;
  out.pixels.resize(n * channels);
  const int sc = img.channels;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* s = &img.pixels[i * sc];
    uint8_t* d = &out.pixels[i * channels];
    if (channels == 1) {
      // src is RGB(A) or gray+alpha
      d[0] = src_color ? (uint8_t)((s[0] * 299u + s[1] * 587u + s[2] * 114u + 500u) / 1000u) : s[0];
    } else {
      if (src_color) {
        d[0] = s[0], d[1] = s[1], d[2] = s[2];
      } else {
        d[0] = d[1] = d[2] = s[0];
      }
    }
  }
  return out;
}

Image fit_image(const Image& img, int resolution, int channels) {
  SG_CHECK(resolution > 0, "fit_image", "resolution must be positive, got ", resolution);
  Image src = convert_channels(img, channels);
  const int side = std::min(src.w, src.h);
  if (src.w != src.h) {
    Image sq;
    sq.w = sq.h = side, sq.channels = channels;
    sq.pixels.resize((size_t)side * side * channels);
    const int x0 = (src.w - side) / 2, y0 = (src.h - side) / 2;
    for (int y = 0; y < side; ++y) {
      const uint8_t* s = &src.pixels[((size_t)(y0 + y) * src.w + x0) * channels];
      std::copy(s, s + (size_t)side * channels, &sq.pixels[(size_t)y * side * channels]);
    }
    src = std::move(sq);
  }
  if (side == resolution) return src;
  Image out;
  out.w = out.h = resolution, out.channels = channels;
  out.pixels.resize((size_t)resolution * resolution * channels);
  const int ok =
      stbir_resize_uint8(src.pixels.data(), side, side, 0, out.pixels.data(), resolution, resolution, 0, channels);
  SG_CHECK(ok, "fit_image", "resize ", side, "x", side, " -> ", resolution, "x", resolution, " failed");
  return out;
}

Image make_grid(const Tensor& imgs, int64_t nrow, int padding) {
  SG_CHECK(imgs.defined() && imgs.dim() == 4 && (imgs.size(1) == 1 || imgs.size(1) == 3) && imgs.size(0) > 0,
           "make_grid", "expected images [N, 1 or 3, H, W] with N > 0, got ",
           imgs.defined() ? imgs.str() : std::string("undefined"));
  SG_CHECK(nrow > 0 && padding >= 0, "make_grid", "nrow must be positive and padding non-negative, got nrow=", nrow,
           " padding=", padding);
  autograd::NoGradGuard no_grad;
  const Tensor t = imgs.detach().cpu();
  const int64_t n = t.size(0), c = t.size(1), h = t.size(2), w = t.size(3);
  const int64_t xmaps = std::min(nrow, n), ymaps = (n + xmaps - 1) / xmaps;
  Image out;
  out.channels = (int)c;
  const int64_t gw = xmaps * (w + padding) + padding, gh = ymaps * (h + padding) + padding;
  SG_CHECK(gw < (1 << 16) && gh < (1 << 16), "make_grid", "grid of ", gw, "x", gh, " pixels is too large");
  out.w = (int)gw, out.h = (int)gh;
  out.pixels.assign((size_t)gw * gh * c, 0);
  dispatch_dtype(t.dtype(), [&]<class T>() {
    const T* src = t.data<T>();
    for (int64_t k = 0; k < n; ++k) {
      const int64_t ox = (k % xmaps) * (w + padding) + padding, oy = (k / xmaps) * (h + padding) + padding;
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x) {
            double v = ((double)src[((k * c + ch) * h + y) * w + x] + 1.0) * 127.5;
            v = std::isnan(v) ? 0.0 : std::clamp(std::nearbyint(v), 0.0, 255.0);
            out.pixels[((size_t)(oy + y) * gw + (ox + x)) * c + ch] = (uint8_t)v;
          }
    }
  });
  return out;
}

}  // namespace sg::data
