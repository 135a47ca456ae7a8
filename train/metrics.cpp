#include "train/metrics.h"

#include <Eigen/Dense>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "engine/ops.h"
#include "models/inception.h"
#include "models/stylegan2.h"
#include "train/classifier.h"
#include "train/loss.h"
#include "train/run_dir.h"

namespace sg::metrics {
namespace fs = std::filesystem;
using Eigen::MatrixXd;
using Eigen::VectorXd;
using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Gaussian fit_gaussian(const std::vector<float>& feats, int64_t n, int64_t d) {
  SG_CHECK(n >= 2 && d >= 1 && (int64_t)feats.size() == n * d, "fit_gaussian", "need at least 2 rows of ", d,
           " features, got ", feats.size(), " values for ", n, " rows");
  for (float v : feats) SG_CHECK(std::isfinite(v), "fit_gaussian", "a feature is not finite (", v, ")");
  const MatrixXd x = Eigen::Map<const RowMajorF>(feats.data(), n, d).cast<double>();
  const VectorXd mu = x.colwise().mean();
  const MatrixXd c = x.rowwise() - mu.transpose();
  const MatrixXd cov = (c.transpose() * c) / (double)(n - 1);
  Gaussian g;
  g.n = n, g.d = d;
  g.mu.assign(mu.data(), mu.data() + d);
  g.cov.resize((size_t)(d * d));
  Eigen::Map<MatrixXd>(g.cov.data(), d, d) = cov;  // symmetric: row- and column-major agree
  return g;
}

double trace_sqrt_product(const std::vector<double>& s1, const std::vector<double>& s2, int64_t d) {
  SG_CHECK(d >= 1 && (int64_t)s1.size() == d * d && (int64_t)s2.size() == d * d, "trace_sqrt_product", "expected two ",
           d, "x", d, " matrices, got ", s1.size(), " and ", s2.size(), " values");
  const MatrixXd a = Eigen::Map<const MatrixXd>(s1.data(), d, d), b = Eigen::Map<const MatrixXd>(s2.data(), d, d);
  Eigen::SelfAdjointEigenSolver<MatrixXd> ea(0.5 * (a + a.transpose()));
  SG_CHECK(ea.info() == Eigen::Success, "trace_sqrt_product", "the eigen decomposition of S1 did not converge");
  const MatrixXd& v = ea.eigenvectors();
  const MatrixXd sqrt_a = v * ea.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal() * v.transpose();
  const MatrixXd m = sqrt_a * b * sqrt_a;
  Eigen::SelfAdjointEigenSolver<MatrixXd> em(0.5 * (m + m.transpose()), Eigen::EigenvaluesOnly);
  SG_CHECK(em.info() == Eigen::Success, "trace_sqrt_product",
           "the eigen decomposition of sqrt(S1) S2 sqrt(S1) did not converge");
  return em.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
}

double frechet_distance(const Gaussian& a, const Gaussian& b) {
  SG_CHECK(a.d == b.d && a.d >= 1, "frechet_distance", "feature dimensions differ: ", a.d, " and ", b.d);
  double dmu = 0, tr = 0;
  for (int64_t i = 0; i < a.d; ++i) {
    dmu += (a.mu[(size_t)i] - b.mu[(size_t)i]) * (a.mu[(size_t)i] - b.mu[(size_t)i]);
    tr += a.cov[(size_t)(i * a.d + i)] + b.cov[(size_t)(i * a.d + i)];
  }
  return dmu + tr - 2.0 * trace_sqrt_product(a.cov, b.cov, a.d);
}

namespace {

// m distinct indices of 0..n-1 (a partial Fisher-Yates shuffle driven by Philox).
std::vector<int64_t> choose(int64_t n, int64_t m, Rng& rng) {
  std::vector<int64_t> idx((size_t)n);
  std::iota(idx.begin(), idx.end(), 0);
  const std::vector<double> u = rand({m}, rng, DType::f64).to_vector();
  for (int64_t i = 0; i < m; ++i) {
    const int64_t j = i + std::min<int64_t>((int64_t)(u[(size_t)i] * (double)(n - i)), n - i - 1);
    std::swap(idx[(size_t)i], idx[(size_t)j]);
  }
  idx.resize((size_t)m);
  return idx;
}

MatrixXd rows_of(const std::vector<float>& f, int64_t d, const std::vector<int64_t>& idx) {
  MatrixXd x((int64_t)idx.size(), d);
  for (size_t r = 0; r < idx.size(); ++r)
    for (int64_t c = 0; c < d; ++c) x((int64_t)r, c) = f[(size_t)(idx[r] * d + c)];
  return x;
}

}  // namespace

double kernel_inception_distance(const std::vector<float>& a, int64_t na, const std::vector<float>& b, int64_t nb,
                                 int64_t d, int64_t num_subsets, int64_t max_subset, uint64_t seed) {
  SG_CHECK((int64_t)a.size() == na * d && (int64_t)b.size() == nb * d && d >= 1, "kernel_inception_distance",
           "feature sets of ", a.size(), " and ", b.size(), " values for ", na, " and ", nb, " rows of ", d);
  const int64_t m = std::min({na, nb, max_subset});
  SG_CHECK(m >= 2 && num_subsets >= 1, "kernel_inception_distance", "subsets of ", m, " rows (need 2), ", num_subsets,
           " subsets");
  Rng rng(seed);
  double t = 0;
  auto kernel = [&](const MatrixXd& x, const MatrixXd& y) {
    return ((x * y.transpose()).array() / (double)d + 1.0).cube().matrix().eval();
  };
  for (int64_t s = 0; s < num_subsets; ++s) {
    const MatrixXd x = rows_of(a, d, choose(na, m, rng)), y = rows_of(b, d, choose(nb, m, rng));
    const MatrixXd kxx = kernel(x, x), kyy = kernel(y, y), kxy = kernel(x, y);
    const double off_diag = kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace();
    t += off_diag / (double)(m - 1) - kxy.sum() * 2.0 / (double)m;
  }
  return t / (double)num_subsets / (double)m;
}

std::vector<double> softmax_rows(const std::vector<float>& logits, int64_t n, int64_t k) {
  SG_CHECK((int64_t)logits.size() == n * k && k >= 1, "softmax_rows", logits.size(), " values for ", n, "x", k);
  std::vector<double> p((size_t)(n * k));
  for (int64_t i = 0; i < n; ++i) {
    const float* row = &logits[(size_t)(i * k)];
    const double top = *std::max_element(row, row + k);
    double z = 0;
    for (int64_t c = 0; c < k; ++c) z += (p[(size_t)(i * k + c)] = std::exp((double)row[c] - top));
    for (int64_t c = 0; c < k; ++c) p[(size_t)(i * k + c)] /= z;
  }
  return p;
}

double classifier_score(const std::vector<double>& probs, int64_t n, int64_t k) {
  SG_CHECK(n >= 1 && k >= 1 && (int64_t)probs.size() == n * k, "classifier_score", probs.size(), " values for ", n, "x",
           k);
  std::vector<double> marginal((size_t)k, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < k; ++c) marginal[(size_t)c] += probs[(size_t)(i * k + c)] / (double)n;
  double kl = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < k; ++c) {
      const double p = probs[(size_t)(i * k + c)];
      if (p > 0) kl += p * (std::log(p) - std::log(marginal[(size_t)c]));
    }
  return std::exp(kl / (double)n);
}

