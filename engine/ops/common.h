// Shared helpers for op implementations (engine/ops/*.cpp): input checks and broadcasting.
#pragma once
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace sg::ops {

// Throws unless t is defined.
void check_defined(const char* op, const Tensor& t, const char* what);
// Same dtype and device for all given tensors (undefined ones are ignored).
void check_same(const char* op, const std::vector<Tensor>& ts);
// Throws unless every defined tensor is on the CPU: the fallback of an op's CUDA branch in a
// build without the CUDA backend (the error names the op and the device).
void check_cpu(const char* op, const std::vector<Tensor>& ts);
// True when the first defined tensor lives on CUDA (call check_same first so all agree).
bool is_cuda(const std::vector<Tensor>& ts);
// numpy broadcast of two shapes, or an sg::Error naming op and shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);
// Element strides of `s` viewed as `out` (broadcast dims get stride 0). s must broadcast to out.
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out);
std::vector<int64_t> contiguous_strides(const Shape& s);
// Normalises a possibly negative dim against rank n.
int64_t wrap_dim(const char* op, int64_t d, int64_t n);

}  // namespace sg::ops
