// Internal building blocks of the model families (not part of the public API).
//
// Parameters live in a ParamList (models/stylegan2.h), not in the layers. A layer holds
// named handles (Param, Buffer) into that list plus its hyperparameters, and reads the
// current tensor through the handle at every forward: `weight(P)`. So an optimizer or a
// checkpoint loader may write into the tensors in place or replace them in the list, and
// the layers see the new values without being told. Builder registers the parameters in
// order, with their dotted names (those of the PyTorch state_dict), drawing initial values
// from one sg::Rng; the order of registration is the order of the draws.
//
// Layer builders take an Options struct, written at the call site with designated
// initializers (members in declaration order, as C++20 requires):
//   EqConv::make(B, "b8.conv1", {.in = 256, .out = 512, .k = 3, .act = Act::lrelu, .down = 2})
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "models/stylegan2.h"

namespace sg::models::detail {

// A named handle to one parameter of a ParamList: its position in P.params and its name.
// weight(P) is the tensor there now. Reading an undefined handle (a layer built without
// that parameter) or a handle on another ParamList throws sg::Error naming the parameter.
struct Param {
  int index = -1;
  std::string name;
  bool defined() const { return index >= 0; }
  const Tensor& operator()(const ParamList& P) const;
};

// The same for a buffer (P.buffers: tensors without grad, e.g. a noise_const).
struct Buffer {
  int index = -1;
  std::string name;
  bool defined() const { return index >= 0; }
  const Tensor& operator()(const ParamList& P) const;
};

struct Builder {
  ParamList& P;
  Rng& rng;
  DType dt;
  Param param(const std::string& name, Tensor init);    // registers a leaf that requires grad
  Buffer buffer(const std::string& name, Tensor init);  // registers a buffer (no grad)
  Tensor randn(const Shape& s) { return sg::randn(s, rng, dt); }
  Tensor uniform(const Shape& s, double bound);  // U(-bound, bound)
  Tensor zeros(const Shape& s) { return sg::zeros(s, dt); }
  Tensor full(const Shape& s, double v) { return sg::full(s, v, dt); }
};

// ws [N, num_ws, w_dim] -> num_ws tensors [N, w_dim].
std::vector<Tensor> unbind_ws(const Tensor& ws, int64_t num_ws, int64_t w_dim, const char* who);

// Equalized-lr fully connected layer (stylegan2-ada FullyConnectedLayer): the weight is
// drawn N(0,1)/lr_mul and used as weight * lr_mul/sqrt(in); the bias starts at bias_init and
// is used as bias * lr_mul. y = act(x W'^T + b') * gain (gain sqrt 2 for lrelu).
// Registers name.weight [out, in] and (if bias) name.bias [out].
struct EqFC {
  struct Options {
    int64_t in = 0, out = 0;
    Act act = Act::linear;
    double lr_mul = 1, bias_init = 0;
    bool bias = true;
  };
  Options opt;
  Param weight, bias;
  double weight_gain = 1;  // lr_mul / sqrt(in)
  static EqFC make(Builder& B, const std::string& name, const Options& o);
  Tensor forward(const ParamList& P, const Tensor& x) const;
};

// Equalized-lr conv (stylegan2-ada Conv2dLayer): weight N(0,1) used as w / sqrt(in*k*k),
// conv2d_resample with FIR up/down, bias + activation (+ gain, clamp) through bias_act.
// Registers name.weight [out, in, k, k] and (if bias) name.bias [out], zero.
struct EqConv {
  struct Options {
    int64_t in = 0, out = 0, k = 3;
    Act act = Act::linear;
    int64_t up = 1, down = 1;  // 1 or 2
    double clamp = -1;         // < 0: no clamping
    bool bias = true;
  };
  Options opt;
  Param weight, bias;
  double weight_gain = 1;  // 1 / sqrt(in k k)
  static EqConv make(Builder& B, const std::string& name, const Options& o);
  // gain multiplies the activation gain and the clamp (the D's residual sqrt(1/2)).
  Tensor forward(const ParamList& P, const Tensor& x, const Tensor& filter, double gain = 1.0) const;
};

inline double act_gain(Act a) { return a == Act::lrelu || a == Act::relu ? std::sqrt(2.0) : 1.0; }

// Arch-specific networks.
struct GeneratorNet {
  virtual ~GeneratorNet() = default;
  virtual int64_t num_ws() const = 0;
  // z [N, z_dim], c [N, c_dim] or undefined -> w [N, w_dim]
  virtual Tensor mapping(const ParamList& P, const Tensor& z, const Tensor& c) const = 0;
  virtual Tensor synthesis(const ParamList& P, const std::vector<Tensor>& ws, NoiseMode noise, Rng& rng) const = 0;
  virtual void to(Device d) {}  // moves non-parameter constants (the FIR filter)
};
struct DiscriminatorNet {
  virtual ~DiscriminatorNet() = default;
  virtual Tensor forward(const ParamList& P, const Tensor& img, const Tensor& c) const = 0;  // c: or undefined
  virtual Tensor label_map(const ParamList&, const Tensor&) const {  // conditional archs override it
    throw Error("Discriminator::label_map: this architecture has no label mapping");
  }
  virtual void to(Device d) {}
};

// Registers the parameters (in order) and returns the network. w_avg is registered by the
// Generator itself, after the mapping parameters.
std::unique_ptr<GeneratorNet> make_stylegan2_generator(const Config& c, Builder& B);
std::unique_ptr<GeneratorNet> make_stylegan1_generator(const Config& c, Builder& B);
std::unique_ptr<GeneratorNet> make_seed32_generator(const Config& c, Builder& B);
std::unique_ptr<DiscriminatorNet> make_stylegan2_discriminator(const Config& c, Builder& B);
std::unique_ptr<DiscriminatorNet> make_seed32_discriminator(const Config& c, Builder& B);

// The stylegan2-ada mapping network, shared by stylegan2 and stylegan1 (G's, and D's label
// mapping of a conditional D): x = pixel_norm(z), and when conditional
// cat(x, pixel_norm(embed(c))) (embed: an EqFC c_dim -> out, lr multiplier 1, linear); then
// `layers` EqFCs to `out` features with lr multiplier lr_mul and lrelu.
// Names "<prefix>.embed.weight/bias", then "<prefix>.fc{i}.weight/bias".
struct EqMapping {
  struct Options {
    int64_t z_dim = 0, c_dim = 0, out = 0, layers = 1;  // z_dim 0: c alone (D's label mapping)
    double lr_mul = 0.01;
  };
  Options opt;
  EqFC embed;  // when c_dim > 0
  std::vector<EqFC> fcs;
  static EqMapping make(Builder& B, const std::string& prefix, const Options& o);
  Tensor forward(const ParamList& P, const Tensor& z, const Tensor& c) const;
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
