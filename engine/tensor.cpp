#include "engine/tensor.h"

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/ops.h"
#include "kernels/cuda/elementwise.h"

namespace sg {

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}
std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << shape_str(s); }
int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}
const char* dtype_name(DType t) { return t == DType::f32 ? "f32" : "f64"; }
size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }
std::string device_name(Device d) { return d.type == DeviceType::cpu ? "cpu" : "cuda:" + std::to_string(d.index); }
std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }
std::ostream& operator<<(std::ostream& os, Device d) { return os << device_name(d); }

// Host storage comes from malloc. glibc serves a block above its mmap threshold (128 KiB at
// first, raised as such blocks are freed, up to 32 MiB) with fresh pages from mmap and hands
// it back to the kernel when it is freed, and trims the heap's free top: so a training step,
// which frees and reallocates the same activation buffers every minibatch, faults in and
// zeroes every page of them again. In the main job that was 515,000 page faults and 1.3 s of
// system time per kimg (`perf stat -e page-faults`, `/usr/bin/time`); with blocks up to
// 256 MiB kept in the heap and the heap not trimmed, 69,000 faults and 0.25 s, for 17% more
// peak memory (336 -> 394 MB). Set once, before the first host allocation of a tensor.
static void keep_freed_host_memory() {
#if defined(__GLIBC__)
  static const bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)done;
#endif
}

Storage::Storage(size_t n, Device d) : nbytes(n), device(d) {
  if (d.type == DeviceType::cuda) {
    SG_CHECK(d.index == 0, "Storage", "only cuda:0 is supported, got ", device_name(d));
    data = detail::cuda_alloc(n);
    return;
  }
  keep_freed_host_memory();
  // malloc(n + 64) aligned by hand rather than aligned_alloc(64, n): glibc's aligned_alloc asks
  // its heap for n + 64 + a header and gives back the slack, so the block a freed tensor leaves
  // is too small for the next tensor of the same size, and that one takes fresh pages at the
  // heap's top until enough freed blocks have merged (a 4 MiB conv output faulted its pages in
  // again on each of the first 8 calls, 1-2 ms instead of 0.17). malloc's own requests of one
  // size reuse one another's blocks exactly.
  host_block = std::malloc(n + 64);
  if (!host_block) throw Error(str("Storage: out of host memory allocating ", n, " bytes"));
  const auto addr = reinterpret_cast<uintptr_t>(host_block);
  data = reinterpret_cast<void*>((addr + 63) & ~uintptr_t(63));
}
Storage::~Storage() {
  if (device.type == DeviceType::cuda)
    detail::cuda_free(data);
  else
    std::free(host_block);
}

