// The metrics (train/metrics.h, train/classifier.h): FD against closed forms and a brute-force
// matrix square root, KID against its formula, the classifier score's bounds, coverage, the
// classifier's loss and training on a tiny labelled dataset, training with --metrics (logged,
// and the same snapshots as without), stylegan2-metrics end to end, and class-conditional
// training (--cond) on the labels, with its loader, snapshots, resume, generate and metrics.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "engine/io/safetensors.h"
#include "engine/ops.h"
#include "train/batch_loader.h"
#include "train/classifier.h"
#include "train/image_io.h"
#include "train/metrics.h"
#include "train/snapshot.h"
#include "train/training_loop.h"

using namespace sg;
using namespace sg::metrics;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("sg_test_metrics_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::string read_all(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<float> randn_rows(int64_t n, int64_t d, uint64_t seed, const std::vector<double>& mu,
                              const std::vector<double>& sd) {
  Rng r(seed);
  std::vector<double> z = randn({n, d}, r, DType::f64).to_vector();
  std::vector<float> out((size_t)(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j)
      out[(size_t)(i * d + j)] = (float)(mu[(size_t)j] + sd[(size_t)j] * z[(size_t)(i * d + j)]);
  return out;
}

// A random symmetric positive definite d x d matrix, X X^T / d + 0.1 I (not diagonal).
std::vector<double> random_spd(int64_t d, uint64_t seed) {
  Rng r(seed);
  std::vector<double> x = randn({d, d}, r, DType::f64).to_vector(), s((size_t)(d * d));
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j < d; ++j) {
      double v = i == j ? 0.1 : 0.0;
      for (int64_t k = 0; k < d; ++k) v += x[(size_t)(i * d + k)] * x[(size_t)(j * d + k)] / (double)d;
      s[(size_t)(i * d + j)] = v;
    }
  return s;
}

using Mat = std::vector<double>;  // d x d, row-major

