// sg-demo-r1: the engine on real work until the training binary lands. Loads Fashion-MNIST
// (Debian's dataset-fashion-mnist), pads 28x28 to 32x32, and trains a small residual-free
// conv discriminator for a few steps to tell real images from noise, with the StyleGAN2 R1
// gradient penalty: r1 = E ||d D(x) / d x||^2, whose weight gradient is a second derivative.
// Prints, per step, the logistic loss, the R1 penalty and the norm of the penalty's
// gradient with respect to the weights.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "engine/ops.h"
#include "train/idx_dataset.h"

using namespace sg;

namespace {

struct Disc {
  std::vector<Tensor> params;
  Tensor w1, b1, w2, b2, w3, b3, w4, b4;
  explicit Disc(Rng& g) {
    auto p = [&](Shape s) { return randn(s, g).set_requires_grad(true); };
    auto z = [&](Shape s) { return zeros(s).set_requires_grad(true); };
    w1 = p({16, 1, 3, 3}), b1 = z({16});
    w2 = p({32, 16, 3, 3}), b2 = z({32});
    w3 = p({32, 33, 3, 3}), b3 = z({32});
    w4 = p({1, 32 * 8 * 8}), b4 = z({1});
    params = {w1, b1, w2, b2, w3, b3, w4, b4};
  }
  // Equalized learning rate: weights scaled by 1/sqrt(fan_in) at run time.
  static Tensor eq(const Tensor& w) { return mul(w, 1.0 / std::sqrt((double)(w.numel() / w.size(0)))); }
  Tensor operator()(const Tensor& x) const {
    Tensor h = bias_act(conv2d(x, eq(w1), {1, 1}, {1, 1}), b1, Act::lrelu, 0.2, std::sqrt(2.0));  // 32x32
    h = bias_act(conv2d_resample(h, eq(w2), fir_filter({1, 3, 3, 1}), 1, 2, 1, 1), b2, Act::lrelu, 0.2,
                 std::sqrt(2.0));  // 16x16
    h = minibatch_stddev(h, 4, 1);
    h = bias_act(conv2d(h, eq(w3), {2, 2}, {1, 1}), b3, Act::lrelu, 0.2, std::sqrt(2.0));  // 8x8
    return linear(reshape(h, {h.size(0), -1}), eq(w4), b4);
  }
};

double norm(const std::vector<Tensor>& ts) {
  double s = 0;
  for (auto& t : ts)
    if (t.defined()) s += sum(square(t)).item();
  return std::sqrt(s);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string path = argc > 1 ? argv[1] : data::kFashionMnistTrain;
    const int steps = argc > 2 ? std::stoi(argv[2]) : 40;
    const int64_t batch = 16;
    data::IdxImages imgs = data::read_idx_images(path, batch * steps);
    std::printf("sg-demo-r1: %lld images %lldx%lld from %s\n", (long long)imgs.count, (long long)imgs.rows,
                (long long)imgs.cols, path.c_str());
    Rng g(2026);
    Disc D(g);
    const double lr = 0.05, gamma = 1.0;
    auto t0 = std::chrono::steady_clock::now();
    for (int step = 0; step < steps && (step + 1) * batch <= imgs.count; ++step) {
      // Real batch: pad 28x28 to 32x32 (2 pixels each side), scale to [-1, 1].
      std::vector<double> px(batch * 32 * 32, -1.0);
      for (int64_t n = 0; n < batch; ++n)
        for (int64_t y = 0; y < imgs.rows; ++y)
          for (int64_t x = 0; x < imgs.cols; ++x)
            px[(n * 32 + y + 2) * 32 + x + 2] =
                imgs.pixels[((step * batch + n) * imgs.rows + y) * imgs.cols + x] / 127.5 - 1.0;
      Tensor real = from_vector(px, {batch, 1, 32, 32}).set_requires_grad(true);
      Tensor fake = randn({batch, 1, 32, 32}, g);
      // Non-saturating logistic loss: softplus(D(fake)) + softplus(-D(real)).
      Tensor real_logits = D(real);
      Tensor loss = add(mean(softplus(D(fake))), mean(softplus(neg(real_logits))));
      // R1: gradient of D's output with respect to the real images, kept in the graph.
      Tensor r1_grads;
      {
        NoWeightGradientsGuard nw;  // the inner pass never needs weight gradients
        r1_grads = autograd::grad({sum(real_logits)}, {real}, {}, true)[0];
      }
      Tensor r1 = mean(sum(square(r1_grads), {1, 2, 3}));
      Tensor total = add(loss, mul(r1, gamma / 2));
      auto loss_grads = autograd::grad({loss}, D.params, {}, false, true);
      auto r1_weight_grads = autograd::grad({r1}, D.params, {}, false, true);  // second order
      auto grads = autograd::grad({total}, D.params);
      {
        NoGradGuard ng;
        for (size_t i = 0; i < D.params.size(); ++i) {
          Tensor& p = D.params[i];
          Tensor upd = sub(p, mul(nan_to_num(grads[i]), lr));
          std::copy_n(upd.data<float>(), upd.numel(), p.data<float>());
        }
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("step %3d  loss %.4f  r1 %.5f  |d r1/d w| %.5f  |d loss/d w| %.4f  %.2fs\n", step, loss.item(),
                  r1.item(), norm(r1_weight_grads), norm(loss_grads), secs);
      std::fflush(stdout);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sg-demo-r1: error: %s\n", e.what());
    return 1;
  }
}
