// StyleGAN2 utilities composed of differentiable ops: pixel_norm (mapping network input)
// and minibatch_stddev (the discriminator's last block).
#include "engine/ops/common.h"

namespace sg {

Tensor pixel_norm(const Tensor& x, int64_t dim, double eps) {
  ops::check_defined("pixel_norm", x, "x");
  return mul(x, rsqrt(add(mean(square(x), {dim}, true), eps)));
}

Tensor minibatch_stddev(const Tensor& x, int64_t group_size, int64_t num_channels) {
  const char* op = "minibatch_stddev";
  ops::check_defined(op, x, "x");
  SG_CHECK(x.dim() == 4, op, "expects x [N,C,H,W], got ", shape_str(x.shape()));
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  SG_CHECK(group_size >= 1 && num_channels >= 1, op, "group_size and num_channels must be >= 1");
  const int64_t G = std::min(group_size, N), F = num_channels;
  SG_CHECK(N % G == 0, op, "batch ", N, " is not divisible by group size ", G, " (x ", shape_str(x.shape()), ")");
  SG_CHECK(C % F == 0, op, "channels ", C, " not divisible by num_channels ", F);
  Tensor y = reshape(x, {G, -1, F, C / F, H, W});  // [G, n, F, c, H, W]
  y = sub(y, mean(y, {0}, true));                  // deviation from the group mean
  y = mean(square(y), {0});                        // variance over the group [n,F,c,H,W]
  y = sqrt(add(y, 1e-8));
  y = mean(y, {2, 3, 4});  // [n, F]
  y = reshape(y, {-1, F, 1, 1});
  y = repeat(y, {G, 1, H, W});  // [N, F, H, W]
  return cat({x, y}, 1);
}

}  // namespace sg
