// The metrics' classifier (docs/metrics.md): a small conv net that stylegrad trains itself,
// with its own ops and Adam, on the labels the dataset ships, and whose penultimate
// activations are the feature space of FD and KID.
//
// Labelled datasets:
//   - MNIST / Fashion-MNIST idx: the images file's labels beside it (train-images-idx3-ubyte.gz
//     -> train-labels-idx1-ubyte.gz), the test split the t10k- files beside them;
//   - CIFAR-10 binary: the label byte of each record, the test split test_batch.bin.
// An image folder has no labels: sg::Error naming the dataset.
//
// Network: images resized to 32x32 (box average down, nearest up), then three 3x3 convs with
// stride 2 (16, 32, 64 channels, ReLU) to 4x4, a fully connected layer of 128 (ReLU): the
// features; and a linear layer to the class logits.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"
#include "train/dataset.h"

namespace sg::metrics {

struct LabeledSplit {
  std::unique_ptr<data::Dataset> images;
  std::vector<uint8_t> labels;  // one per image
  std::string files;            // what it was read from, for messages
};

struct LabeledData {
  LabeledSplit train, test;
  int64_t num_classes = 0;
};

// The training and test splits with labels of the dataset at `path` (as --data names it),
// images at this resolution and channel count (as data::open_dataset fits them). sg::Error
// naming the dataset when it has no labels, or a label file is missing or does not match.
LabeledData open_labeled(const std::string& path, int64_t resolution, int64_t channels);

// A batch of a split: images [n, C, R, R] f32 (CPU) and their labels.
Tensor split_images(const LabeledSplit& s, const std::vector<int64_t>& indices);

struct ClassifierTraining {
  int64_t images = 120000;  // images shown (2 epochs of Fashion-MNIST)
  int64_t batch = 128;
  double lr = 2e-3;  // Adam (0.9, 0.999); decays linearly to 0 over the second half
  uint64_t seed = 0;
};

class Classifier {
 public:
  static constexpr int64_t kFeatures = 128;
  Classifier(int64_t channels, int64_t num_classes, uint64_t seed = 0);

  // x [N, C, R, R] in [-1, 1], any power-of-two R -> features [N, 128] (after the ReLU).
  Tensor features(const Tensor& x) const;
  // features -> logits [N, num_classes].
  Tensor logits(const Tensor& features) const;

  // Trains on the split (a fixed random order from `t.seed`); `log` gets a line per ~10%.
  void train(const LabeledSplit& s, const ClassifierTraining& t, const std::function<void(const std::string&)>& log);
  // The fraction of the split classified correctly.
  double accuracy(const LabeledSplit& s, int64_t batch = 256) const;

  // safetensors: the weights, and in the metadata what it was trained on (`meta`, e.g. the
  // dataset, resolution and accuracy) plus channels and num_classes.
  void save(const std::string& path, std::map<std::string, std::string> meta) const;
  // sg::Error naming the file when it is not a classifier file or a tensor is missing.
  static Classifier load(const std::string& path, std::map<std::string, std::string>* meta);

  void to(Device d);
  Device device() const;
  int64_t channels() const { return channels_; }
  int64_t num_classes() const { return num_classes_; }
  const std::vector<std::pair<std::string, Tensor>>& params() const { return params_; }

 private:
  const Tensor& p(size_t i) const { return params_[i].second; }
  int64_t channels_, num_classes_;
  std::vector<std::pair<std::string, Tensor>> params_;
};

// The labels' cross-entropy, mean over the batch: logsumexp(logits) - logits[label].
Tensor cross_entropy(const Tensor& logits, const std::vector<uint8_t>& labels);

}  // namespace sg::metrics
