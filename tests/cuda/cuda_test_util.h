// Shared by the tests of sg_cuda_tests: the device under test, copies of CPU f64 references
// onto it, and the comparison with the reference.
//
// Every CUDA test computes the same thing twice from the same f64 inputs: on the CPU in f64
// (the reference) and on the device in f32 (inputs .to(f32).to(device)). Error measure, as
// the PyTorch-oracle tests (oracle_util.h): max|a - b| / max|b| <= 1e-4; when the reference is
// identically zero (or undefined: no gradient) the device may return no gradient or values
// with max|a| <= 1e-4.
#pragma once
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "engine/device.h"
#include "engine/ops.h"
#include "gradcheck.h"
#include "oracle_util.h"

namespace sgtest::cuda {

constexpr double kTol = 1e-4;

// SG_CUDA_TESTS_DEVICE=cpu: the harness self-check (see main.cpp).
bool self_check();
// Why CUDA tests cannot run here (no backend, or no device).
std::string no_device_reason();
// cuda:0, or the CPU in the self-check.
sg::Device device();
// For tests that mean something only on a real CUDA device (allocator, device mixing): in the
// self-check, WARNs that the test did not run and returns false.
bool real_cuda(const char* test);

// t (any dtype, CPU) cast to f32 and copied to device(), detached; a leaf if requires_grad.
sg::Tensor to_dut(const sg::Tensor& t, bool requires_grad = false);
// t as an f64 CPU leaf (a fresh handle sharing the storage).
sg::Tensor leaf64(const sg::Tensor& t, bool requires_grad = false);

// Compares a device result with its CPU f64 reference (undefined: no gradient, taken as zero):
// max|a - b| / max(max|b|, floor) <= tol. floor (default 0: none) lets a tensor that is small
// only by cancellation (a second derivative that is nearly zero) be measured at the scale of
// its siblings, where f32 rounding lives.
sg::oracle::Comparison compare_to_ref(const std::string& what, const sg::Tensor& actual, const sg::Tensor& ref,
                                      double tol = kTol, double floor = 0);
double max_abs(const sg::Tensor& t);  // 0 for an undefined tensor

// A reduced-precision result (TF32, bf16) against its f64 reference, within the format's
// error bound. A format that keeps p bits of significand rounds each input with relative error
// at most u = 2^-p (TF32: p = 11, bf16: p = 8), so a product a*b carries at most (2u + u^2)|a||b|,
// and the f32 sum of K products adds at most K 2^-24 sum|a||b|. Hence, per output,
//   |got - ref| <= (2u + u^2 + K 2^-24) * absref + slack * (1 + |ref|)
// with absref the same computation on |inputs| (sum |a||b|, times any epilogue scales) and slack
// (default 0) for an f32 epilogue after the sum. Also checks that the rounding is visible
// (the largest error is over 1e-3 of the bound: the reduced format ran, not f32).
void check_format_bound(const std::string& what, double u, int64_t K, const sg::Tensor& got, const sg::Tensor& ref,
                        const sg::Tensor& absref, double slack = 0);

using Named = std::vector<std::pair<std::string, sg::Tensor>>;

// Standard normal f64 values of shape s, from seed: the inputs of most tests.
sg::Tensor rnd(const sg::Shape& s, uint64_t seed);

// The names of the kernels launched since the last call (emulator builds: its launch log).
// Elsewhere there is no log: the list is empty, kHaveLaunchLog is false, and the checks that
// read it are skipped.
std::vector<std::string> take_launch_log();
constexpr bool kHaveLaunchLog =
#ifdef SG_CUDA_EMU
    true;
#else
    false;
#endif
// Whether a kernel whose name starts with prefix is in log.
bool launched(const std::vector<std::string>& log, const std::string& prefix);

// Runs f, which must throw an sg::Error (or, with any_exception, any std::exception: the
// kernels' own CudaError) whose message contains every piece.
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> pieces,
                  bool any_exception = false);

}  // namespace sgtest::cuda

#define SG_DEVICE_CHECK(what, actual, ref, ...)                                                      \
  do {                                                                                               \
    auto sg_dc_ = ::sgtest::cuda::compare_to_ref((what), (actual), (ref)__VA_OPT__(, ) __VA_ARGS__); \
    INFO(sg_dc_.text);                                                                               \
    CHECK(sg_dc_.ok);                                                                                \
  } while (0)
