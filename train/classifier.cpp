#include "train/classifier.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "train/idx_dataset.h"

namespace sg::metrics {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kCifarRecord = 1 + 3 * 32 * 32;

std::string replace_first(std::string s, const std::string& from, const std::string& to) {
  if (auto at = s.find(from); at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

std::vector<uint8_t> cifar_labels(const std::vector<std::string>& files) {
  std::vector<uint8_t> labels;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    SG_CHECK(in, "metrics", "cannot open CIFAR-10 batch '", f, "'");
    std::vector<char> rec((size_t)kCifarRecord);
    while (in.read(rec.data(), kCifarRecord)) labels.push_back((uint8_t)rec[0]);
  }
  return labels;
}

std::vector<std::string> cifar_train_batches(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.starts_with("data_batch_") && n.ends_with(".bin") && e.is_regular_file(ec)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());  // the order data::open_dataset reads them in
  return out;
}

LabeledSplit make_split(const std::string& images, std::vector<uint8_t> labels, const std::string& files, int64_t res,
                        int64_t ch) {
  LabeledSplit s;
  s.images = data::open_dataset(images, res, ch);
  s.labels = std::move(labels);
  s.files = files;
  SG_CHECK((int64_t)s.labels.size() == s.images->size(), "metrics", files, ": ", s.images->size(), " images but ",
           s.labels.size(), " labels");
  return s;
}

// Without labels the classifier cannot be trained: say so, naming the dataset.
[[noreturn]] void no_labels(const std::string& path, const std::string& why) {
  throw Error(str("metrics: the dataset '", path, "' has no labels (", why,
                  "); the metrics' classifier trains on a dataset's labels: MNIST / Fashion-MNIST idx files "
                  "with their *-labels-idx1-ubyte files and t10k- test split, or CIFAR-10 binary batches with "
                  "test_batch.bin (docs/metrics.md)"));
}

LabeledData open_cifar(const std::string& path, const std::vector<std::string>& train_files, const fs::path& dir,
                       int64_t res, int64_t ch) {
  const fs::path test = dir / "test_batch.bin";
  if (!fs::exists(test)) no_labels(path, str("CIFAR-10 without its test split: '", test.string(), "' is missing"));
  LabeledData d;
  std::string names;
  for (auto& f : train_files) names += (names.empty() ? "" : ", ") + f;
  d.train = make_split(path, cifar_labels(train_files), "CIFAR-10 " + names, res, ch);
  d.test = make_split(test.string(), cifar_labels({test.string()}), "CIFAR-10 " + test.string(), res, ch);
  return d;
}

}  // namespace

LabeledData open_labeled(const std::string& path, int64_t res, int64_t ch) {
  std::error_code ec;
  SG_CHECK(!path.empty() && fs::exists(path, ec), "metrics", "dataset path '", path, "' does not exist");
  LabeledData d;
  if (fs::is_directory(path, ec)) {
    fs::path dir = path;
    auto batches = cifar_train_batches(dir);
    if (batches.empty() && fs::is_directory(dir / "cifar-10-batches-bin", ec)) {
      dir /= "cifar-10-batches-bin";
      batches = cifar_train_batches(dir);
    }
    if (batches.empty()) no_labels(path, "an image folder");
    d = open_cifar(path, batches, dir, res, ch);
  } else if (fs::path(path).extension() == ".bin") {
    d = open_cifar(path, {path}, fs::path(path).parent_path(), res, ch);
  } else {
    // idx: train-images-idx3-ubyte.gz -> train-labels-idx1-ubyte.gz, t10k-images-..., t10k-labels-...
    const fs::path p(path);
    const std::string name = p.filename().string();
    const std::string labels_name = replace_first(replace_first(name, "images", "labels"), "idx3", "idx1");
    if (labels_name == name || name.find("images") == std::string::npos)
      no_labels(path, "not a CIFAR-10 batch, and its file name has no 'images' to find the labels file by");
    if (!name.starts_with("train"))
      no_labels(path, "an idx file not named train-*: its t10k- test split cannot be found");
    const fs::path train_labels = p.parent_path() / labels_name;
    const fs::path test_images = p.parent_path() / replace_first(name, "train", "t10k");
    const fs::path test_labels = p.parent_path() / replace_first(labels_name, "train", "t10k");
    for (const fs::path& f : {train_labels, test_images, test_labels})
      if (!fs::exists(f, ec)) no_labels(path, str("'", f.string(), "' is missing"));
    d.train = make_split(path, data::read_idx_labels(train_labels.string()), str(path, " + ", train_labels.string()),
                         res, ch);
    d.test = make_split(test_images.string(), data::read_idx_labels(test_labels.string()),
                        str(test_images.string(), " + ", test_labels.string()), res, ch);
  }
  int64_t top = 0;
  for (auto l : d.train.labels) top = std::max<int64_t>(top, l);
  d.num_classes = top + 1;
  SG_CHECK(d.num_classes >= 2, "metrics", d.train.files, ": the labels name only ", d.num_classes, " class");
  for (auto l : d.test.labels)
    SG_CHECK(l < d.num_classes, "metrics", d.test.files, ": test label ", (int)l, " is not among the ", d.num_classes,
             " classes of the training split");
  return d;
}