std::vector<double> class_coverage(const std::vector<double>& probs, int64_t n, int64_t k) {
  SG_CHECK(n >= 1 && k >= 1 && (int64_t)probs.size() == n * k, "class_coverage", probs.size(), " values for ", n, "x",
           k);
  std::vector<double> cov((size_t)k, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const auto row = probs.begin() + i * k;
    cov[(size_t)(std::max_element(row, row + k) - row)] += 1.0 / (double)n;
  }
  return cov;
}

int64_t classes_above(const std::vector<double>& coverage, double threshold) {
  return std::count_if(coverage.begin(), coverage.end(), [&](double c) { return c > threshold; });
}

// ---- Result ----------------------------------------------------------------------------------

std::vector<std::pair<std::string, double>> Result::records() const {
  std::vector<std::pair<std::string, double>> r = {{"metrics/num", (double)num},
                                                   {"metrics/fd", fd},
                                                   {"metrics/cls_score", cls_score},
                                                   {"metrics/classes_above_2pct", (double)classes_above_2pct}};
  if (has_kid) r.push_back({"metrics/kid", kid});
  if (has_fid) {
    r.push_back({"metrics/fid", fid});
    if (has_kid) r.push_back({"metrics/kid_inception", kid_inception});
    r.push_back({"metrics/fid_ref", (double)inception_ref});
  }
  for (size_t c = 0; c < coverage.size(); ++c) r.push_back({"metrics/coverage/" + std::to_string(c), coverage[c]});
  r.push_back({"metrics/classifier_accuracy", classifier_accuracy});
  r.push_back({"metrics/sec", seconds});
  return r;
}

