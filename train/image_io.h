// Images for datasets and sample grids: 8-bit pixels, HWC (row-major, channels
// interleaved), through stb_image (read: PNG, JPEG, BMP, GIF, TGA, PSD, PNM, ...),
// stb_image_write (PNG) and stb_image_resize (the stb implementations live in image_io.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace sg::data {

struct Image {
  int w = 0, h = 0, channels = 0;
  std::vector<uint8_t> pixels;  // h * w * channels, HWC
};

// Writes a PNG atomically (path.tmp, fsync, rename). channels 1 (gray), 2 (gray+alpha),
// 3 (RGB) or 4 (RGBA). sg::Error naming the file on failure.
void write_png(const std::string& path, const uint8_t* pixels, int w, int h, int channels);
inline void write_png(const std::string& path, const Image& img) {
  write_png(path, img.pixels.data(), img.w, img.h, img.channels);
}

// Decodes an image file with its own channel count (1..4). sg::Error naming the file and
// stb's reason on failure.
Image load_image(const std::string& path);
// Reads only the header: true and the size if stb recognises the file.
bool probe_image(const std::string& path, int* w, int* h, int* channels);

// Converts to 1 (gray: ITU-R 601 luma, as PIL's convert("L")) or 3 (RGB) channels; alpha
// is dropped.
Image convert_channels(const Image& img, int channels);

// Centre-crops to a square of the short side, resizes it to resolution x resolution
// (stb_image_resize: Mitchell filter down, Catmull-Rom up), and converts to 1 or 3
// channels. Cropping before resizing is the same as resizing the short side to
// `resolution` and cropping after, without the rounding of the long side.
Image fit_image(const Image& img, int resolution, int channels);

// A grid of images as torchvision's make_grid: nrow images per row, `padding` black pixels
// around and between them. imgs [N, C, H, W] (C = 1 or 3; f32 or f64, any device) holds
// values in [-1, 1], mapped to round((x + 1) * 127.5) clamped to 0..255.
Image make_grid(const Tensor& imgs, int64_t nrow, int padding = 2);

}  // namespace sg::data