Mat matmul_d(const Mat& a, const Mat& b, int64_t d) {
  Mat c((size_t)(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t k = 0; k < d; ++k)
      for (int64_t j = 0; j < d; ++j) c[i * d + j] += a[i * d + k] * b[k * d + j];
  return c;
}

Mat identity(int64_t d) {
  Mat m((size_t)(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i) m[i * d + i] = 1;
  return m;
}

// Gauss-Jordan with partial pivoting.
Mat inverse(Mat a, int64_t d) {
  Mat inv = identity(d);
  for (int64_t c = 0; c < d; ++c) {
    int64_t piv = c;
    for (int64_t r = c + 1; r < d; ++r)
      if (std::abs(a[r * d + c]) > std::abs(a[piv * d + c])) piv = r;
    for (int64_t j = 0; j < d; ++j)
      std::swap(a[c * d + j], a[piv * d + j]), std::swap(inv[c * d + j], inv[piv * d + j]);
    const double s = 1.0 / a[c * d + c];
    for (int64_t j = 0; j < d; ++j) a[c * d + j] *= s, inv[c * d + j] *= s;
    for (int64_t r = 0; r < d; ++r) {
      if (r == c) continue;
      const double f = a[r * d + c];
      for (int64_t j = 0; j < d; ++j) a[r * d + j] -= f * a[c * d + j], inv[r * d + j] -= f * inv[c * d + j];
    }
  }
  return inv;
}

// One-hot probabilities: row i is class cls[i].
std::vector<double> one_hot(const std::vector<int>& cls, int64_t k) {
  std::vector<double> p(cls.size() * (size_t)k, 0.0);
  for (size_t i = 0; i < cls.size(); ++i) p[i * (size_t)k + (size_t)cls[i]] = 1.0;
  return p;
}

// idx files: 3 classes of 8x8 images (horizontal stripes, vertical stripes, a centred block)
// with noise; train-* and t10k-* images and labels, plain (not gzip).
void write_idx(const fs::path& path, uint32_t magic, const std::vector<uint32_t>& dims,
               const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  auto be32 = [&](uint32_t v) {
    const char b[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
    f.write(b, 4);
  };
  be32(magic);
  for (auto d : dims) be32(d);
  f.write((const char*)bytes.data(), (std::streamsize)bytes.size());
}

fs::path make_labeled_idx(const fs::path& dir) {
  fs::create_directories(dir);
  Rng rng(21);
  for (const char* split : {"train", "t10k"}) {
    const uint32_t n = std::string(split) == "train" ? 240 : 90;
    std::vector<uint8_t> px, labels;
    const std::vector<double> u = rand({(int64_t)n * 64}, rng, DType::f64).to_vector();
    for (uint32_t i = 0; i < n; ++i) {
      const int c = (int)(i % 3);
      labels.push_back((uint8_t)c);
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) {
          const bool on = c == 0 ? y % 2 == 0 : c == 1 ? x % 2 == 0 : (x >= 2 && x < 6 && y >= 2 && y < 6);
          px.push_back((uint8_t)((on ? 200 : 30) + u[(size_t)(i * 64 + y * 8 + x)] * 50));
        }
    }
    write_idx(dir / (std::string(split) + "-images-idx3-ubyte"), 0x803, {n, 8, 8}, px);
    write_idx(dir / (std::string(split) + "-labels-idx1-ubyte"), 0x801, {n}, labels);
  }
  return dir / "train-images-idx3-ubyte";
}

train::TrainOptions tiny_run(const fs::path& data, const fs::path& out, int64_t metrics) {
  train::TrainOptions o;
  o.data = data.string();
  o.outdir = out.string();
  o.resolution = 8;
  o.channels = 1;
  o.batch = 4;
  o.kimg = 0.016;
  o.tick_kimg = 0.008;
  o.snap = 0;
  o.seed = 3;
  o.quiet = true;
  o.metrics = metrics;
  o.metrics_num = 64;
  return o;
}

std::string only_snapshot(const std::string& run_dir) {
  for (auto& e : fs::directory_iterator(run_dir))
    if (e.path().filename().string().rfind("network-snapshot-", 0) == 0) return e.path().string();
  return "";
}

}  // namespace

TEST_CASE("metrics: FD of a feature set with itself is 0", "[metrics]") {
  const std::vector<float> f = randn_rows(400, 12, 1, std::vector<double>(12, 0.5), std::vector<double>(12, 2.0));
  const Gaussian g = fit_gaussian(f, 400, 12);
  CHECK(std::abs(frechet_distance(g, g)) < 1e-9);
  // Not trivially 0: shifting every feature by 0.1 adds 12 * 0.01 (same covariance).
  std::vector<float> shifted = f;
  for (auto& v : shifted) v += 0.1f;
  CHECK(frechet_distance(g, fit_gaussian(shifted, 400, 12)) == Approx(0.12).epsilon(1e-4));
}

TEST_CASE("metrics: FD of Gaussians with diagonal covariances matches the closed form", "[metrics]") {
  const int64_t d = 5;
  const std::vector<double> mu1 = {0, 1, -2, 0.5, 3}, mu2 = {1, 1, 0, -0.5, 2.5};
  const std::vector<double> s1 = {1, 4, 0.25, 2, 9}, s2 = {2, 1, 0.25, 8, 1};  // variances
  double closed = 0;
  for (int64_t i = 0; i < d; ++i) closed += std::pow(mu1[i] - mu2[i], 2) + s1[i] + s2[i] - 2 * std::sqrt(s1[i] * s2[i]);
  Gaussian a, b;
  a.n = b.n = 1000, a.d = b.d = d;
  a.mu = mu1, b.mu = mu2;
  a.cov.assign(d * d, 0.0), b.cov.assign(d * d, 0.0);
  for (int64_t i = 0; i < d; ++i) a.cov[i * d + i] = s1[i], b.cov[i * d + i] = s2[i];
  CHECK(frechet_distance(a, b) == Approx(closed).epsilon(1e-12));

  // From samples (fit_gaussian included): 200k rows each, within sampling error.
  std::vector<double> sd1, sd2;
  for (int64_t i = 0; i < d; ++i) sd1.push_back(std::sqrt(s1[i])), sd2.push_back(std::sqrt(s2[i]));
  const Gaussian fa = fit_gaussian(randn_rows(200000, d, 7, mu1, sd1), 200000, d);
  const Gaussian fb = fit_gaussian(randn_rows(200000, d, 8, mu2, sd2), 200000, d);
  CHECK(frechet_distance(fa, fb) == Approx(closed).margin(0.05 * closed));
  CHECK(fa.cov[1 * d + 1] == Approx(4.0).epsilon(0.02));  // the n - 1 covariance
}

TEST_CASE("metrics: Tr sqrt(S1 S2) matches a brute-force matrix square root", "[metrics]") {
  for (uint64_t seed : {1, 2, 3}) {
    const int64_t d = 7;
    const std::vector<double> s1 = random_spd(d, seed), s2 = random_spd(d, seed + 100);
    // Denman-Beavers on the non-symmetric product: Y -> (S1 S2)^(1/2). Plain loops: this file
    // does not include Eigen (sg_train's objects are built with -march=native, the tests are not).
    const Mat p = matmul_d(s1, s2, d);
    Mat y = p, z = identity(d);
    for (int it = 0; it < 100; ++it) {
      const Mat yi = inverse(y, d), zi = inverse(z, d);
      for (int64_t i = 0; i < d * d; ++i) y[i] = 0.5 * (y[i] + zi[i]), z[i] = 0.5 * (z[i] + yi[i]);
    }
    const Mat yy = matmul_d(y, y, d);
    double err = 0, norm = 0, trace = 0;
    for (int64_t i = 0; i < d * d; ++i) err += std::pow(yy[i] - p[i], 2), norm += p[i] * p[i];
    for (int64_t i = 0; i < d; ++i) trace += y[i * d + i];
    INFO("seed " << seed);
    REQUIRE(std::sqrt(err) < 1e-9 * std::sqrt(norm));
    CHECK(trace_sqrt_product(s1, s2, d) == Approx(trace).epsilon(1e-10));
    CHECK(trace_sqrt_product(s2, s1, d) == Approx(trace).epsilon(1e-10));
  }
  // A singular S1 (rank 1): the clipped eigenvalues keep it finite and right.
  const std::vector<double> r1 = {1, 2, 2, 4}, eye = {1, 0, 0, 1};
  CHECK(trace_sqrt_product(r1, eye, 2) == Approx(std::sqrt(5.0)).epsilon(1e-12));
}

TEST_CASE("metrics: KID is its unbiased MMD formula", "[metrics]") {
  const int64_t n = 40, d = 3;
  const std::vector<float> a = randn_rows(n, d, 1, {0, 0, 0}, {1, 1, 1});
  const std::vector<float> b = randn_rows(n, d, 2, {0.5, 0, -1}, {1, 2, 1});
  // Subsets of every row: each subset is a permutation, and the estimate is the formula itself.
  auto k = [&](const std::vector<float>& x, int64_t i, const std::vector<float>& y, int64_t j) {
    double dot = 0;
    for (int64_t c = 0; c < d; ++c) dot += (double)x[i * d + c] * y[j * d + c];
    return std::pow(dot / (double)d + 1, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (i != j) xx += k(a, i, a, j), yy += k(b, i, b, j);
      xy += k(a, i, b, j);
    }
  const double mmd = (xx + yy) / (double)(n * (n - 1)) - 2 * xy / (double)(n * n);
  CHECK(kernel_inception_distance(a, n, b, n, d, 3, 1000, 0) == Approx(mmd).epsilon(1e-9));
  CHECK(mmd > 0.1);
  // The same distribution: near 0 (unbiased, so either sign).
  const std::vector<float> a2 = randn_rows(400, d, 3, {0, 0, 0}, {1, 1, 1});
  const std::vector<float> a3 = randn_rows(400, d, 4, {0, 0, 0}, {1, 1, 1});
  CHECK(std::abs(kernel_inception_distance(a2, 400, a3, 400, d, 10, 200, 0)) < 0.05 * mmd);
}

TEST_CASE("metrics: classifier score bounds and coverage counting", "[metrics]") {
  std::vector<int> all3(50, 3), uniform, two;
  for (int i = 0; i < 1000; ++i) uniform.push_back(i % 10), two.push_back(i % 2 ? 7 : 2);
  CHECK(classifier_score(one_hot(all3, 10), 50, 10) == Approx(1.0).epsilon(1e-12));
  CHECK(classifier_score(one_hot(uniform, 10), 1000, 10) == Approx(10.0).epsilon(1e-12));
  CHECK(classifier_score(one_hot(two, 10), 1000, 10) == Approx(2.0).epsilon(1e-12));
  CHECK(classifier_score(std::vector<double>(1000 * 10, 0.1), 1000, 10) == Approx(1.0).epsilon(1e-12));
  // softmax_rows of large logits stays finite; a confident row gives ~one-hot.
  const std::vector<double> p = softmax_rows({1000.f, 0.f, 0.f, -5.f, 0.f, 5.f}, 2, 3);
  CHECK(p[0] == Approx(1.0));
  CHECK(p[5] == Approx(std::exp(5.0) / (std::exp(5.0) + 1 + std::exp(-5.0))));

  // 100 samples: 50 of class 0, 30 of class 4, 19 of class 2, 1 of class 9 (1% < 2%).
  std::vector<int> cls;
  for (int i = 0; i < 100; ++i) cls.push_back(i < 50 ? 0 : i < 80 ? 4 : i < 99 ? 2 : 9);
  const std::vector<double> cov = class_coverage(one_hot(cls, 10), 100, 10);
  CHECK(cov[0] == Approx(0.5));
  CHECK(cov[4] == Approx(0.3));
  CHECK(cov[2] == Approx(0.19));
  CHECK(cov[9] == Approx(0.01));
  CHECK(cov[1] == 0.0);
  CHECK(classes_above(cov, 0.02) == 3);
}

TEST_CASE("metrics: the classifier's cross-entropy and its gradient", "[metrics]") {
  const Tensor logits = from_vector({2, -1, 0.5, 0, 0, 3}, {2, 3}, DType::f64).set_requires_grad(true);
  const Tensor loss = cross_entropy(logits, {0, 2});
  auto lse = [](double a, double b, double c) { return std::log(std::exp(a) + std::exp(b) + std::exp(c)); };
  const double want = 0.5 * ((lse(2, -1, 0.5) - 2) + (lse(0, 0, 3) - 3));
  CHECK(loss.item() == Approx(want).epsilon(1e-12));
  loss.backward();
  const std::vector<double> g = logits.grad().to_vector();
  // d/dlogit = (softmax - onehot) / batch.
  CHECK(g[0] == Approx((std::exp(2) / std::exp(lse(2, -1, 0.5)) - 1) / 2).epsilon(1e-12));
  CHECK(g[5] == Approx((std::exp(3) / std::exp(lse(0, 0, 3)) - 1) / 2).epsilon(1e-12));
  CHECK_THROWS_WITH(cross_entropy(logits, {0, 5}), Contains("cross_entropy") && Contains("label 5"));
}

TEST_CASE("metrics: the classifier learns a tiny labelled dataset; datasets without labels are refused", "[metrics]") {
  const fs::path root = scratch("clf");
  const fs::path data = make_labeled_idx(root / "data");
  const LabeledData d = open_labeled(data.string(), 8, 1);
  CHECK(d.num_classes == 3);
  CHECK(d.train.images->size() == 240);
  CHECK(d.test.images->size() == 90);
  Classifier c(1, 3, 0);
  CHECK(c.accuracy(d.test) < 0.7);  // untrained
  c.train(d.train, ClassifierTraining{.images = 960, .batch = 32, .lr = 2e-3, .seed = 0}, nullptr);
  CHECK(c.accuracy(d.test) > 0.95);
  CHECK(c.features(split_images(d.test, {0, 1})).shape() == Shape{2, Classifier::kFeatures});
  // Saved and loaded: the same outputs.
  c.save((root / "c.safetensors").string(), {{"data", "x"}});
  std::map<std::string, std::string> meta;
  const Classifier back = Classifier::load((root / "c.safetensors").string(), &meta);
  CHECK(meta.at("data") == "x");
  const Tensor x = split_images(d.test, {3, 4, 5});
  CHECK(back.logits(back.features(x)).to_vector() == c.logits(c.features(x)).to_vector());

  // An image folder has no labels; an idx file without its labels file neither.
  fs::create_directories(root / "folder");
  const std::vector<uint8_t> px(64, 100);
  data::write_png((root / "folder" / "a.png").string(), px.data(), 8, 8, 1);
  CHECK_THROWS_WITH(open_labeled((root / "folder").string(), 8, 1),
                    Contains("has no labels") && Contains("folder") && Contains("image folder"));
  fs::remove(root / "data" / "t10k-labels-idx1-ubyte");
  CHECK_THROWS_WITH(open_labeled(data.string(), 8, 1), Contains("has no labels") && Contains("t10k-labels-idx1-ubyte"));
  fs::remove_all(root);
}

TEST_CASE("metrics: training with --metrics logs them and trains exactly as without; stylegan2-metrics runs",
          "[metrics]") {
  const fs::path root = scratch("train");
  const fs::path data = make_labeled_idx(root / "data");
  std::string with_dir, without_dir;
  REQUIRE(train::run_training(tiny_run(data, root / "with", 1), &with_dir) == 0);
  REQUIRE(train::run_training(tiny_run(data, root / "without", 0), &without_dir) == 0);
  const std::string log = read_all(fs::path(with_dir) / "log.jsonl");
  CHECK_THAT(log, Contains("\"metrics/fd\": ") && Contains("\"metrics/cls_score\": ") &&
                      Contains("\"metrics/classes_above_2pct\": ") && Contains("\"metrics/num\": 64") &&
                      Contains("\"metrics/kid\": ") && Contains("\"metrics/coverage/2\": "));
  CHECK(log.find("null") == std::string::npos);
  CHECK(read_all(fs::path(without_dir) / "log.jsonl").find("metrics/") == std::string::npos);
  // The classifier is cached beside the run directories, by dataset and size.
  const fs::path clf = root / "with" / "classifier-data-8x1.safetensors";
  CHECK(fs::exists(clf));
  // The metrics draw from their own streams: the snapshots are byte for byte the same.
  const std::string a = only_snapshot(with_dir), b = only_snapshot(without_dir);
  REQUIRE(!a.empty());
  REQUIRE(!b.empty());
  CHECK(read_all(a) == read_all(b));

  // stylegan2-metrics on the snapshot, with the cached classifier (the data from its state).
  const std::string bin = std::string(SG_BIN_DIR) + "/stylegan2-metrics";
  const fs::path out = root / "metrics.txt";
  int rc = std::system(
      (bin + " --network " + a + " --num 64 --kid-subsets 5 --threads 2 > " + out.string() + " 2>&1").c_str());
  std::string text = read_all(out);
  INFO(text);
  CHECK(rc == 0);
  CHECK_THAT(text, Contains("classifier: loaded " + clf.string()) && Contains("\"fd\": ") && Contains("\"num\": 64") &&
                       Contains("\"classes_above_2pct\": ") && Contains("\"coverage\": ["));
  // Real images: every class present.
  rc =
      std::system((bin + " --reals --data " + data.string() + " --resolution 8 --num 64 --kid-subsets 0 --classifier " +
                   clf.string() + " > " + out.string() + " 2>&1")
                      .c_str());
  text = read_all(out);
  CHECK(rc == 0);
  CHECK_THAT(text, Contains("\"kid\": null") && Contains("\"classes_above_2pct\": 3"));

  // Errors name the flag or the dataset.
  rc = std::system((bin + " --num 10 > " + out.string() + " 2>&1").c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  CHECK_THAT(read_all(out), Contains("--network is required"));
  fs::create_directories(root / "folder");
  const std::vector<uint8_t> px(64, 100);
  data::write_png((root / "folder" / "a.png").string(), px.data(), 8, 8, 1);
  rc = std::system(
      (bin + " --network " + a + " --data " + (root / "folder").string() + " > " + out.string() + " 2>&1").c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  CHECK_THAT(read_all(out), Contains("has no labels") && Contains((root / "folder").string()));
  // stylegan2-train --metrics N on a dataset without labels stops before training.
  train::TrainOptions bad = tiny_run(root / "folder", root / "bad", 1);
  CHECK_THROWS_WITH(train::run_training(bad), Contains("has no labels"));
  CHECK_FALSE(fs::exists(root / "bad"));
  fs::remove_all(root);
}

TEST_CASE("metrics: --cond trains class-conditional networks on the labels; loader, resume, generate, metrics",
          "[metrics][train]") {
  const fs::path root = scratch("cond");
  const fs::path data = make_labeled_idx(root / "data");

  // The loader hands out each image's own label, one-hot, through shuffling and prefetch.
  {
    const LabeledData d = open_labeled(data.string(), 8, 1);
    data::BatchLoader loader(*d.train.images, 16, 5, false, 2, d.train.labels, d.num_classes);
    int64_t seen = 0;
    for (int k = 0; k < 20; ++k) {  // 320 images: past the end of the 240-image epoch
      const data::BatchLoader::Batch b = loader.next_batch();
      REQUIRE(b.labels.shape() == Shape{16, 3});
      const float* px = b.images.data<float>();
      const float* l = b.labels.data<float>();
      for (int64_t i = 0; i < 16; ++i, ++seen) {
        int cls = -1, ones = 0;
        for (int j = 0; j < 3; ++j) ones += l[i * 3 + j] == 1.0f, cls = l[i * 3 + j] == 1.0f ? j : cls;
        REQUIRE(ones == 1);
        // make_labeled_idx: class 0 bright even rows, 1 bright even columns, 2 a centred block.
        const float* im = px + i * 64;
        const int from_pixels = im[0 * 8 + 1] > 0 ? 0 : im[1 * 8 + 0] > 0 ? 1 : im[3 * 8 + 3] > 0 ? 2 : -1;
        CHECK(cls == from_pixels);
      }
    }
    CHECK(seen == 320);
    CHECK_THROWS_WITH(data::BatchLoader(*d.train.images, 4, 0, false, 0, {0, 1}, 3),
                      Contains("240 images but 2 labels"));
  }

  // Training: c_dim = the number of classes, in options.json and the snapshot.
  train::TrainOptions o = tiny_run(data, root / "runs", 1);
  o.cond = true;
  std::string run;
  REQUIRE(train::run_training(o, &run) == 0);
  CHECK_THAT(read_all(fs::path(run) / "options.json"), Contains("\"cond\": true") && Contains("\"c_dim\": 3"));
  const std::string log = read_all(fs::path(run) / "log.jsonl");
  CHECK_THAT(log, Contains("\"metrics/fd\": ") && Contains("\"metrics/coverage/2\": "));
  CHECK(log.find("null") == std::string::npos);
  const std::string snap = only_snapshot(run);
  REQUIRE(!snap.empty());
  std::map<std::string, std::string> meta;
  train::Networks nets = train::load_snapshot(snap, &meta);
  CHECK(meta.at("c_dim") == "3");
  CHECK(nets.cfg.c_dim == 3);
  CHECK(meta.at("cmap_layers") == std::to_string(models::make_config("small", 8, 1).cmap_layers));
  {  // a conditional snapshot from before the key had ada's 8-layer label mapping
    std::map<std::string, std::string> old = meta;
    old.erase("cmap_layers");
    CHECK(train::snapshot_config(old, "old.safetensors").cmap_layers == 8);
  }
  CHECK(nets.G->parameters().has("mapping.embed.weight"));
  CHECK(nets.D->parameters().count() == models::expected_param_count_D(nets.cfg));

  // Resume continues bit-exactly (the labels drawn for generated images come from the
  // training RNG, the reals' from the loader); resuming it without --cond is refused.
  {
    train::TrainOptions half = o;
    half.kimg = 0.008;
    half.outdir = (root / "half").string();
    std::string first, second;
    REQUIRE(train::run_training(half, &first) == 0);
    train::TrainOptions rest = o;
    rest.outdir = (root / "half").string();
    rest.resume = first;
    REQUIRE(train::run_training(rest, &second) == 0);
    auto a = io::load_safetensors_map(snap), b = io::load_safetensors_map(only_snapshot(second));
    REQUIRE(a.size() == b.size());
    for (auto& [name, t] : a) {
      INFO(name);
      CHECK(t.to_vector() == b.at(name).to_vector());
    }
    train::TrainOptions plain = rest;
    plain.cond = false;
    CHECK_THROWS_WITH(train::run_training(plain), Contains("class-conditional (c_dim 3)") && Contains("--cond"));
    // --dmap is architecture: another depth is refused with both named; auto (-1) follows the run.
    REQUIRE(models::make_config("small", 8, 1).cmap_layers == 1);
    train::TrainOptions deeper = rest;
    deeper.cmap_layers = 2;
    CHECK_THROWS_WITH(train::run_training(deeper), Contains("--resume") && Contains("has --cbase") &&
                                                       Contains(" --dmap 1,") && Contains("--dmap 2;"));
    train::TrainOptions d2 = o;
    d2.kimg = 0.004, d2.cmap_layers = 2, d2.metrics = 0, d2.outdir = (root / "d2").string();
    std::string d2run, d2more;
    REQUIRE(train::run_training(d2, &d2run) == 0);
    CHECK_THAT(read_all(fs::path(d2run) / "options.json"), Contains("\"cmap_layers\": 2"));
    d2.kimg = 0.008, d2.cmap_layers = -1, d2.resume = d2run;
    REQUIRE(train::run_training(d2, &d2more) == 0);
    CHECK(train::load_snapshot(only_snapshot(d2more)).cfg.cmap_layers == 2);
  }

  // stylegan2-generate: seed s draws class s mod 3, or every seed --class K; a class out of
  // range is refused. stylegan2-metrics samples it with the training split's labels.
  const std::string gen = std::string(SG_BIN_DIR) + "/stylegan2-generate --network " + snap + " --seeds 0-1 --outdir ";
  const fs::path out = root / "out.txt";
  int rc = std::system((gen + (root / "g0").string() + " > " + out.string() + " 2>&1").c_str());
  CHECK(rc == 0);
  CHECK_THAT(read_all(out), Contains("class-conditional network (3 classes): seed s draws class s mod 3"));
  CHECK(fs::exists(root / "g0" / "seed0001.png"));
  rc = std::system((gen + (root / "g1").string() + " --class 3 > " + out.string() + " 2>&1").c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  CHECK_THAT(read_all(out), Contains("--class 3 is not one of the network's 3 classes"));
  rc = std::system((gen + (root / "g2").string() + " --class 2 > " + out.string() + " 2>&1").c_str());
  CHECK(rc == 0);
  CHECK(fs::exists(root / "g2" / "seed0001.png"));
  const std::string met = std::string(SG_BIN_DIR) + "/stylegan2-metrics";
  rc = std::system(
      (met + " --network " + snap + " --num 64 --kid-subsets 0 --noise-mode none > " + out.string() + " 2>&1").c_str());
  INFO(read_all(out));
  CHECK(rc == 0);
  CHECK_THAT(read_all(out), Contains("\"fd\": ") && Contains("\"num\": 64"));
  rc = std::system((met + " --network " + snap + " --noise-mode loud > " + out.string() + " 2>&1").c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  CHECK_THAT(read_all(out), Contains("--noise-mode: expected const, random or none, got 'loud'"));
  // --reals --classes: real images of some classes only (what dropping the others costs).
  rc = std::system((met + " --reals --data " + data.string() + " --resolution 8 --num 60 --kid-subsets 0 --classes 1 " +
                    "--classifier " + (root / "runs" / "classifier-data-8x1.safetensors").string() + " > " +
                    out.string() + " 2>&1")
                       .c_str());
  CHECK(rc == 0);
  CHECK_THAT(read_all(out), Contains("\"classes_above_2pct\": 1"));
  rc = std::system((met + " --reals --data " + data.string() + " --resolution 8 --classes 7 --classifier " +
                    (root / "runs" / "classifier-data-8x1.safetensors").string() + " > " + out.string() + " 2>&1")
                       .c_str());
  CHECK(WEXITSTATUS(rc) == 1);
  CHECK_THAT(read_all(out), Contains("class 7 is not one of the dataset's 3 classes"));

  // stylegan2-train's default (cond < 0, auto): conditional when the dataset has labels and the
  // config can be, else unconditional.
  for (const auto& [cfg, with_labels, c_dim] :
       {std::tuple{"small", true, 3}, std::tuple{"seed32", true, 0}, std::tuple{"small", false, 0}}) {
    fs::create_directories(root / "folder");
    const std::vector<uint8_t> px(64, 100);
    data::write_png((root / "folder" / "a.png").string(), px.data(), 8, 8, 1);
    train::TrainOptions a = tiny_run(with_labels ? data : root / "folder", root / "auto", 0);
    a.cond = -1;
    a.cfg = cfg;
    a.kimg = 0.004;
    std::string dir;
    REQUIRE(train::run_training(a, &dir) == 0);
    INFO(cfg << (with_labels ? " with labels" : " without labels"));
    CHECK_THAT(read_all(fs::path(dir) / "options.json"), Contains(str("\"c_dim\": ", c_dim, ",")));
  }

  // With --resume, auto follows the run: an unconditional run on labelled data resumes
  // unconditionally.
  {
    train::TrainOptions u = tiny_run(data, root / "uncond", 0);
    u.kimg = 0.004;
    std::string first;
    REQUIRE(train::run_training(u, &first) == 0);
    u.cond = -1;
    u.kimg = 0.008;
    u.resume = first;
    std::string second;
    REQUIRE(train::run_training(u, &second) == 0);
    CHECK_THAT(read_all(fs::path(second) / "options.json"), Contains("\"c_dim\": 0,"));
  }

  // A dataset without labels cannot train conditionally; the seed32 notebook model neither.
  fs::create_directories(root / "folder");
  const std::vector<uint8_t> px(64, 100);
  data::write_png((root / "folder" / "a.png").string(), px.data(), 8, 8, 1);
  train::TrainOptions bad = tiny_run(root / "folder", root / "bad", 0);
  bad.cond = true;
  CHECK_THROWS_WITH(train::run_training(bad), Contains("--cond") && Contains("has no labels"));
  bad = tiny_run(data, root / "bad", 0);
  bad.cond = true;
  bad.cfg = "seed32";
  CHECK_THROWS_WITH(train::run_training(bad), Contains("--cond") && Contains("unconditional"));
  CHECK_FALSE(fs::exists(root / "bad"));
  fs::remove_all(root);
}