std::string Result::json() const {
  std::ostringstream s;
  s << "{\"num\": " << num << ", \"fd\": " << data::json_number(fd)
    << ", \"kid\": " << (has_kid ? data::json_number(kid) : "null")
    << ", \"fid\": " << (has_fid ? data::json_number(fid) : "null")
    << ", \"kid_inception\": " << (has_fid && has_kid ? data::json_number(kid_inception) : "null")
    << ", \"fid_ref\": " << inception_ref << ", \"cls_score\": " << data::json_number(cls_score)
    << ", \"classes_above_2pct\": " << classes_above_2pct << ", \"coverage\": [";
  for (size_t c = 0; c < coverage.size(); ++c) s << (c ? ", " : "") << data::json_number(coverage[c]);
  s << "], \"classifier_accuracy\": " << data::json_number(classifier_accuracy)
    << ", \"seconds\": " << data::json_number(seconds) << "}";
  return s.str();
}

std::string Result::text() const {
  char buf[256];
  std::string out;
  std::snprintf(buf, sizeof buf,
                "FD %.3f  KID %s  classifier score %.3f  classes above 2%%: %lld of %zu  (%lld samples, %.1f s)\n", fd,
                has_kid ? str(kid).c_str() : "-", cls_score, (long long)classes_above_2pct, coverage.size(),
                (long long)num, seconds);
  out += buf;
  if (has_fid) {
    std::snprintf(buf, sizeof buf, "FID %.3f  KID %s  (FID Inception-v3 features; %lld reference images)\n", fid,
                  has_kid ? str(kid_inception).c_str() : "-", (long long)inception_ref);
    out += buf;
  }
  out += "coverage:";
  for (size_t c = 0; c < coverage.size(); ++c) {
    std::snprintf(buf, sizeof buf, " %zu:%.3f", c, coverage[c]);
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "\nclassifier test accuracy %.4f\n", classifier_accuracy);
  return out + buf;
}

// ---- Evaluator -------------------------------------------------------------------------------

struct Evaluator::Impl {
  LabeledData data;
  std::unique_ptr<Classifier> clf;
  double accuracy = 0;
  std::vector<float> test_feats;
  Gaussian test;
  std::unique_ptr<models::FidInception> inception;
  std::vector<float> test_inception;
  Gaussian test_inception_fit;

  // FID Inception-v3 features of images [N, C, R, R] (CPU), in batches on its device.
  void extract_inception(const Tensor& images, int64_t batch, std::vector<float>& feats) const {
    NoGradGuard ng;
    const int64_t n = images.size(0);
    for (int64_t i = 0; i < n; i += batch)
      for (double v : inception->features(slice(images, 0, i, std::min(n, i + batch))).to_vector())
        feats.push_back((float)v);
  }

  // Features and logits of images [N, C, R, R] (CPU, f32), in batches on the classifier's device.
  void extract(const Tensor& images, int64_t batch, std::vector<float>& feats, std::vector<float>& logits) const {
    NoGradGuard ng;
    const int64_t n = images.size(0);
    for (int64_t i = 0; i < n; i += batch) {
      const Tensor f = clf->features(slice(images, 0, i, std::min(n, i + batch)).to(clf->device()));
      for (double v : f.to_vector()) feats.push_back((float)v);
      for (double v : clf->logits(f).to_vector()) logits.push_back((float)v);
    }
  }
};

std::string default_classifier_path(const std::string& dir, const std::string& data, int64_t resolution,
                                    int64_t channels) {
  return (fs::path(dir) / str("classifier-", data::dataset_name(data), "-", resolution, "x", channels, ".safetensors"))
      .string();
}

