// Sample-quality metrics in the features of the project's own classifier (train/classifier.h;
// docs/metrics.md has the definitions, sample counts and noise floors):
//   FD           Frechet distance between Gaussian fits of two feature sets,
//                ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), in f64;
//   KID          unbiased MMD^2 with the kernel (x.y / d + 1)^3, averaged over random subsets
//                (stylegan2-ada-pytorch's definition);
//   cls_score    exp(E_x KL(p(y|x) || p(y))), the Inception Score's formula with our classifier
//                (one split: all samples);
//   coverage     the fraction of samples the classifier assigns (argmax) to each class.
// Evaluator ties them together: the test split's statistics once, then a generator's samples
// (its own RNG streams, so training never sees a draw it made) or a set of real images.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/stylegan2.h"

namespace sg::metrics {

// Mean and covariance (denominator n - 1, as numpy's np.cov) of n feature rows of dimension d.
struct Gaussian {
  int64_t n = 0, d = 0;
  std::vector<double> mu;   // d
  std::vector<double> cov;  // d * d, row-major
};
// feats: n * d values, row-major. sg::Error when n < 2 or a value is not finite.
Gaussian fit_gaussian(const std::vector<float>& feats, int64_t n, int64_t d);

// Tr((S1 S2)^(1/2)) for symmetric positive semi-definite S1, S2 (d x d, row-major), in f64:
// the eigenvalues of sqrt(S1) S2 sqrt(S1) (symmetric, the same as those of S1 S2), negative
// round-off clipped to zero.
double trace_sqrt_product(const std::vector<double>& s1, const std::vector<double>& s2, int64_t d);

// ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)). sg::Error on different dimensions.
double frechet_distance(const Gaussian& a, const Gaussian& b);

// Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 between subsets of size
// m = min(na, nb, max_subset) drawn without replacement, averaged over num_subsets subsets;
// the subsets come from Philox with `seed`.
double kernel_inception_distance(const std::vector<float>& a, int64_t na, const std::vector<float>& b, int64_t nb,
                                 int64_t d, int64_t num_subsets = 100, int64_t max_subset = 1000, uint64_t seed = 0);

// probs: n * k class probabilities (rows sum to 1). exp(mean_i KL(p_i || mean_j p_j)):
// 1 when every sample gets the same distribution, k for confident predictions spread evenly.
double classifier_score(const std::vector<double>& probs, int64_t n, int64_t k);

// The fraction of rows whose largest probability is class c, for c = 0..k-1 (ties: the lowest c).
std::vector<double> class_coverage(const std::vector<double>& probs, int64_t n, int64_t k);
// How many entries of coverage are above `threshold` (0.02: the "classes above 2%").
int64_t classes_above(const std::vector<double>& coverage, double threshold = 0.02);

// Row-wise softmax of n * k logits, in f64.
std::vector<double> softmax_rows(const std::vector<float>& logits, int64_t n, int64_t k);

// ---- evaluation -------------------------------------------------------------------------------

struct EvalOptions {
  std::string data;        // the training dataset (its labels and test split are found from it)
  std::string classifier;  // cached classifier: loaded if present, else trained and saved here
  int64_t resolution = 32, channels = 1;
  int64_t num = 5000;              // generated (or real) samples per evaluation
  int64_t classifier_images = -1;  // training budget of a new classifier (< 0: its default)
  int64_t kid_subsets = 100;       // 0: no KID
  int64_t batch = 64;              // generator / classifier batch
  uint64_t seed = 0;               // latents and noise of the samples
  // The generator's noise inputs: random (ada's metrics), constant (its stored buffers) or none.
  models::NoiseMode noise = models::NoiseMode::random;
  // FID Inception-v3 weights (scripts/convert_inception.py; models/inception.h): FID and KID
  // in its 2048 pool3 features too. "" (the default): off.
  std::string inception;
  int64_t inception_ref = -1;  // test-split images whose Inception features are the reference (< 0: all)
  int64_t inception_batch = 16;
  Device device = Device::cpu();
  std::function<void(const std::string&)> log;  // progress lines (classifier training, accuracy)
};

struct Result {
  int64_t num = 0;
  double fd = 0, kid = 0, cls_score = 0;
  bool has_kid = false;  // KID was computed (EvalOptions::kid_subsets > 0)
  // FID and KID in the FID Inception-v3's features (EvalOptions::inception set).
  bool has_fid = false;
  double fid = 0, kid_inception = 0;
  int64_t inception_ref = 0;  // reference images (the test split's first ones)
  std::vector<double> coverage;
  int64_t classes_above_2pct = 0;
  double seconds = 0;              // this evaluation (samples, features, statistics)
  double classifier_accuracy = 0;  // on the test split
  // "metrics/fd" ... as log.jsonl records them.
  std::vector<std::pair<std::string, double>> records() const;
  // One line of JSON with every value.
  std::string json() const;
  // A few human-readable lines.
  std::string text() const;
};

class Evaluator {
 public:
  // Opens the dataset's labelled splits (sg::Error naming the dataset when it has no labels),
  // loads or trains the classifier, and fits the test split's features.
  explicit Evaluator(const EvalOptions& o);
  ~Evaluator();
  // opt.num samples of G (G_ema), latents and noise from Philox streams seeded by opt.seed,
  // quantized to 8 bits as images are saved; under no-grad; G is left as it was. A
  // conditional G gets the label of a random training image for each sample (the same stream).
  Result evaluate(models::Generator& G) const;
  // The same on given images [N, C, R, R] in [-1, 1] (e.g. real training images).
  Result evaluate_images(const Tensor& images) const;
  // opt.num images of the training split (a fixed random choice, seeded by opt.seed), each
  // blurred by a Gaussian of `blur_sigma` pixels when > 0; only images of `classes` when it is
  // not empty (what a generator that draws only those classes, perfectly, would score).
  Tensor training_images(double blur_sigma = 0, const std::vector<int64_t>& classes = {}) const;
  double classifier_accuracy() const;
  const EvalOptions& options() const { return o_; }

 private:
  struct Impl;
  EvalOptions o_;
  std::unique_ptr<Impl> impl_;
};

// The cache path for a classifier of `data` at this resolution and channel count, in `dir`:
// dir/classifier-<dataset name>-<R>x<C>.safetensors.
std::string default_classifier_path(const std::string& dir, const std::string& data, int64_t resolution,
                                    int64_t channels);

}  // namespace sg::metrics
