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
// on a missing, truncated or malformed file.
IdxImages read_idx_images(const std::string& path, int64_t max_count = -1);

// Debian's dataset-fashion-mnist training images.
inline const char* kFashionMnistTrain = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

}  // namespace sg::data
