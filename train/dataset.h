// Training datasets: images as floats in [-1, 1], CHW, resolution x resolution.
//
// open_dataset(path, resolution, channels) recognises:
//   - an idx3 image file, gzip-compressed or plain (MNIST, Fashion-MNIST): 28x28 images are
//     padded with black (-1) to 32x32 at resolution 32, resized (fit_image) otherwise;
//   - CIFAR-10 binary batches: a directory holding data_batch_*.bin (or a
//     cifar-10-batches-bin subdirectory that does), or one .bin file; records of 1 label
//     byte + 3072 bytes (CHW, 32x32 RGB);
//   - any other directory: an image folder, searched recursively for .png .jpg .jpeg
//     (case-insensitive; files with other extensions and dotfiles are ignored; PNG and JPEG
//     are the only formats decoded, told apart by content, see train/image_io.h), in
//     sorted path order. Each image is fitted with fit_image (centre crop, resize, 1 or 3
//     channels). When the fitted images fit in
//     max_cache_bytes they are all decoded at open (in parallel) and kept in memory;
//     otherwise headers are checked at open and images decoded in get().
//     An unreadable or corrupt image never stops training: at open it is skipped with a
//     warning on stderr and counted in skipped(); if decoding fails later in get(), the
//     same happens and get() returns the next index that decodes, so the data seen still
//     depends only on the files, never on timing.
// Errors before training (sg::Error naming the path): missing path, a resolution that is
// not a power of two in 8..1024, channels not 1 or 3, an empty dataset (after skipping),
// a malformed idx or CIFAR file.
// Channel conversion: gray -> RGB repeats the channel; RGB -> gray is ITU-R 601 luma.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace sg::data {

// Debian's dataset-fashion-mnist training images.
inline constexpr const char* kDefaultDatasetPath = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

class Dataset {
 public:
  virtual ~Dataset();
  virtual int64_t size() const = 0;
  int64_t resolution() const { return resolution_; }
  int64_t channels() const { return channels_; }
  // Floats per image: channels * resolution * resolution.
  int64_t image_numel() const { return channels_ * resolution_ * resolution_; }
  // Writes image i as floats in [-1, 1], CHW. Thread-safe. sg::Error when i is out of range.
  virtual void get(int64_t i, float* out) const = 0;
  std::string description() const { return description_; }
  // Corrupt or unreadable files skipped so far.
  int64_t skipped() const { return skipped_.load(); }

 protected:
  Dataset(int64_t resolution, int64_t channels) : resolution_(resolution), channels_(channels) {}
  void check_index(int64_t i) const;
  int64_t resolution_, channels_;
  std::string description_;
  mutable std::atomic<int64_t> skipped_{0};
};

// A short name for the dataset at `path`, for run directories and cache files: the file or
// folder name without extensions, or the parent folder's name for files named train-*,
// t10k-* or data_batch* (Debian's Fashion-MNIST: "fashion-mnist").
std::string dataset_name(const std::string& path);

// Checks resolution and channels (sg::Error naming `path` when impossible).
void check_dataset_shape(const std::string& path, int64_t resolution, int64_t channels);

std::unique_ptr<Dataset> open_dataset(const std::string& path, int64_t resolution, int64_t channels,
                                      int64_t max_cache_bytes = int64_t(2) << 30);

}  // namespace sg::data
