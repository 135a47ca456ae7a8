// The FID Inception-v3 (models/inception.h) against its PyTorch reference with random weights:
// tests/oracle/inception_reference.py (run at build time, like the other fixtures) builds the
// FID network from torch.nn with seeded random weights and batch-norm statistics, converts them
// with scripts/convert_inception.py (the script users run on the real weights), and stores
// inputs and the reference's 2048-d features computed in float64. Our f32 forward must agree to
// 1e-4 (max |diff| / max |ref|). Inputs: two 32x32 images (upsampled to 299) and one 300x320
// image (downsampled, not square): the bilinear resize, both pools (count_include_pad=False
// average, padded max), every block and the layer names are covered.
#include <catch2/catch.hpp>

#include "engine/ops.h"
#include "models/inception.h"
#include "oracle_util.h"

using namespace sg;
using Catch::Matchers::Contains;

TEST_CASE("inception: FID Inception-v3 features match PyTorch (random weights)", "[inception]") {
  const oracle::Fixture io("inception/io");
  const models::FidInception net(std::string(SG_FIXTURE_DIR) + "/inception/inception.safetensors");
  NoGradGuard ng;
  for (const char* key : {"a", "b"}) {
    const Tensor f = net.features(io.input(key, DType::f32, false));
    const oracle::Comparison c =
        oracle::compare(std::string("features of ") + key, f, io[std::string("features_") + key], 1e-4, DType::f32);
    INFO(c.text);
    CHECK(c.ok);
  }
}

TEST_CASE("inception: grayscale is replicated, resize rows are PyTorch's bilinear weights", "[inception]") {
  // Same size: the identity. Upsampling 2 -> 4: src = (o + 0.5) / 2 - 0.5 clamped at 0.
  CHECK(models::bilinear_resize_matrix(3, 3, DType::f64).to_vector() == std::vector<double>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(models::bilinear_resize_matrix(2, 4, DType::f64).to_vector() ==
        std::vector<double>{1, 0, 0.75, 0.25, 0.25, 0.75, 0, 1});
  // Downsampling 4 -> 2: src = 2 o + 0.5.
  CHECK(models::bilinear_resize_matrix(4, 2, DType::f64).to_vector() ==
        std::vector<double>{0.5, 0.5, 0, 0, 0, 0, 0.5, 0.5});
  const Tensor x = from_vector({0, 1, 2, 3, 4, 5}, {1, 1, 2, 3}, DType::f64);
  const Tensor y = models::resize_bilinear(x, 4, 3);  // rows only
  CHECK(y.to_vector() == std::vector<double>{0, 1, 2, 0.75, 1.75, 2.75, 2.25, 3.25, 4.25, 3, 4, 5});
}

TEST_CASE("inception: a file that is not converted FID weights is refused, naming the script", "[inception]") {
  REQUIRE_THROWS_WITH(models::FidInception(oracle::fixture_path("inception/io")),
                      Contains("not an FID Inception weights file") && Contains("convert_inception.py"));
}
