#include "train/batch_loader.h"

#include <algorithm>

#include "engine/error.h"
#include "kernels/philox.h"

namespace sg::data {

std::vector<int64_t> BatchLoader::permutation(int64_t n, uint64_t seed, uint64_t epoch) {
  std::vector<int64_t> p((size_t)n);
  for (int64_t i = 0; i < n; ++i) p[(size_t)i] = i;
  // Fisher-Yates: step i draws a 64-bit word from Philox block i / 2 (counter_hi = 2 epoch),
  // and maps it to 0..i with a 128-bit multiply (Lemire).
  kernels::Philox4 block{};
  for (int64_t i = n - 1; i >= 1; --i) {
    if (i == n - 1 || i % 2 == 1) block = kernels::philox4x32_10((uint64_t)i / 2, 2 * epoch, seed);
    const int w = 2 * (int)(i % 2);
    const uint64_t r = (uint64_t)block.v[w] << 32 | block.v[w + 1];
    const int64_t j = (int64_t)(((unsigned __int128)r * (uint64_t)(i + 1)) >> 64);
    std::swap(p[(size_t)i], p[(size_t)j]);
  }
  return p;
}

bool BatchLoader::flipped(uint64_t seed, uint64_t epoch, int64_t position) {
  const auto block = kernels::philox4x32_10((uint64_t)position / 4, 2 * epoch + 1, seed);
  return (block.v[position % 4] >> 31) != 0;
}

Tensor one_hot(const std::vector<int64_t>& classes, int64_t num_classes) {
  Tensor t = zeros({(int64_t)classes.size(), num_classes}, DType::f32);
  float* p = t.data<float>();
  for (size_t i = 0; i < classes.size(); ++i) {
    SG_CHECK(classes[i] >= 0 && classes[i] < num_classes, "labels", "class ", classes[i], " is not one of the ",
             num_classes, " classes");
    p[(int64_t)i * num_classes + classes[i]] = 1.0f;
  }
  return t;
}

BatchLoader::BatchLoader(const Dataset& ds, int64_t batch, uint64_t seed, bool mirror, int prefetch,
                         std::vector<uint8_t> labels, int64_t num_classes)
    : ds_(ds),
      batch_(batch),
      n_(ds.size()),
      seed_(seed),
      mirror_(mirror),
      prefetch_(prefetch),
      labels_(std::move(labels)),
      num_classes_(num_classes) {
  SG_CHECK(batch > 0, "BatchLoader", "batch size must be positive, got ", batch);
  SG_CHECK(n_ > 0, "BatchLoader", "empty dataset: ", ds.description());
  SG_CHECK(prefetch >= 0, "BatchLoader", "prefetch must be >= 0, got ", prefetch);
  SG_CHECK(labels_.empty() || (int64_t)labels_.size() == n_, "BatchLoader", ds.description(), ": ", n_, " images but ",
           labels_.size(), " labels");
  for (uint8_t l : labels_)
    SG_CHECK(l < num_classes_, "BatchLoader", "label ", (int)l, " is not below the ", num_classes_, " classes");
  if (prefetch_ > 0) worker_ = std::thread([this] { worker_loop(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

const std::vector<int64_t>& BatchLoader::perm(uint64_t epoch) {
  auto it = perms_.find(epoch);
  if (it != perms_.end()) return it->second;
  while (perms_.size() >= 2) perms_.erase(perms_.begin());
  return perms_.emplace(epoch, permutation(n_, seed_, epoch)).first->second;
}

BatchLoader::Entry BatchLoader::make_batch(Cursor c) {
  Entry e;
  try {
    const int64_t C = ds_.channels(), R = ds_.resolution(), numel = ds_.image_numel();
    Tensor t = empty({batch_, C, R, R}, DType::f32);
    std::vector<int64_t> classes;  // of the batch's images, when the loader has labels
    float* out = t.data<float>();
    for (int64_t b = 0; b < batch_; ++b) {
      float* img = out + b * numel;
      const int64_t i = perm(c.epoch)[(size_t)c.position];
      ds_.get(i, img);
      if (!labels_.empty()) classes.push_back(labels_[(size_t)i]);
      if (mirror_ && flipped(seed_, c.epoch, c.position)) {
        for (int64_t row = 0; row < C * R; ++row) std::reverse(img + row * R, img + (row + 1) * R);
      }
      if (++c.position == n_) {
        c.position = 0;
        ++c.epoch;
      }
    }
    e.batch = {t, labels_.empty() ? Tensor() : one_hot(classes, num_classes_)};
  } catch (...) {
    e.error = std::current_exception();
  }
  e.next = c;
  return e;
}

void BatchLoader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock,
             [&] { return stop_ || ((int)queue_.size() < prefetch_ && (queue_.empty() || !queue_.back().error)); });
    if (stop_) return;
    const uint64_t gen = generation_;
    const Cursor c = producer_;
    lock.unlock();
    Entry e = make_batch(c);
    lock.lock();
    if (gen != generation_) continue;  // a seek() happened meanwhile: drop it
    producer_ = e.next;
    queue_.push_back(std::move(e));
    cv_.notify_all();
  }
}

BatchLoader::Batch BatchLoader::next_batch() {
  if (prefetch_ == 0) {
    Cursor c;
    {
      std::lock_guard<std::mutex> lock(mu_);
      c = consumer_;
    }
    Entry e = make_batch(c);
    if (e.error) std::rethrow_exception(e.error);
    std::lock_guard<std::mutex> lock(mu_);
    consumer_ = e.next;
    return e.batch;
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty(); });
  if (queue_.front().error) std::rethrow_exception(queue_.front().error);
  Entry e = std::move(queue_.front());
  queue_.pop_front();
  consumer_ = e.next;
  cv_.notify_all();
  return e.batch;
}

uint64_t BatchLoader::epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return consumer_.epoch;
}

int64_t BatchLoader::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return consumer_.position;
}

void BatchLoader::seek(uint64_t epoch, int64_t position) {
  SG_CHECK(position >= 0, "BatchLoader::seek", "position must be >= 0, got ", position);
  const Cursor c{epoch + (uint64_t)(position / n_), position % n_};
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    queue_.clear();
    consumer_ = producer_ = c;
  }
  cv_.notify_all();
}

}  // namespace sg::data
