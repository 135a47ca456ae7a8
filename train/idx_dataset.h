// Reader for the idx image format of MNIST / Fashion-MNIST (optionally gzip-compressed):
// big-endian magic 0x00000803, count, rows, cols, then count*rows*cols bytes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sg::data {

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols
};

// Reads at most max_count images (all when max_count < 0). Throws sg::Error naming the file
// on a missing, truncated or malformed file. The header is not trusted with memory: a plain
// file must hold the pixels its header claims before they are allocated, a gzip one grows
// its buffer as data arrives. Gzip is recognised by its magic bytes (zlib's inflate, reading
// concatenated members like gzread), not by the file name.
IdxImages read_idx_images(const std::string& path, int64_t max_count = -1);

// The same on a file's bytes held in memory (plain or gzip; the same code after the bytes
// are read); `name` stands for the path in messages. The fuzz target fuzz/fuzz_idx.cpp
// uses it.
IdxImages read_idx_images_from_memory(const void* data, size_t size, const std::string& name, int64_t max_count = -1);

// Reads an idx1 label file (magic 0x00000801, count, then count bytes; plain or gzip), as
// MNIST / Fashion-MNIST ship beside their images (train-labels-idx1-ubyte.gz). Throws
// sg::Error naming the file when it is missing, truncated or not an idx1 file.
std::vector<uint8_t> read_idx_labels(const std::string& path);

// Debian's dataset-fashion-mnist training images.
inline const char* kFashionMnistTrain = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

}  // namespace sg::data
