// The CUDA runtime as the engine exposes it: the caching allocator's counters and policy
// (engine/device.h), out-of-memory errors, Philox on CUDA against the CPU, transfers, and the
// error for tensors on different devices.
#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>

#include "cuda_test_util.h"
#include "reg_steps.h"

using namespace sg;
using namespace sgtest::cuda;

namespace {

constexpr int64_t kMiB = int64_t(1) << 20;

}  // namespace

TEST_CASE("cuda: allocator counters follow tensors and freed blocks are reused", "[cuda][allocator][sanitize]") {
  if (!real_cuda("allocator counters")) return;
  cuda_synchronize();
  const CudaMemoryStats s0 = cuda_memory_stats();
  const int64_t n = 3 * kMiB;  // 12 MiB of f32: a large (2 MiB-rounded) block
  CudaMemoryStats s1;
  {
    Tensor t = empty({n}, DType::f32, Device::cuda());
    s1 = cuda_memory_stats();
    CHECK(s1.allocated - s0.allocated >= n * 4);
    CHECK(s1.allocated - s0.allocated < n * 4 + 2 * kMiB);
    CHECK(s1.peak_allocated >= s1.allocated);
    CHECK(s1.cached >= s1.allocated);
    CHECK(s1.num_device_mallocs >= s0.num_device_mallocs);
  }
  const CudaMemoryStats s2 = cuda_memory_stats();
  CHECK(s2.allocated == s0.allocated);
  CHECK(s2.cached == s1.cached);  // the block stays cached
  CHECK(s2.peak_allocated >= s1.allocated);
  {
    Tensor again = empty({n}, DType::f32, Device::cuda());
    const CudaMemoryStats s3 = cuda_memory_stats();
    CHECK(s3.num_device_mallocs == s2.num_device_mallocs);  // the cached block, no cudaMalloc
    CHECK(s3.allocated == s1.allocated);
    Tensor small = empty({10}, DType::f32, Device::cuda());
    const CudaMemoryStats s4 = cuda_memory_stats();
    CHECK(s4.allocated - s3.allocated == 512);  // small blocks round to 512 bytes
  }
  cuda_reset_peak();
  const CudaMemoryStats s5 = cuda_memory_stats();
  CHECK(s5.peak_allocated == s5.allocated);
}

TEST_CASE("cuda: allocator no cudaMalloc on the hot path after warm-up", "[cuda][allocator][sanitize]") {
  if (!real_cuda("allocator hot path")) return;
  SECTION("R1 step") {
    RegNet net = to_dut(make_r1_net(5));
    Adam opt(net.params);
    for (int i = 0; i < 3; ++i) r1_step(net, opt, true);  // warm-up: the cache fills, Adam's moments appear
    cuda_synchronize();
    const CudaMemoryStats w = cuda_memory_stats();
    for (int i = 0; i < 5; ++i) {
      r1_step(net, opt, true);
      cuda_synchronize();
      const CudaMemoryStats s = cuda_memory_stats();
      INFO("identical step " << i + 1 << " after warm-up");
      CHECK(s.num_device_mallocs == w.num_device_mallocs);
      CHECK(s.num_device_frees == w.num_device_frees);
      CHECK(s.allocated == w.allocated);  // nothing leaks from step to step
      CHECK(s.cached == w.cached);
    }
  }
  SECTION("path-length step, fused modconv") {
    RegNet net = to_dut(make_pl_net(6));
    Adam opt(net.params);
    Tensor pl_mean = scalar(0.0, DType::f32, Device::cuda());
    for (int i = 0; i < 3; ++i) pl_step(net, opt, true, true, pl_mean, 40 + i);
    cuda_synchronize();
    const CudaMemoryStats w = cuda_memory_stats();
    for (int i = 0; i < 5; ++i) {
      pl_step(net, opt, true, true, pl_mean, 50 + i);
      cuda_synchronize();
      const CudaMemoryStats s = cuda_memory_stats();
      INFO("identical step " << i + 1 << " after warm-up");
      CHECK(s.num_device_mallocs == w.num_device_mallocs);
      CHECK(s.allocated == w.allocated);
    }
  }
}

TEST_CASE("cuda: allocator empty_cache returns free blocks to the driver", "[cuda][allocator]") {
  if (!real_cuda("empty_cache")) return;
  {
    Tensor a = empty({4 * kMiB}, DType::f32, Device::cuda());
    Tensor b = empty({1000}, DType::f32, Device::cuda());
    Tensor c = full({2 * kMiB}, 1.5, DType::f32, Device::cuda());
  }
  cuda_synchronize();
  const CudaMemoryStats s1 = cuda_memory_stats();
  CHECK(s1.cached - s1.allocated >= 24 * kMiB);  // a and c at least, now free in the cache
  cuda_empty_cache();
  const CudaMemoryStats s2 = cuda_memory_stats();
  CHECK(s2.cached == s2.allocated);  // no free block left
  CHECK(s2.num_device_frees > s1.num_device_frees);
  CHECK(s2.allocated == s1.allocated);
  // and the allocator still works
  Tensor d = full({kMiB}, 2.0, DType::f32, Device::cuda());
  CHECK(d.to_vector()[kMiB - 1] == 2.0);
  CHECK(cuda_memory_stats().num_device_mallocs == s2.num_device_mallocs + 1);
}