Tensor split_images(const LabeledSplit& s, const std::vector<int64_t>& indices) {
  const data::Dataset& ds = *s.images;
  Tensor x = empty({(int64_t)indices.size(), ds.channels(), ds.resolution(), ds.resolution()});
  float* out = x.data<float>();
  for (size_t i = 0; i < indices.size(); ++i) ds.get(indices[i], out + (int64_t)i * ds.image_numel());
  return x;
}

Tensor cross_entropy(const Tensor& logits, const std::vector<uint8_t>& labels) {
  SG_CHECK(logits.dim() == 2 && logits.size(0) == (int64_t)labels.size(), "cross_entropy", "logits ", logits.str(),
           " for ", labels.size(), " labels");
  const int64_t n = logits.size(0), k = logits.size(1);
  const std::vector<double> v = logits.detach().to_vector();
  std::vector<double> row_max((size_t)n), onehot((size_t)(n * k), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    SG_CHECK(labels[(size_t)i] < k, "cross_entropy", "label ", (int)labels[(size_t)i], " for ", k, " classes");
    row_max[(size_t)i] = *std::max_element(v.begin() + i * k, v.begin() + (i + 1) * k);
    onehot[(size_t)(i * k + labels[(size_t)i])] = 1.0;
  }
  // The row maxima are constants: logsumexp's value and gradient do not depend on them.
  const Tensor shifted = logits - from_vector(row_max, {n, 1}, logits.dtype()).to(logits.device());
  const Tensor lse = log(sum(exp(shifted), {1}, true));
  const Tensor picked = sum(shifted * from_vector(onehot, {n, k}, logits.dtype()).to(logits.device()), {1}, true);
  return mean(lse - picked);
}

Classifier::Classifier(int64_t channels, int64_t num_classes, uint64_t seed)
    : channels_(channels), num_classes_(num_classes) {
  SG_CHECK(channels >= 1 && num_classes >= 2, "Classifier", "channels ", channels, ", classes ", num_classes);
  Rng rng(seed);
  auto add = [&](const std::string& name, const Shape& w_shape, double gain) {
    const int64_t fan_in = numel_of(w_shape) / w_shape[0];
    params_.push_back({name + ".weight", (randn(w_shape, rng) * (gain / std::sqrt((double)fan_in))).detach()});
    params_.push_back({name + ".bias", zeros({w_shape[0]})});
  };
  add("conv1", {16, channels, 3, 3}, std::sqrt(2.0));
  add("conv2", {32, 16, 3, 3}, std::sqrt(2.0));
  add("conv3", {64, 32, 3, 3}, std::sqrt(2.0));
  add("fc", {kFeatures, 64 * 4 * 4}, std::sqrt(2.0));
  add("out", {num_classes, kFeatures}, 1.0);
  for (auto& [n, t] : params_) t.set_requires_grad(true);
}

Tensor Classifier::features(const Tensor& x) const {
  SG_CHECK(x.dim() == 4 && x.size(1) == channels_ && x.size(2) == x.size(3), "Classifier::features", "expected [N, ",
           channels_, ", R, R] images, got ", x.str());
  const int64_t n = x.size(0), r = x.size(2);
  SG_CHECK(r > 0 && (r % 32 == 0 || 32 % r == 0), "Classifier::features", "resolution ", r,
           " is neither a multiple nor a divisor of 32");
  Tensor h = x;
  if (r > 32) {  // box average down to 32x32
    const int64_t f = r / 32;
    h = mean(reshape(h, {n, channels_, 32, f, 32, f}), {3, 5});
  } else if (r < 32) {  // nearest up to 32x32
    const int64_t f = 32 / r;
    h = reshape(expand(reshape(h, {n, channels_, r, 1, r, 1}), {n, channels_, r, f, r, f}), {n, channels_, 32, 32});
  }
  for (size_t l = 0; l < 3; ++l) h = bias_act(conv2d(h, p(2 * l), {2, 2}, {1, 1}), p(2 * l + 1), Act::relu);
  return bias_act(linear(reshape(h, {n, 64 * 4 * 4}), p(6)), p(7), Act::relu);
}

Tensor Classifier::logits(const Tensor& features) const { return linear(features, p(8), p(9)); }

