// Shuffled minibatches from a Dataset, prepared on a background thread.
//
// The stream of images is a sequence of epochs; epoch e visits every image once in the order
// permutation(n, seed, e) (Fisher-Yates driven by Philox4x32-10 keyed by the seed, so the
// order is the same on every run and platform). A batch takes the next `batch` images of the
// stream, running into the next epoch when one ends. When mirror is on, the image at
// (epoch, position) is flipped left-right iff flipped(seed, epoch, position) — half of them
// on average. So a batch depends only on (seed, epoch, position), never on timing: seek()
// to a saved (epoch(), position()) and the same batches follow.
//
// A worker thread keeps up to `prefetch` batches ready (bounded queue, condition variable);
// prefetch 0 makes next() build the batch itself. The destructor stops the worker cleanly.
// An exception from the dataset is rethrown by next() (and again until seek()).
// The Dataset must outlive the loader. Given the dataset's labels (one class index per image,
// in the dataset's order), next_batch() also returns each image's label, one-hot.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/tensor.h"
#include "train/dataset.h"

namespace sg::data {

// Labels as a conditional network takes them: [n, num_classes] f32 on the CPU, row i one-hot at
// classes[i]; sg::Error naming the class when it is outside [0, num_classes).
Tensor one_hot(const std::vector<int64_t>& classes, int64_t num_classes);

class BatchLoader {
 public:
  // labels: empty, or one per image (each below num_classes).
  BatchLoader(const Dataset& ds, int64_t batch, uint64_t seed, bool mirror, int prefetch = 2,
              std::vector<uint8_t> labels = {}, int64_t num_classes = 0);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  struct Batch {
    Tensor images;  // [batch, C, R, R] f32 in [-1, 1]
    Tensor labels;  // [batch, num_classes] f32 one-hot; undefined without labels
  };
  // The next batch.
  Batch next_batch();
  Tensor next() { return next_batch().images; }
  // Where the next batch starts.
  uint64_t epoch() const;
  int64_t position() const;  // 0 .. size-1
  // Makes the next batch start at (epoch, position); position may be >= size (it carries
  // into the epoch). Drops the prefetched batches.
  void seek(uint64_t epoch, int64_t position);

  int64_t batch_size() const { return batch_; }
  const Dataset& dataset() const { return ds_; }

  // The deterministic pieces, public for tests and tools.
  static std::vector<int64_t> permutation(int64_t n, uint64_t seed, uint64_t epoch);
  static bool flipped(uint64_t seed, uint64_t epoch, int64_t position);

 private:
  struct Cursor {
    uint64_t epoch = 0;
    int64_t position = 0;
  };
  struct Entry {
    Batch batch;
    std::exception_ptr error;
    Cursor next;
  };
  Entry make_batch(Cursor c);  // producer side only
  const std::vector<int64_t>& perm(uint64_t epoch);
  void worker_loop();

  const Dataset& ds_;
  const int64_t batch_, n_;
  const uint64_t seed_;
  const bool mirror_;
  const int prefetch_;
  const std::vector<uint8_t> labels_;
  const int64_t num_classes_;

  std::map<uint64_t, std::vector<int64_t>> perms_;  // producer side only, at most 2 epochs

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;
  Cursor consumer_, producer_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace sg::data