Evaluator::Evaluator(const EvalOptions& o) : o_(o), impl_(std::make_unique<Impl>()) {
  SG_CHECK(o.num >= 2, "metrics", "--num must be at least 2, got ", o.num);
  SG_CHECK(!o.classifier.empty(), "metrics", "no classifier path given");
  auto log = [&](const std::string& s) {
    if (o_.log) o_.log(s);
  };
  Impl& m = *impl_;
  m.data = open_labeled(o.data, o.resolution, o.channels);
  const std::string data_abs = fs::absolute(o.data).lexically_normal().string();
  const std::map<std::string, std::string> want = {
      {"data", data_abs}, {"resolution", std::to_string(o.resolution)}, {"channels", std::to_string(o.channels)}};
  if (fs::exists(o.classifier)) {
    std::map<std::string, std::string> meta;
    m.clf = std::make_unique<Classifier>(Classifier::load(o.classifier, &meta));
    for (const auto& [key, value] : want) {
      auto it = meta.find(key);
      SG_CHECK(it != meta.end() && it->second == value, "metrics", "the classifier '", o.classifier,
               "' was trained for ", key, " '", it == meta.end() ? std::string("?") : it->second, "', not '", value,
               "'; pass another --classifier FILE (it is trained and saved there if missing) or remove this one");
    }
    SG_CHECK(m.clf->num_classes() == m.data.num_classes, "metrics", "the classifier '", o.classifier, "' has ",
             m.clf->num_classes(), " classes, the dataset ", m.data.num_classes);
    m.clf->to(o.device);
    log(str("classifier: loaded ", o.classifier));
  } else {
    m.clf = std::make_unique<Classifier>(o.channels, m.data.num_classes);
    m.clf->to(o.device);
    ClassifierTraining t;
    // The default budget, but at most 4 epochs of a small training split.
    t.images = o.classifier_images > 0 ? o.classifier_images : std::min(t.images, 4 * m.data.train.images->size());
    log(str("classifier: training on ", m.data.train.files, " (", t.images, " images), for ", o.classifier));
    const auto t0 = std::chrono::steady_clock::now();
    m.clf->train(m.data.train, t, log);
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::map<std::string, std::string> meta = want;
    meta["train_images"] = std::to_string(t.images);
    meta["train_seconds"] = str(sec);
    meta["test_accuracy"] = str(m.clf->accuracy(m.data.test));
    m.clf->save(o.classifier, meta);
    log(str("classifier: trained in ", sec, " s, test accuracy ", meta["test_accuracy"], ", saved to ", o.classifier));
  }
  // The reference statistics: every test image.
  const int64_t n_test = m.data.test.images->size();
  std::vector<int64_t> all((size_t)n_test);
  std::iota(all.begin(), all.end(), 0);
  std::vector<float> logits;
  const Tensor test_images = split_images(m.data.test, all);
  m.extract(test_images, 256, m.test_feats, logits);
  const int64_t k = m.data.num_classes;
  int64_t correct = 0;
  for (int64_t i = 0; i < n_test; ++i) {
    const auto row = logits.begin() + i * k;
    correct += std::max_element(row, row + k) - row == m.data.test.labels[(size_t)i];
  }
  m.accuracy = (double)correct / (double)n_test;
  m.test = fit_gaussian(m.test_feats, n_test, Classifier::kFeatures);
  log(str("classifier: test accuracy ", m.accuracy, " on ", n_test, " images (", m.data.test.files, ")"));
  if (!o.inception.empty()) {
    m.inception = std::make_unique<models::FidInception>(o.inception);
    m.inception->to(o.device);
    const int64_t n_ref = o.inception_ref < 0 ? n_test : std::min(o.inception_ref, n_test);
    SG_CHECK(n_ref >= 2, "metrics", "--inception-ref must be at least 2, got ", n_ref);
    const auto t0 = std::chrono::steady_clock::now();
    log(str("inception: features of ", n_ref, " test images (", o.inception, ")"));
    m.extract_inception(slice(test_images, 0, 0, n_ref), std::max<int64_t>(o.inception_batch, 1), m.test_inception);
    m.test_inception_fit = fit_gaussian(m.test_inception, n_ref, models::FidInception::kFeatures);
    log(str("inception: done in ", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), " s"));
  }
}

Evaluator::~Evaluator() = default;

double Evaluator::classifier_accuracy() const { return impl_->accuracy; }

