// The op table: one entry per op, each with several input samples (odd sizes, batch 1,
// groups > 1, stride 2, up and down); the idea of PyTorch's OpInfo. Two test programs use it:
//   sg_tests       (tests/test_optable.cpp)       gradcheck, gradgradcheck, f32 vs f64 on CPU
//   sg_cuda_tests  (tests/cuda/test_cuda_optable.cpp)  CUDA f32 against CPU f64: forward,
//                                                 first and second order
// Adding an op means adding its entry in tests/optable.cpp. A sample's function must build
// any tensor it makes itself on the device (and in the dtype) of its inputs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gradcheck.h"

namespace sgtest {

enum class Kind { normal, positive, away_from_zero, constant };
struct Input {
  sg::Shape shape;
  Kind kind = Kind::normal;
  sg::Tensor fixed;  // for Kind::constant: used as is (not differentiated)
};
struct Sample {
  std::string desc;
  std::vector<Input> inputs;
  Fn fn;
};
struct OpEntry {
  std::string name;
  std::vector<Sample> samples;
};

const std::vector<OpEntry>& op_table();

// The seed of entry `index`'s first sample; each further sample (and its checks) counts up.
inline uint64_t entry_seed(size_t index) { return 1000 + index * 17; }

// Materialises a sample's inputs in f64 on the CPU from a fixed seed; diff[i] says whether
// input i is differentiated (constants are not).
std::vector<sg::Tensor> make_inputs(const Sample& s, uint64_t seed, std::vector<bool>& diff);

}  // namespace sgtest
