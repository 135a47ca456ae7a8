// sg::Tensor: a cheap handle (shared_ptr) to a TensorImpl holding Storage, shape, dtype,
// device and the autograd fields (requires_grad, grad, grad_fn, output_nr).
// Tensors are always contiguous (row-major); reshape shares the storage, every other op
// writes a fresh buffer.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "engine/error.h"

namespace sg {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
std::ostream& operator<<(std::ostream& os, const Shape& s);
int64_t numel_of(const Shape& s);

enum class DType { f32, f64 };
enum class DeviceType { cpu, cuda };
struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::cuda, i}; }
};
const char* dtype_name(DType t);
size_t dtype_size(DType t);
std::string device_name(Device d);
std::ostream& operator<<(std::ostream& os, DType t);
std::ostream& operator<<(std::ostream& os, Device d);

// An owning, 64-byte aligned buffer.
struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  void* host_block = nullptr;  // a CPU storage's malloc block, data's 64-byte aligned start inside it
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

namespace autograd {
struct Node;
}
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t size(int64_t dim) const;  // negative dims count from the end
  int64_t dim() const { return (int64_t)shape().size(); }
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_cpu() const { return device().type == DeviceType::cpu; }

  void* raw_data() const;
  template <class T>
  T* data() const;  // checks the dtype

  // autograd
  bool requires_grad() const;
  Tensor& set_requires_grad(bool r = true);  // leaves only
  bool is_leaf() const;
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // drops .grad
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  int output_nr() const;
  // Accumulates d(this)/d(leaf) into every leaf's .grad. `grad` defaults to ones for a
  // one-element tensor. create_graph records the graph of the gradient.
  void backward(const Tensor& grad = Tensor(), bool create_graph = false) const;
  Tensor detach() const;  // shares the storage, no history

  // conversions and helpers
  double item() const;                    // one element, as double
  std::vector<double> to_vector() const;  // all elements as double (copies to host)
  Tensor to(DType t) const;               // differentiable cast
  Tensor to(Device d) const;
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor cuda() const { return to(Device::cuda()); }
  Tensor clone() const;                  // differentiable copy
  Tensor reshape(const Shape& s) const;  // free; one dim may be -1
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor expand(const Shape& s) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor sum() const;
  Tensor mean() const;
  Tensor square() const;
  Tensor sqrt() const;
  std::string str() const;  // short description: "Tensor[f32 cpu (2, 3)]"

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype = DType::f32;
  Device device;
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<autograd::Node> grad_fn;
  int output_nr = 0;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- factories -------------------------------------------------------------------------
Tensor empty(const Shape& s, DType t = DType::f32, Device d = Device::cpu());
Tensor zeros(const Shape& s, DType t = DType::f32, Device d = Device::cpu());
Tensor ones(const Shape& s, DType t = DType::f32, Device d = Device::cpu());
Tensor full(const Shape& s, double value, DType t = DType::f32, Device d = Device::cpu());
Tensor scalar(double value, DType t = DType::f32, Device d = Device::cpu());  // 0-dim
Tensor from_vector(const std::vector<double>& v, const Shape& s, DType t = DType::f32);
Tensor from_vector_f32(const std::vector<float>& v, const Shape& s);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
// Evenly spaced values 0..n-1 scaled: arange(n) * step + start, handy for tests.
Tensor arange(int64_t n, double start = 0, double step = 1, DType t = DType::f32);

// Dispatch helper: calls f.template operator()<float>() or <double>().
template <class F>
decltype(auto) dispatch_dtype(DType t, F&& f) {
  if (t == DType::f64) return f.template operator()<double>();
  return f.template operator()<float>();
}

}  // namespace sg