// ---- Tensor accessors -----------------------------------------------------------------
static TensorImpl* need(const std::shared_ptr<TensorImpl>& p) {
  if (!p) throw Error("Tensor: use of an undefined tensor");
  return p.get();
}
const Shape& Tensor::shape() const { return need(impl_)->shape; }
int64_t Tensor::size(int64_t d) const {
  int64_t n = dim();
  int64_t dd = d < 0 ? d + n : d;
  SG_CHECK(dd >= 0 && dd < n, "Tensor::size", "dim ", d, " out of range for shape ", shape_str(shape()));
  return shape()[dd];
}
int64_t Tensor::numel() const { return numel_of(shape()); }
DType Tensor::dtype() const { return need(impl_)->dtype; }
Device Tensor::device() const { return need(impl_)->device; }
void* Tensor::raw_data() const { return need(impl_)->storage->data; }
template <class T>
T* Tensor::data() const {
  constexpr DType want = std::is_same_v<T, double> ? DType::f64 : DType::f32;
  SG_CHECK(dtype() == want, "Tensor::data", "asked for ", dtype_name(want), " but tensor is ", dtype_name(dtype()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;

bool Tensor::requires_grad() const { return need(impl_)->requires_grad; }
Tensor& Tensor::set_requires_grad(bool r) {
  SG_CHECK(is_leaf(), "set_requires_grad", "only leaf tensors can be made to require grad; got a result of ",
           impl_->grad_fn->name());
  impl_->requires_grad = r;
  return *this;
}
bool Tensor::is_leaf() const { return need(impl_)->grad_fn == nullptr; }
Tensor Tensor::grad() const { return need(impl_)->grad; }
void Tensor::set_grad(const Tensor& g) const { need(impl_)->grad = g; }
void Tensor::zero_grad() const { need(impl_)->grad = Tensor(); }
const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const { return need(impl_)->grad_fn; }
int Tensor::output_nr() const { return need(impl_)->output_nr; }

void Tensor::backward(const Tensor& g, bool create_graph) const { autograd::backward({*this}, {g}, create_graph); }

Tensor Tensor::detach() const {
  auto p = std::make_shared<TensorImpl>();
  p->storage = need(impl_)->storage;
  p->shape = impl_->shape;
  p->dtype = impl_->dtype;
  p->device = impl_->device;
  return Tensor(p);
}

double Tensor::item() const {
  SG_CHECK(numel() == 1, "item", "needs a one-element tensor, got shape ", shape_str(shape()));
  return to_vector()[0];
}
std::vector<double> Tensor::to_vector() const {
  Tensor c = is_cpu() ? *this : detach().to(Device::cpu());  // a host copy, outside the graph
  std::vector<double> v((size_t)c.numel());
  if (c.dtype() == DType::f32) {
    const float* p = c.data<float>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  } else {
    std::memcpy(v.data(), c.raw_data(), v.size() * sizeof(double));
  }
  return v;
}
Tensor Tensor::to(DType t) const { return cast(*this, t); }
Tensor Tensor::to(Device d) const { return to_device(*this, d); }
Tensor Tensor::clone() const { return contiguous_copy(*this); }
Tensor Tensor::reshape(const Shape& s) const { return sg::reshape(*this, s); }
Tensor Tensor::permute(const std::vector<int64_t>& d) const { return sg::permute(*this, d); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return sg::transpose(*this, a, b); }
Tensor Tensor::expand(const Shape& s) const { return sg::expand(*this, s); }
Tensor Tensor::unsqueeze(int64_t d) const { return sg::unsqueeze(*this, d); }
Tensor Tensor::squeeze(int64_t d) const { return sg::squeeze(*this, d); }
Tensor Tensor::sum() const { return sg::sum(*this); }
Tensor Tensor::mean() const { return sg::mean(*this); }
Tensor Tensor::square() const { return sg::square(*this); }
Tensor Tensor::sqrt() const { return sg::sqrt(*this); }
std::string Tensor::str() const {
  if (!defined()) return "Tensor[undefined]";
  return sg::str("Tensor[", dtype_name(dtype()), " ", device_name(device()), " ", shape_str(shape()), "]");
}
std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

// ---- factories ----------------------------------------------------------------------------
Tensor empty(const Shape& s, DType t, Device d) {
  for (auto x : s) SG_CHECK(x >= 0, "empty", "negative dimension in shape ", shape_str(s));
  auto p = std::make_shared<TensorImpl>();
  p->storage = std::make_shared<Storage>((size_t)numel_of(s) * dtype_size(t), d);
  p->shape = s;
  p->dtype = t;
  p->device = d;
  return Tensor(p);
}
Tensor full(const Shape& s, double v, DType t, Device d) {
  Tensor r = empty(s, t, d);
  if (d.type == DeviceType::cuda) {
#ifdef SG_HAVE_CUDA
    dispatch_dtype(t, [&]<class T>() { kernels::cuda::fill<T>(r.numel(), r.data<T>(), v); });
#endif
    return r;
  }
  dispatch_dtype(t, [&]<class T>() {
    T* p = r.data<T>();
    for (int64_t i = 0; i < r.numel(); ++i) p[i] = (T)v;
  });
  return r;
}
Tensor zeros(const Shape& s, DType t, Device d) { return full(s, 0.0, t, d); }
Tensor ones(const Shape& s, DType t, Device d) { return full(s, 1.0, t, d); }
Tensor scalar(double v, DType t, Device d) { return full({}, v, t, d); }
Tensor zeros_like(const Tensor& x) { return zeros(x.shape(), x.dtype(), x.device()); }
Tensor ones_like(const Tensor& x) { return ones(x.shape(), x.dtype(), x.device()); }
Tensor from_vector(const std::vector<double>& v, const Shape& s, DType t) {
  SG_CHECK((int64_t)v.size() == numel_of(s), "from_vector", v.size(), " values for shape ", shape_str(s));
  Tensor r = empty(s, t);
  dispatch_dtype(t, [&]<class T>() {
    T* p = r.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = (T)v[i];
  });
  return r;
}
Tensor from_vector_f32(const std::vector<float>& v, const Shape& s) {
  SG_CHECK((int64_t)v.size() == numel_of(s), "from_vector_f32", v.size(), " values for shape ", shape_str(s));
  Tensor r = empty(s, DType::f32);
  std::memcpy(r.raw_data(), v.data(), v.size() * sizeof(float));
  return r;
}
Tensor arange(int64_t n, double start, double step, DType t) {
  std::vector<double> v((size_t)n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + step * (double)i;
  return from_vector(v, {n}, t);
}

}  // namespace sg
