// The FID Inception-v3 (docs/metrics.md): the network FID and KID are defined with —
// TensorFlow's inception-2015-12-05 as pytorch-fid ports it (its InceptionV3 with
// use_fid_inception: the FIDInceptionA / C / E_1 / E_2 blocks, whose average pools leave the
// padding out of the count and whose last pool branch is a max pool) — forward only, built
// from engine ops, returning the 2048 pool3 features.
//
// Weights: the user's pt_inception-2015-12-05-6726825d.pth converted by
// scripts/convert_inception.py (batch norm folded into each conv's weight and bias; names
// "<layer>.weight" and "<layer>.bias" with pytorch-fid's layer names, e.g.
// "Mixed_5b.branch5x5_2"). Nothing is downloaded. Checked against a PyTorch reference with
// random weights: tests/test_inception.cpp.
#pragma once
#include <map>
#include <string>

#include "engine/tensor.h"

namespace sg::models {

class FidInception {
 public:
  static constexpr int64_t kFeatures = 2048;
  static constexpr int64_t kInputSize = 299;
  // Reads a file written by scripts/convert_inception.py: sg::Error naming the file when it is
  // not one (format metadata) or a layer is missing or misshapen.
  explicit FidInception(const std::string& path);

  // images [N, C, H, W], C = 1 (replicated to 3 channels) or 3, values in [-1, 1] (the
  // project's image range; pytorch-fid's [0, 1] input after its 2x - 1), any size: resized to
  // 299 x 299 bilinearly as PyTorch's interpolate (align_corners=False, no antialiasing) ->
  // features [N, 2048]. On the network's device, in the images' dtype (the weights are cast).
  Tensor features(const Tensor& images) const;

  void to(Device d);
  Device device() const { return device_; }

 private:
  struct Conv {
    Tensor w, b;
  };
  Tensor conv(const std::string& name, const Tensor& x, int64_t stride = 1, bool pad = true) const;
  Tensor block_a(const std::string& n, const Tensor& x) const;
  Tensor block_b(const std::string& n, const Tensor& x) const;
  Tensor block_c(const std::string& n, const Tensor& x) const;
  Tensor block_d(const std::string& n, const Tensor& x) const;
  Tensor block_e(const std::string& n, const Tensor& x, bool max_pool) const;

  std::string path_;
  std::map<std::string, Conv> convs_;
  Device device_ = Device::cpu();
};

// [out, in]: the matrix of PyTorch's bilinear interpolate along one axis (align_corners=False,
// no antialiasing): out = R @ in. src = (o + 0.5) * in / out - 0.5, clamped below at 0.
Tensor bilinear_resize_matrix(int64_t in, int64_t out, DType t = DType::f32);
// x [N, C, H, W] -> [N, C, h, w] with those matrices (two matmuls).
Tensor resize_bilinear(const Tensor& x, int64_t h, int64_t w);

}  // namespace sg::models
