// libFuzzer target: image decoding (train/image_io.h: decode_image, PNG through libpng and
// JPEG through libjpeg-turbo) on arbitrary bytes, then fit_image on what decodes, as an
// image-folder dataset does. An sg::Error (or another std::exception) is the expected answer
// to bad input; a crash, a sanitizer report, a leak or a timeout is a finding
// (docs/fuzzing.md).
#include <cstddef>
#include <cstdint>
#include <exception>

#include "train/image_io.h"

namespace {
// 4 megapixels instead of 100: the same checks, and each input stays fast (a header can
// claim the largest size allowed with a few hundred bytes).
constexpr int64_t kFuzzMaxPixels = int64_t(1) << 22;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sg::data::Image img = sg::data::decode_image(data, size, "fuzz-input", kFuzzMaxPixels);
    if (img.w <= 0 || img.h <= 0 || img.channels < 1 || img.channels > 4 ||
        img.pixels.size() != (size_t)img.w * img.h * img.channels)
      __builtin_trap();
    (void)sg::data::fit_image(img, 8, img.channels >= 3 ? 3 : 1);
  } catch (const std::exception&) {
  }
  return 0;
}
