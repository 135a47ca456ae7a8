// The FID Inception-v3: see inception.h. Layer names, kernel shapes and the block structure
// follow pytorch-fid's FID network (torchvision's Inception-v3 layers) so that the converted
// weights load by name; each conv layer is conv2d + bias + ReLU (batch norm folded in).
#include "models/inception.h"

#include <algorithm>
#include <cmath>

#include "engine/io/safetensors.h"
#include "engine/ops.h"

namespace sg::models {

namespace {
constexpr const char* kFormat = "stylegrad-fid-inception-v3";  // scripts/convert_inception.py
constexpr size_t kLayers = 94;
}  // namespace

FidInception::FidInception(const std::string& path) : path_(path) {
  std::map<std::string, std::string> meta;
  auto tensors = io::load_safetensors(path, &meta);
  auto it = meta.find("format");
  SG_CHECK(it != meta.end() && it->second == kFormat, "FidInception", "'", path,
           "' is not an FID Inception weights file (metadata format '", it == meta.end() ? "" : it->second,
           "', expected '", kFormat, "'): convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth with ",
           "scripts/convert_inception.py (docs/metrics.md)");
  for (auto& [name, t] : tensors) {
    const bool is_w = name.size() > 7 && name.ends_with(".weight"), is_b = name.size() > 5 && name.ends_with(".bias");
    SG_CHECK(is_w || is_b, "FidInception", "'", path, "': unexpected tensor '", name, "'");
    Conv& c = convs_[name.substr(0, name.rfind('.'))];
    (is_w ? c.w : c.b) = t.to(DType::f32);
  }
  for (const auto& [name, c] : convs_) {
    SG_CHECK(c.w.defined() && c.b.defined(), "FidInception", "'", path, "': layer '", name, "' lacks its ",
             c.w.defined() ? "bias" : "weight");
    SG_CHECK(c.w.dim() == 4 && c.b.dim() == 1 && c.b.size(0) == c.w.size(0), "FidInception", "'", path, "': layer '",
             name, "' has weight ", shape_str(c.w.shape()), " and bias ", shape_str(c.b.shape()));
  }
  SG_CHECK(convs_.size() == kLayers, "FidInception", "'", path, "' has ", convs_.size(), " layers, expected ", kLayers);
}

void FidInception::to(Device d) {
  for (auto& [name, c] : convs_) c.w = c.w.to(d), c.b = c.b.to(d);
  device_ = d;
}

// conv2d + bias + ReLU; pad: "same" padding (kernel / 2 on each axis), else none.
Tensor FidInception::conv(const std::string& name, const Tensor& x, int64_t stride, bool pad) const {
  auto it = convs_.find(name);
  SG_CHECK(it != convs_.end(), "FidInception", "'", path_, "' has no layer '", name, "'");
  const Tensor& w = it->second.w;
  const Tensor wt = w.dtype() == x.dtype() ? w : w.to(x.dtype());
  const Tensor bt = it->second.b.dtype() == x.dtype() ? it->second.b : it->second.b.to(x.dtype());
  const std::array<int64_t, 2> p =
      pad ? std::array<int64_t, 2>{w.size(2) / 2, w.size(3) / 2} : std::array<int64_t, 2>{0, 0};
  return bias_act(conv2d(x, wt, {stride, stride}, p), bt, Act::relu, 0, 1.0);
}

namespace {
// TensorFlow's average pool: 3x3, stride 1, padding 1 not counted.
Tensor avg3(const Tensor& x) { return avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, false); }
}  // namespace

// FIDInceptionA: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1
Tensor FidInception::block_a(const std::string& n, const Tensor& x) const {
  const Tensor a = conv(n + ".branch1x1", x);
  const Tensor b = conv(n + ".branch5x5_2", conv(n + ".branch5x5_1", x));
  const Tensor c = conv(n + ".branch3x3dbl_3", conv(n + ".branch3x3dbl_2", conv(n + ".branch3x3dbl_1", x)));
  const Tensor d = conv(n + ".branch_pool", avg3(x));
  return cat({a, b, c, d}, 1);
}

// InceptionB (Mixed_6a), reduction to 17x17: 3x3 s2 | 1x1 -> 3x3 -> 3x3 s2 | max pool s2
Tensor FidInception::block_b(const std::string& n, const Tensor& x) const {
  const Tensor a = conv(n + ".branch3x3", x, 2, false);
  const Tensor b = conv(n + ".branch3x3dbl_3", conv(n + ".branch3x3dbl_2", conv(n + ".branch3x3dbl_1", x)), 2, false);
  return cat({a, b, max_pool2d(x, {3, 3}, {2, 2})}, 1);
}

// FIDInceptionC: 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 | avg pool -> 1x1
Tensor FidInception::block_c(const std::string& n, const Tensor& x) const {
  const Tensor a = conv(n + ".branch1x1", x);
  const Tensor b = conv(n + ".branch7x7_3", conv(n + ".branch7x7_2", conv(n + ".branch7x7_1", x)));
  Tensor c = conv(n + ".branch7x7dbl_1", x);
  for (int i = 2; i <= 5; ++i) c = conv(n + ".branch7x7dbl_" + std::to_string(i), c);
  const Tensor d = conv(n + ".branch_pool", avg3(x));
  return cat({a, b, c, d}, 1);
}

