// Images for datasets and sample grids: 8-bit pixels, HWC (row-major, channels
// interleaved).
//
// Reading: PNG through libpng (its simplified png_image API) and JPEG through libjpeg-turbo,
// nothing else. Both are Debian packages fuzzed continuously by OSS-Fuzz. Decoding used to go
// through Debian's stb_image 2.27, which has memory-safety bugs on crafted files (issue 12:
// a 369-byte JPEG made stbi__build_huffman write 1,556 bytes past a 257-byte array, a
// 532-byte PNG made it allocate 1.8 GB), reachable from any image-folder dataset; a guard in
// front of it would have had to re-parse both formats, so stb_image decoding is gone.
// stb_image_write (our own buffers to PNG) and stb_image_resize stay (their implementations
// live in image_io.cpp). Our fuzz target fuzz/fuzz_image.cpp runs decode_image.
//
// Limits, checked on the header before any pixel buffer is allocated: width and height at
// most kMaxImageSide, width * height at most kMaxImagePixels, files at most kMaxImageFileBytes.
// libjpeg-turbo also runs with a memory limit and at most 500 progressive scans (the limit
// its TurboJPEG API uses); a JPEG cut short or with corrupt entropy-coded data is an error,
// not a gray-filled image (libjpeg would only warn).
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
// The same PNG bytes, in memory (TensorBoard's image summaries); `name` is for messages.
std::vector<uint8_t> encode_png(const uint8_t* pixels, int w, int h, int channels, const std::string& name = "image");
inline std::vector<uint8_t> encode_png(const Image& img, const std::string& name = "image") {
  return encode_png(img.pixels.data(), img.w, img.h, img.channels, name);
}

constexpr int kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = 100'000'000;
constexpr int64_t kMaxImageFileBytes = int64_t(256) << 20;

// Decodes a PNG or JPEG held in memory (the format is told by its first bytes, never by a
// name) with its own channel count: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
//   PNG: 16-bit samples become 8-bit (v / 257, rounded; 16-bit data without gAMA / sRGB is
//        taken as sRGB-encoded, like 8-bit data), palettes expand to RGB (RGBA with tRNS),
//        tRNS on gray / RGB adds an alpha channel. libpng converts files whose gAMA is not
//        sRGB's to sRGB values (PIL and stb_image ignore gAMA; such files are rare).
//   JPEG: gray -> 1 channel, YCbCr / RGB -> 3; CMYK and YCCK JPEGs are refused (sg::Error
//        saying so), not converted.
// `name` is only for messages. max_pixels lowers kMaxImagePixels (the fuzz target uses a
// smaller bound to stay fast). sg::Error naming `name` on anything else: unknown format,
// truncated or corrupt data, dimensions over the limits (the message gives the size and the
// limit).
Image decode_image(const uint8_t* data, size_t size, const std::string& name, int64_t max_pixels = kMaxImagePixels);

// Reads the file (refusing files over kMaxImageFileBytes) and decodes it with decode_image.
Image load_image(const std::string& path);
// Reads only the header: true and the size and channel count load_image would return if the
// file is a PNG or JPEG whose header parses and is within the limits; otherwise false, with
// the reason in *why when given. Reads the first 64 KiB of the file, the whole file only
// when the header lies further in (large metadata before it).
bool probe_image(const std::string& path, int* w, int* h, int* channels, std::string* why = nullptr);

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