Result Evaluator::evaluate_images(const Tensor& images) const {
  const auto t0 = std::chrono::steady_clock::now();
  const Impl& m = *impl_;
  const int64_t n = images.size(0), d = Classifier::kFeatures, k = m.data.num_classes;
  std::vector<float> feats, logits;
  m.extract(images.cpu().to(DType::f32), std::max<int64_t>(o_.batch, 1), feats, logits);
  Result r;
  r.num = n;
  r.fd = frechet_distance(fit_gaussian(feats, n, d), m.test);
  r.has_kid = o_.kid_subsets > 0;
  if (r.has_kid)
    r.kid = kernel_inception_distance(feats, n, m.test_feats, (int64_t)m.test_feats.size() / d, d, o_.kid_subsets, 1000,
                                      o_.seed);
  const std::vector<double> probs = softmax_rows(logits, n, k);
  r.cls_score = classifier_score(probs, n, k);
  r.coverage = class_coverage(probs, n, k);
  r.classes_above_2pct = classes_above(r.coverage, 0.02);
  if (m.inception) {
    const int64_t di = models::FidInception::kFeatures;
    std::vector<float> fi;
    m.extract_inception(images.cpu().to(DType::f32), std::max<int64_t>(o_.inception_batch, 1), fi);
    r.has_fid = true;
    r.inception_ref = (int64_t)m.test_inception.size() / di;
    r.fid = frechet_distance(fit_gaussian(fi, n, di), m.test_inception_fit);
    if (r.has_kid)
      r.kid_inception =
          kernel_inception_distance(fi, n, m.test_inception, r.inception_ref, di, o_.kid_subsets, 1000, o_.seed);
  }
  r.classifier_accuracy = m.accuracy;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

Result Evaluator::evaluate(models::Generator& G) const {
  const auto t0 = std::chrono::steady_clock::now();
  NoGradGuard ng;
  const auto& c = G.config();
  SG_CHECK(c.resolution == o_.resolution && c.img_channels == o_.channels, "metrics", "the generator makes ",
           c.resolution, "x", c.resolution, "x", c.img_channels, " images, the metrics were set up for ", o_.resolution,
           "x", o_.resolution, "x", o_.channels);
  // Their own streams: nothing here draws from the training RNG.
  Rng zr(o_.seed), nr(o_.seed + (uint64_t(1) << 32));
  const Tensor z = randn({o_.num, c.z_dim}, zr, DType::f32, G.device());
  // A conditional G: each sample's label that of a random training image (ada's metrics), so
  // the classes come in the training split's proportions.
  Tensor labels;
  if (c.c_dim > 0) {
    SG_CHECK(c.c_dim == impl_->data.num_classes, "metrics", "the generator is conditional on ", c.c_dim,
             " classes, the dataset has ", impl_->data.num_classes);
    labels = train::sample_labels(impl_->data.train.labels, o_.num, c.c_dim, zr, G.device());
  }
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < o_.num; i += o_.batch) {
    const int64_t end = std::min(o_.num, i + o_.batch);
    const Tensor zi = slice(z, 0, i, end);
    const Tensor ci = labels.defined() ? slice(labels, 0, i, end) : Tensor();
    Tensor img = G.synthesis(G.mapping(zi, ci, 1.0, false), o_.noise, nr).cpu().to(DType::f32);
    // 8 bits per channel, as the images are saved and the real ones stored: round((x + 1) * 127.5).
    float* p = img.data<float>();
    for (int64_t j = 0; j < img.numel(); ++j) {
      const float v = std::isnan(p[j]) ? 0.0f : std::clamp(std::nearbyint((p[j] + 1.0f) * 127.5f), 0.0f, 255.0f);
      p[j] = v / 127.5f - 1.0f;
    }
    parts.push_back(img);
  }
  Result r = evaluate_images(cat(parts, 0));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

Tensor Evaluator::training_images(double blur_sigma, const std::vector<int64_t>& classes) const {
  const LabeledSplit& s = impl_->data.train;
  std::vector<int64_t> pool;  // the training images of `classes` (all when empty)
  for (int64_t c : classes)
    SG_CHECK(c >= 0 && c < impl_->data.num_classes, "metrics", "class ", c, " is not one of the dataset's ",
             impl_->data.num_classes, " classes (0-", impl_->data.num_classes - 1, ")");
  for (int64_t i = 0; i < s.images->size(); ++i)
    if (classes.empty() || std::find(classes.begin(), classes.end(), (int64_t)s.labels[(size_t)i]) != classes.end())
      pool.push_back(i);
  const int64_t n = (int64_t)pool.size();
  SG_CHECK(o_.num <= n, "metrics", "--num ", o_.num, " is more than the ", n, " training images",
           classes.empty() ? "" : " of those classes");
  Rng rng(o_.seed);
  std::vector<int64_t> idx = choose(n, o_.num, rng);
  for (int64_t& i : idx) i = pool[(size_t)i];
  Tensor x = split_images(s, idx);
  if (blur_sigma <= 0) return x;
  // A separable Gaussian, radius 3 sigma, black (-1) outside the image.
  NoGradGuard ng;
  const int64_t rad = (int64_t)std::ceil(3 * blur_sigma), k = 2 * rad + 1, ch = x.size(1);
  std::vector<double> taps((size_t)k);
  for (int64_t i = 0; i < k; ++i) taps[(size_t)i] = std::exp(-0.5 * std::pow((double)(i - rad) / blur_sigma, 2));
  const double total = std::accumulate(taps.begin(), taps.end(), 0.0);
  std::vector<double> w;
  for (int64_t c = 0; c < ch; ++c)
    for (double t : taps) w.push_back(t / total);
  const Tensor wy = from_vector(w, {ch, 1, k, 1}), wx = from_vector(w, {ch, 1, 1, k});
  Tensor h = conv2d(x + 1.0, wy, {1, 1}, {rad, 0}, ch);
  return conv2d(h, wx, {1, 1}, {0, rad}, ch) - 1.0;
}

}  // namespace sg::metrics
