#include "train/image_io.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "engine/autograd.h"
#include "engine/error.h"
#include "train/run_dir.h"

// The one translation unit with the stb implementations.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
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

}  // namespace

void write_png(const std::string& path, const uint8_t* pixels, int w, int h, int channels) {
  SG_CHECK(pixels != nullptr && w > 0 && h > 0 && channels >= 1 && channels <= 4, "write_png", "'", path,
           "': bad image ", w, "x", h, "x", channels);
  std::vector<uint8_t> png;
  const int ok = stbi_write_png_to_func(append_bytes, &png, w, h, channels, pixels, w * channels);
  SG_CHECK(ok && !png.empty(), "write_png", "encoding '", path, "' failed");
  write_file_atomic(path, png.data(), png.size());
}

Image load_image(const std::string& path) {
  int w = 0, h = 0, c = 0;
  uint8_t* data = stbi_load(path.c_str(), &w, &h, &c, 0);
  if (data == nullptr) {
    const char* why = stbi_failure_reason();
    throw Error(str("load_image: cannot decode '", path, "': ", why ? why : "unknown error"));
  }
  Image img;
  img.w = w, img.h = h, img.channels = c;
  img.pixels.assign(data, data + (size_t)w * h * c);
  stbi_image_free(data);
  SG_CHECK(w > 0 && h > 0 && c >= 1 && c <= 4, "load_image", "'", path, "' decoded to ", w, "x", h, "x", c);
  return img;
}

bool probe_image(const std::string& path, int* w, int* h, int* channels) {
  int ww = 0, hh = 0, cc = 0;
  if (!stbi_info(path.c_str(), &ww, &hh, &cc) || ww <= 0 || hh <= 0) return false;
  if (w) *w = ww;
  if (h) *h = hh;
  if (channels) *channels = cc;
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
  const int ok = stbir_resize_uint8(src.pixels.data(), side, side, 0, out.pixels.data(), resolution, resolution, 0,
                                    channels);
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
