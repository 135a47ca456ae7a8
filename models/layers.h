// Internal building blocks of the model families (not part of the public API).
//
// Layers are plain structs holding indices into a ParamList plus their hyperparameters; a
// forward reads the current tensors from the list. Builder registers parameters in order,
// with their dotted names, drawing initial values from one sg::Rng.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "models/stylegan2.h"

namespace sg::models::detail {

struct Builder {
  ParamList& P;
  Rng& rng;
  DType dt;
  int param(const std::string& name, Tensor init);   // registers a leaf that requires grad
  int buffer(const std::string& name, Tensor init);  // registers a buffer (no grad)
  Tensor randn(const Shape& s) { return sg::randn(s, rng, dt); }
  Tensor uniform(const Shape& s, double bound);  // U(-bound, bound)
  Tensor zeros(const Shape& s) { return sg::zeros(s, dt); }
  Tensor full(const Shape& s, double v) { return sg::full(s, v, dt); }
};

inline const Tensor& P_at(const ParamList& P, int i) { return P.params[(size_t)i].second; }
inline const Tensor& B_at(const ParamList& P, int i) { return P.buffers[(size_t)i].second; }

// ws [N, num_ws, w_dim] -> num_ws tensors [N, w_dim].
std::vector<Tensor> unbind_ws(const Tensor& ws, int64_t num_ws, int64_t w_dim, const char* who);

// Equalized-lr fully connected layer (stylegan2-ada FullyConnectedLayer): the weight is
// drawn N(0,1)/lr_mul and used as weight * lr_mul/sqrt(in); the bias starts at bias_init and
// is used as bias * lr_mul. y = act(x W'^T + b') * gain (gain sqrt 2 for lrelu).
struct EqFC {
  int w = -1, b = -1;
  int64_t in = 0, out = 0;
  double lr_mul = 1, weight_gain = 1;
  Act act = Act::linear;
  static EqFC make(Builder& B, const std::string& name, int64_t in, int64_t out, Act act, double lr_mul = 1,
                   double bias_init = 0, bool bias = true);
  Tensor forward(const ParamList& P, const Tensor& x) const;
};

// Equalized-lr conv (stylegan2-ada Conv2dLayer): weight N(0,1) used as w / sqrt(in*k*k),
// conv2d_resample with FIR up/down, bias + activation (+ gain, clamp) through bias_act.
struct EqConv {
  int w = -1, b = -1;
  int64_t in = 0, out = 0, k = 3, up = 1, down = 1;
  double weight_gain = 1, clamp = -1;
  Act act = Act::linear;
  static EqConv make(Builder& B, const std::string& name, int64_t in, int64_t out, int64_t k, Act act, int64_t up,
                     int64_t down, double clamp, bool bias = true);
  Tensor forward(const ParamList& P, const Tensor& x, const Tensor& filter, double gain = 1.0) const;
};

inline double act_gain(Act a) { return a == Act::lrelu || a == Act::relu ? std::sqrt(2.0) : 1.0; }

// Arch-specific networks.
struct GeneratorNet {
  virtual ~GeneratorNet() = default;
  virtual int64_t num_ws() const = 0;
  virtual Tensor mapping(const ParamList& P, const Tensor& z) const = 0;  // -> w [N, w_dim]
  virtual Tensor synthesis(const ParamList& P, const std::vector<Tensor>& ws, NoiseMode noise,
                           Rng& rng) const = 0;
  virtual void to(Device d) {}  // moves non-parameter constants (the FIR filter)
};
struct DiscriminatorNet {
  virtual ~DiscriminatorNet() = default;
  virtual Tensor forward(const ParamList& P, const Tensor& img) const = 0;
  virtual void to(Device d) {}
};

// Registers the parameters (in order) and returns the network. w_avg is registered by the
// Generator itself, after the mapping parameters.
std::unique_ptr<GeneratorNet> make_stylegan2_generator(const Config& c, Builder& B);
std::unique_ptr<GeneratorNet> make_stylegan1_generator(const Config& c, Builder& B);
std::unique_ptr<GeneratorNet> make_seed32_generator(const Config& c, Builder& B);
std::unique_ptr<DiscriminatorNet> make_stylegan2_discriminator(const Config& c, Builder& B);
std::unique_ptr<DiscriminatorNet> make_seed32_discriminator(const Config& c, Builder& B);

// The stylegan2-ada mapping network (pixel norm, FCs with lr multiplier and lrelu), shared
// by stylegan2 and stylegan1. Names "mapping.fc{i}.weight/bias".
struct EqMapping {
  std::vector<EqFC> fcs;
  static EqMapping make(const Config& c, Builder& B);
  Tensor forward(const ParamList& P, const Tensor& z) const;
};

int64_t log2_exact(int64_t v);

// prefix + decimal r, e.g. ("synthesis.b", 8) -> "synthesis.b8" (written with += to dodge a
// GCC 12 -Wrestrict false positive on "literal" + std::string&&).
inline std::string res_name(const char* prefix, int64_t r) {
  std::string s(prefix);
  s += std::to_string(r);
  return s;
}

}  // namespace sg::models::detail