void Classifier::train(const LabeledSplit& s, const ClassifierTraining& t,
                       const std::function<void(const std::string&)>& log) {
  const int64_t n = s.images->size();
  SG_CHECK(t.images > 0 && t.batch > 0, "Classifier::train", "images ", t.images, ", batch ", t.batch);
  autograd::EnableGradGuard grad_on(true);  // also when called under no-grad
  Adam opt(params_, AdamConfig{t.lr, 0.9, 0.999, 1e-8});
  Rng rng(t.seed);
  std::vector<int64_t> order;
  size_t at = 0;
  const int64_t steps = (t.images + t.batch - 1) / t.batch;
  const auto t0 = std::chrono::steady_clock::now();
  double loss_sum = 0;
  int64_t loss_count = 0, correct = 0, seen = 0;
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<int64_t> idx;
    std::vector<uint8_t> labels;
    while ((int64_t)idx.size() < std::min(t.batch, n)) {
      if (at == order.size()) {  // a new epoch: a fresh random order
        const std::vector<double> keys = rand({n}, rng, DType::f64).to_vector();
        order.resize((size_t)n);
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
        at = 0;
      }
      idx.push_back(order[at++]);
      labels.push_back(s.labels[(size_t)idx.back()]);
    }
    // Constant for the first half, then linearly down to 0.
    opt.config().lr = t.lr * std::min(1.0, 2.0 * (1.0 - (double)step / (double)steps));
    const Tensor lg = logits(features(split_images(s, idx).to(device())));
    const Tensor loss = cross_entropy(lg, labels);
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_sum += loss.item(), loss_count++;
    const std::vector<double> v = lg.detach().to_vector();
    for (size_t i = 0; i < labels.size(); ++i, ++seen) {
      const auto row = v.begin() + (int64_t)i * num_classes_;
      correct += std::max_element(row, row + num_classes_) - row == labels[i];
    }
    if (log && (step + 1) % std::max<int64_t>(steps / 10, 1) == 0) {
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char buf[160];
      std::snprintf(buf, sizeof buf, "classifier: %lld / %lld images, loss %.4f, train accuracy %.4f, %.1f s",
                    (long long)std::min(t.images, (step + 1) * t.batch), (long long)t.images,
                    loss_sum / (double)loss_count, (double)correct / (double)std::max<int64_t>(seen, 1), sec);
      log(buf);
      loss_sum = 0, loss_count = 0, correct = 0, seen = 0;
    }
  }
  opt.zero_grad();
}

double Classifier::accuracy(const LabeledSplit& s, int64_t batch) const {
  NoGradGuard ng;
  const int64_t n = s.images->size();
  int64_t correct = 0;
  for (int64_t i = 0; i < n; i += batch) {
    std::vector<int64_t> idx;
    for (int64_t j = i; j < std::min(n, i + batch); ++j) idx.push_back(j);
    const std::vector<double> v = logits(features(split_images(s, idx).to(device()))).to_vector();
    for (size_t r = 0; r < idx.size(); ++r) {
      const auto row = v.begin() + (int64_t)r * num_classes_;
      correct += std::max_element(row, row + num_classes_) - row == s.labels[(size_t)idx[r]];
    }
  }
  return (double)correct / (double)std::max<int64_t>(n, 1);
}

void Classifier::save(const std::string& path, std::map<std::string, std::string> meta) const {
  meta["format"] = "stylegrad-classifier";
  meta["channels"] = std::to_string(channels_);
  meta["num_classes"] = std::to_string(num_classes_);
  if (auto dir = fs::path(path).parent_path(); !dir.empty()) fs::create_directories(dir);
  io::save_safetensors(path, params_, meta);
}

Classifier Classifier::load(const std::string& path, std::map<std::string, std::string>* meta_out) {
  std::map<std::string, std::string> meta;
  auto tensors = io::load_safetensors_map(path);
  meta = io::load_safetensors_metadata(path);
  SG_CHECK(meta.count("format") && meta["format"] == "stylegrad-classifier", "Classifier::load", "'", path,
           "' is not a classifier written by stylegrad's metrics (no format=stylegrad-classifier in its metadata)");
  auto count = [&](const char* key) {
    SG_CHECK(meta.count(key), "Classifier::load", "'", path, "' has no '", key, "' in its metadata");
    try {
      return (int64_t)std::stoll(meta[key]);
    } catch (...) {
      throw Error(str("Classifier::load: '", path, "': metadata '", key, "' is '", meta[key], "', not a number"));
    }
  };
  const int64_t ch = count("channels"), k = count("num_classes");
  SG_CHECK(ch >= 1 && ch <= 4 && k >= 2 && k <= 256, "Classifier::load", "'", path, "': channels ", ch, ", classes ",
           k);
  Classifier c(ch, k);
  NoGradGuard ng;
  for (auto& [name, t] : c.params_) {
    auto it = tensors.find(name);
    SG_CHECK(it != tensors.end(), "Classifier::load", "'", path, "' has no tensor '", name, "'");
    SG_CHECK(it->second.shape() == t.shape(), "Classifier::load", "'", path, "': tensor '", name, "' has shape ",
             shape_str(it->second.shape()), ", expected ", shape_str(t.shape()));
    copy_into(t, it->second.to(t.dtype()));
  }
  if (meta_out) *meta_out = meta;
  return c;
}

void Classifier::to(Device d) {
  for (auto& [n, t] : params_) t = to_device(t.detach(), d).detach().set_requires_grad(true);
}

Device Classifier::device() const { return params_.front().second.device(); }

}  // namespace sg::metrics
