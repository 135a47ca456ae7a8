// r1_penalty: stylegrad used from another CMake project (find_package(stylegrad), the target
// stylegrad::engine). A tiny discriminator (conv -> leaky ReLU -> linear) takes a few Adam
// steps on a logistic loss plus StyleGAN2's R1 penalty, r1 = mean ||d D(x) / d x||^2, on
// random data. r1's weight gradient is a second derivative: autograd::grad with
// create_graph, then backward through that gradient. Prints loss and r1 per step; exits 1
// if either is not finite. CPU tensors only: the program links no CUDA library.
//   cmake --install build --prefix /tmp/sg           # from the stylegrad checkout
//   cmake -S examples -B /tmp/ex -DCMAKE_PREFIX_PATH=/tmp/sg && cmake --build /tmp/ex
//   /tmp/ex/r1_penalty                               # scripts/check-install.sh does all three
#include <cmath>
#include <cstdio>

#include "engine/ops.h"
#include "engine/optim.h"

using namespace sg;

int main() {
  Rng g(7);
  Tensor w1 = mul(randn({8, 1, 3, 3}, g), 1.0 / 3).set_requires_grad(true), b1 = zeros({8}).set_requires_grad(true);
  Tensor w2 = mul(randn({1, 8 * 4 * 4}, g), 0.1).set_requires_grad(true), b2 = zeros({1}).set_requires_grad(true);
  Adam opt({{"w1", w1}, {"b1", b1}, {"w2", w2}, {"b2", b2}}, {.lr = 0.01});
  auto D = [&](const Tensor& x) {  // x [N, 1, 8, 8] -> logits [N, 1]
    Tensor h = leaky_relu(add(conv2d(x, w1, {2, 2}, {1, 1}), reshape(b1, {1, 8, 1, 1})), 0.2);
    return linear(reshape(h, {x.size(0), -1}), w2, b2);
  };
  const double gamma = 10;
  for (int step = 0; step < 5; ++step) {
    Tensor real = randn({4, 1, 8, 8}, g).set_requires_grad(true), fake = randn({4, 1, 8, 8}, g);
    Tensor real_logits = D(real);
    Tensor loss = add(mean(softplus(D(fake))), mean(softplus(neg(real_logits))));
    // d D(real) / d real, kept in the graph (create_graph) so r1 can be differentiated again.
    Tensor dx = autograd::grad({sum(real_logits)}, {real}, {}, /*create_graph=*/true)[0];
    Tensor r1 = mean(sum(square(dx), {1, 2, 3}));
    opt.zero_grad();
    add(loss, mul(r1, gamma / 2)).backward();  // second order through dx into w1, b1, w2
    opt.step();
    std::printf("step %d  loss %.5f  r1 %.5f\n", step, loss.item(), r1.item());
    if (!std::isfinite(loss.item()) || !std::isfinite(r1.item())) {
      std::fprintf(stderr, "r1_penalty: non-finite value at step %d\n", step);
      return 1;
    }
  }
  return 0;
}