// InceptionD (Mixed_7a), reduction to 8x8: 1x1 -> 3x3 s2 | 1x1 -> 1x7 -> 7x1 -> 3x3 s2 | max pool s2
Tensor FidInception::block_d(const std::string& n, const Tensor& x) const {
  const Tensor a = conv(n + ".branch3x3_2", conv(n + ".branch3x3_1", x), 2, false);
  Tensor b = conv(n + ".branch7x7x3_3", conv(n + ".branch7x7x3_2", conv(n + ".branch7x7x3_1", x)));
  b = conv(n + ".branch7x7x3_4", b, 2, false);
  return cat({a, b, max_pool2d(x, {3, 3}, {2, 2})}, 1);
}

// FIDInceptionE_1 / E_2: 1x1 | 1x1 -> (1x3, 3x1) | 1x1 -> 3x3 -> (1x3, 3x1) | pool -> 1x1,
// the pool an average (E_1) or, in the FID network's last block, a max (E_2).
Tensor FidInception::block_e(const std::string& n, const Tensor& x, bool max_pool) const {
  const Tensor a = conv(n + ".branch1x1", x);
  const Tensor b1 = conv(n + ".branch3x3_1", x);
  const Tensor b = cat({conv(n + ".branch3x3_2a", b1), conv(n + ".branch3x3_2b", b1)}, 1);
  const Tensor c1 = conv(n + ".branch3x3dbl_2", conv(n + ".branch3x3dbl_1", x));
  const Tensor c = cat({conv(n + ".branch3x3dbl_3a", c1), conv(n + ".branch3x3dbl_3b", c1)}, 1);
  const Tensor p = max_pool ? max_pool2d(x, {3, 3}, {1, 1}, {1, 1}) : avg3(x);
  return cat({a, b, c, conv(n + ".branch_pool", p)}, 1);
}

Tensor FidInception::features(const Tensor& images) const {
  SG_CHECK(images.defined() && images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3), "FidInception",
           "expected images [N, 1 or 3, H, W], got ", images.defined() ? shape_str(images.shape()) : "undefined");
  Tensor x = images.to(device_);
  if (x.size(1) == 1) x = repeat(x, {1, 3, 1, 1});
  if (x.size(2) != kInputSize || x.size(3) != kInputSize) x = resize_bilinear(x, kInputSize, kInputSize);
  x = conv("Conv2d_1a_3x3", x, 2, false);  // 149
  x = conv("Conv2d_2a_3x3", x, 1, false);  // 147
  x = conv("Conv2d_2b_3x3", x);
  x = max_pool2d(x, {3, 3}, {2, 2});  // 73
  x = conv("Conv2d_3b_1x1", x);
  x = conv("Conv2d_4a_3x3", x, 1, false);  // 71
  x = max_pool2d(x, {3, 3}, {2, 2});       // 35
  x = block_a("Mixed_5b", x);
  x = block_a("Mixed_5c", x);
  x = block_a("Mixed_5d", x);
  x = block_b("Mixed_6a", x);  // 17
  for (const char* n : {"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"}) x = block_c(n, x);
  x = block_d("Mixed_7a", x);  // 8
  x = block_e("Mixed_7b", x, false);
  x = block_e("Mixed_7c", x, true);
  return mean(x, {2, 3});  // pool3: [N, 2048]
}

Tensor bilinear_resize_matrix(int64_t in, int64_t out, DType t) {
  SG_CHECK(in >= 1 && out >= 1, "bilinear_resize_matrix", "sizes must be >= 1, got ", in, " -> ", out);
  std::vector<double> r((size_t)(out * in), 0.0);
  const double scale = (double)in / (double)out;
  for (int64_t o = 0; o < out; ++o) {
    const double src = std::max(((double)o + 0.5) * scale - 0.5, 0.0);
    const int64_t i0 = std::min((int64_t)src, in - 1), i1 = std::min(i0 + 1, in - 1);
    const double l1 = src - (double)i0;
    r[(size_t)(o * in + i0)] += 1.0 - l1;
    r[(size_t)(o * in + i1)] += l1;
  }
  return from_vector(r, {out, in}, t);
}

Tensor resize_bilinear(const Tensor& x, int64_t h, int64_t w) {
  SG_CHECK(x.defined() && x.dim() == 4, "resize_bilinear", "expected [N, C, H, W]");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const Tensor rw = bilinear_resize_matrix(W, w, x.dtype()).to(x.device());
  const Tensor rh = bilinear_resize_matrix(H, h, x.dtype()).to(x.device());
  // Along x: [N*C*H, W] @ rw^T -> [N*C, H, w]; then along y on the transposed planes.
  Tensor y = reshape(matmul(reshape(x, {N * C * H, W}), transpose(rw, 0, 1)), {N * C, H, w});
  y = reshape(transpose(y, 1, 2), {N * C * w, H});
  y = reshape(matmul(y, transpose(rh, 0, 1)), {N * C, w, h});
  return reshape(transpose(y, 1, 2), {N, C, h, w});
}

}  // namespace sg::models
