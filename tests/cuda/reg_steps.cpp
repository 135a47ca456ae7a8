#include "reg_steps.h"

#include <cmath>

namespace sgtest::cuda {
using namespace sg;

namespace {

const double kSqrt2 = std::sqrt(2.0);

Tensor draw(Rng& g, const Shape& s, double scale, double shift = 0.0) {
  return add(mul(randn(s, g, DType::f64), scale), shift).detach();
}

Tensor act(const Tensor& h, const Tensor& b, bool use_bias_act) {
  if (use_bias_act) return bias_act(h, b, Act::lrelu, 0.2, kSqrt2);
  return mul(leaky_relu(add(h, reshape(b, {1, -1, 1, 1})), 0.2), kSqrt2);
}

const Tensor& get(const Named& n, const std::string& name) {
  for (auto& [k, t] : n)
    if (k == name) return t;
  throw Error("reg_steps: no tensor " + name);
}

Tensor copy_of(const Tensor& t) { return t.defined() ? t.detach().clone().detach() : Tensor(); }

// Loss, backward, Adam: the part both steps share.
void finish_step(const Tensor& loss, RegNet& net, Adam& opt, StepRecord& r) {
  r.values.emplace_back("loss", copy_of(loss));
  opt.zero_grad();
  loss.backward();
  std::vector<Tensor> before;
  for (auto& [name, p] : net.params) {
    r.grads.emplace_back(name, copy_of(p.grad()));
    before.push_back(copy_of(p));
  }
  opt.step();
  for (size_t i = 0; i < net.params.size(); ++i) {
    const auto& [name, p] = net.params[i];
    NoGradGuard ng;
    r.deltas.emplace_back(name, sub(p, before[i]).detach());
    r.params.emplace_back(name, copy_of(p));
  }
}

}  // namespace

RegNet make_r1_net(uint64_t seed) {
  Rng g(seed);
  RegNet n;
  n.params = {{"w1", draw(g, {16, 3, 3, 3}, 1 / std::sqrt(27.0))},
              {"b1", draw(g, {16}, 0.1)},
              {"w2", draw(g, {16, 16, 3, 3}, 1 / std::sqrt(144.0))},
              {"b2", draw(g, {16}, 0.1)},
              {"w3", draw(g, {1, 16 * 8 * 8}, 1 / 32.0)},
              {"b3", draw(g, {1}, 0.1)}};
  for (auto& [k, p] : n.params) p.set_requires_grad(true);
  n.inputs = {{"x", draw(g, {4, 3, 16, 16}, 1.0)}};
  return n;
}

RegNet make_pl_net(uint64_t seed) {
  Rng g(seed);
  RegNet n;
  const int64_t C = 8, zdim = 16;
  n.params = {{"map_w", draw(g, {zdim, zdim}, 0.25)},
              {"map_b", draw(g, {zdim}, 0.1)},
              {"affine_w", draw(g, {C, zdim}, 0.25)},
              {"affine_b", draw(g, {C}, 0.1, 1.0)},
              {"const", draw(g, {1, C, 4, 4}, 1.0)},
              {"conv_w", draw(g, {C, C, 3, 3}, 1.0)},
              {"conv_b", draw(g, {C}, 0.1)},
              {"up_affine_w", draw(g, {C, zdim}, 0.25)},
              {"up_affine_b", draw(g, {C}, 0.1, 1.0)},
              {"up_w", draw(g, {C, C, 3, 3}, 1.0)},
              {"up_b", draw(g, {C}, 0.1)},
              {"rgb_affine_w", draw(g, {C, zdim}, 0.25)},
              {"rgb_affine_b", draw(g, {C}, 0.1, 1.0)},
              {"rgb_w", draw(g, {3, C, 1, 1}, 1 / std::sqrt(8.0))}};
  for (auto& [k, p] : n.params) p.set_requires_grad(true);
  n.inputs = {{"z", draw(g, {4, zdim}, 1.0)}};
  return n;
}

RegNet to_dut(const RegNet& n) {
  RegNet d;
  for (auto& [k, p] : n.params) d.params.emplace_back(k, to_dut(p, true));
  for (auto& [k, x] : n.inputs) d.inputs.emplace_back(k, to_dut(x));
  return d;
}

StepRecord r1_step(RegNet& net, Adam& opt, bool use_bias_act) {
  const Named& P = net.params;
  auto D = [&](const Tensor& img) {
    Tensor h = act(conv2d(img, get(P, "w1"), {1, 1}, {1, 1}), get(P, "b1"), use_bias_act);
    h = act(conv2d(h, get(P, "w2"), {2, 2}, {1, 1}), get(P, "b2"), use_bias_act);
    return linear(reshape(h, {h.size(0), -1}), get(P, "w3"), get(P, "b3"));
  };
  StepRecord r;
  Tensor x = get(net.inputs, "x").detach();
  x.set_requires_grad(true);
  Tensor logits = D(x);
  Tensor r1_grads;
  {
    NoWeightGradientsGuard guard;
    r1_grads = autograd::grad({sum(logits)}, {x}, {}, /*create_graph=*/true)[0];
  }
  Tensor r1 = mean(sum(square(r1_grads), {1, 2, 3}));
  const double gamma = 1.0;
  Tensor loss = add(mean(softplus(neg(logits))), mul(r1, gamma / 2));
  r.values = {{"logits", copy_of(logits)}, {"r1_grads", copy_of(r1_grads)}, {"r1", copy_of(r1)}};
  finish_step(loss, net, opt, r);
  return r;
}

StepRecord pl_step(RegNet& net, Adam& opt, bool use_bias_act, bool fused, Tensor& pl_mean, uint64_t noise_seed) {
  const Named& P = net.params;
  const Tensor& z = get(net.inputs, "z");
  const int64_t N = z.size(0);
  Tensor filter = fir_filter({1, 3, 3, 1}, z.dtype()).to(z.device());
  auto modconv = [&](const Tensor& x, const char* w, const Tensor& styles, bool demod, int64_t up, int64_t pad) {
    ModConv p;
    p.demodulate = demod;
    p.up = up;
    p.padding = pad;
    p.fused = fused;
    p.resample_filter = filter;
    return modulated_conv2d(x, get(P, w), styles, p);
  };
  auto G = [&](const Tensor& ws) {
    Tensor x = repeat(get(P, "const"), {N, 1, 1, 1});
    x = modconv(x, "conv_w", linear(ws, get(P, "affine_w"), get(P, "affine_b")), true, 1, 1);
    x = act(x, get(P, "conv_b"), use_bias_act);
    x = modconv(x, "up_w", linear(ws, get(P, "up_affine_w"), get(P, "up_affine_b")), true, 2, 1);
    x = act(x, get(P, "up_b"), use_bias_act);
    return modconv(x, "rgb_w", linear(ws, get(P, "rgb_affine_w"), get(P, "rgb_affine_b")), false, 1, 0);
  };
  StepRecord r;
  Tensor ws = mul(leaky_relu(linear(z, get(P, "map_w"), get(P, "map_b")), 0.2), kSqrt2);
  Tensor img = G(ws);
  Rng noise_rng(noise_seed);
  Tensor pl_noise =
      mul(randn(img.shape(), noise_rng, img.dtype(), img.device()), 1.0 / std::sqrt(double(img.size(2) * img.size(3))));
  Tensor pl_grads;
  {
    NoWeightGradientsGuard guard;
    pl_grads = autograd::grad({sum(mul(img, pl_noise))}, {ws}, {}, /*create_graph=*/true)[0];
  }
  Tensor pl_lengths = sqrt(sum(square(pl_grads), {1}));
  Tensor new_mean = lerp(pl_mean, mean(pl_lengths).detach(), 0.01);
  const double pl_weight = 2.0;
  Tensor loss = mul(mean(square(sub(pl_lengths, new_mean))), pl_weight);
  r.values = {{"img", copy_of(img)},
              {"pl_noise", copy_of(pl_noise)},
              {"pl_grads", copy_of(pl_grads)},
              {"pl_lengths", copy_of(pl_lengths)},
              {"pl_mean", copy_of(new_mean)}};
  finish_step(loss, net, opt, r);
  pl_mean = new_mean.detach();
  return r;
}

void check_record(const StepRecord& dut, const StepRecord& ref) {
  auto check = [](const char* what, const Named& a, const Named& b) {
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      REQUIRE(a[i].first == b[i].first);
      SG_DEVICE_CHECK(str(what, a[i].first), a[i].second, b[i].second);
    }
  };
  check("value ", dut.values, ref.values);
  check("gradient of the loss wrt ", dut.grads, ref.grads);
  check("after the update: ", dut.params, ref.params);
  // The update itself, p_after - p_before, to 1e-3 of its size (~lr), plus one f32 ulp of the
  // parameter (the rounding of storing p_after in f32). Looser than 1e-4 because Adam divides
  // each element by its own gradient's size: an element whose gradient is small by
  // cancellation brings its f32 rounding into the update at full size. A wrong step size or
  // a flipped sign is still off by 1e-1 .. 2.
  REQUIRE(dut.deltas.size() == ref.deltas.size());
  for (size_t i = 0; i < ref.deltas.size(); ++i) {
    const double dmax = max_abs(ref.deltas[i].second);
    const double ulp = std::ldexp(max_abs(ref.params[i].second), -23);
    const double tol = 1e-3 + (dmax > 0 ? ulp / dmax : 0.0);
    SG_DEVICE_CHECK(str("Adam update of ", ref.deltas[i].first), dut.deltas[i].second, ref.deltas[i].second, tol);
  }
}

}  // namespace sgtest::cuda