TEST_CASE("cuda: allocator out of memory is an sg::Error naming the bytes asked", "[cuda][allocator]") {
  if (!real_cuda("out of memory")) return;
  const CudaMemoryStats s0 = cuda_memory_stats();
  // 1 PiB (no device has it) and 2^40 f32 = 4 TiB.
  for (int64_t elems : {int64_t(1) << 48, int64_t(1) << 40}) {
    const int64_t bytes = elems * 4;
    INFO("asking for " << bytes << " bytes");
    expect_error([&] { Tensor t = empty({elems}, DType::f32, Device::cuda()); },
                 {"out of memory", std::to_string(bytes)});
  }
  CHECK(cuda_memory_stats().allocated == s0.allocated);
  Tensor ok = full({1000}, 3.0, DType::f32, Device::cuda());  // still usable afterwards
  CHECK(ok.to_vector()[999] == 3.0);
}

TEST_CASE("cuda: Philox on CUDA equals the CPU for the same seed and offset", "[cuda][random][sanitize]") {
  // Uniform draws are bit-identical; normal draws go through log and cos in double, where the
  // device's and glibc's last ulp may differ: f64 within 1e-14, f32 within one f32 ulp.
  struct SeedOffset {
    uint64_t seed, offset;
  };
  const SeedOffset keys[] = {{0, 0}, {1234, 7}, {0xDEADBEEFCAFEull, (uint64_t(1) << 33) + 5}};
  const Shape shapes[] = {{1}, {3}, {7}, {3, 5, 7}, {1001}, {(int64_t(1) << 20) + 3}};
  for (DType dt : {DType::f32, DType::f64}) {
    for (const auto& k : keys) {
      for (const Shape& s : shapes) {
        for (bool normal : {false, true}) {
          INFO(dtype_name(dt) << (normal ? " randn" : " rand") << " seed " << k.seed << " offset " << k.offset
                              << " shape " << shape_str(s));
          Rng a(k.seed, k.offset), b(k.seed, k.offset);
          Tensor c = normal ? randn(s, a, dt) : rand(s, a, dt);
          Tensor d = normal ? randn(s, b, dt, device()) : rand(s, b, dt, device());
          CHECK(a.offset == b.offset);
          CHECK(d.device() == device());
          CHECK(d.shape() == s);
          auto cv = c.to_vector(), dv = d.to_vector();
          REQUIRE(cv.size() == dv.size());
          int64_t differ = 0, beyond = 0;
          double worst = 0;
          for (size_t i = 0; i < cv.size(); ++i) {
            const double diff = std::abs(cv[i] - dv[i]);
            if (diff != 0) ++differ;
            const double allowed = !normal            ? 0.0
                                   : dt == DType::f64 ? 1e-14 * std::max(1.0, std::abs(cv[i]))
                                                      : std::ldexp(std::max(1.0, std::abs(cv[i])), -23);
            if (diff > allowed) ++beyond;
            worst = std::max(worst, diff);
          }
          INFO(differ << " elements differ, " << beyond << " beyond the allowance, worst " << worst);
          CHECK(beyond == 0);
          // and the draw after it continues from the same offset on both
          Tensor c2 = rand({5}, a, dt), d2 = rand({5}, b, dt, device());
          CHECK(c2.to_vector() == d2.to_vector());
        }
      }
    }
  }
}

TEST_CASE("cuda: to_device round trip is exact and differentiable", "[cuda][transfer][sanitize]") {
  Rng g(3);
  for (DType dt : {DType::f32, DType::f64}) {
    INFO(dtype_name(dt));
    Tensor x = randn({3, 5, 7}, g, dt);
    x.set_requires_grad(true);
    Tensor xd = x.to(device());
    CHECK(xd.device() == device());
    CHECK(xd.to(Device::cpu()).to_vector() == x.to_vector());
    Tensor gx = autograd::grad({sum(square(xd))}, {x})[0];  // the gradient comes back to the CPU
    CHECK(gx.device() == Device::cpu());
    CHECK(sgtest::max_rel_error(gx, mul(x.detach(), 2.0)) < (dt == DType::f64 ? 1e-15 : 1e-6));
  }
}

TEST_CASE("cuda: mixing devices is an sg::Error naming the op and both devices", "[cuda][errors][sanitize]") {
  if (!real_cuda("device mixing")) return;
  Rng g(4);
  const Device cu = Device::cuda();
  Tensor a = randn({2, 3}, g), b = randn({2, 3}, g, DType::f32, cu);
  expect_error([&] { add(a, b); }, {"add", "cpu", "cuda:0"});
  expect_error([&] { mul(b, a); }, {"mul", "cpu", "cuda:0"});
  Tensor bt = randn({3, 2}, g, DType::f32, cu);
  expect_error([&] { matmul(a, bt); }, {"matmul", "cpu", "cuda:0"});
  Tensor x = randn({1, 2, 6, 6}, g, DType::f32, cu), w = randn({3, 2, 3, 3}, g);
  expect_error([&] { conv2d(x, w, {1, 1}, {1, 1}); }, {"conv2d", "cpu", "cuda:0"});
  expect_error([&] { upfirdn2d(x, fir_filter(), UpFirDn{}); }, {"upfirdn2d", "cpu", "cuda:0"});
  Tensor styles = randn({1, 2}, g, DType::f32, cu);
  expect_error([&] { modulated_conv2d(x, w, styles); }, {"modulated_conv2d", "cpu", "cuda:0"});
  expect_error([&] { bias_act(x, randn({2}, g)); }, {"bias_act", "cpu", "cuda:0"});
}
