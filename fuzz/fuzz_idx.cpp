// libFuzzer target: the idx (MNIST) reader (train/idx_dataset.h) on arbitrary bytes, plain
// or gzip (told by the magic bytes, so the fuzzer reaches both). An sg::Error (or another
// std::exception) is the expected answer to bad input; a crash, a sanitizer report, a leak or
// a timeout is a finding (docs/fuzzing.md).
#include <cstddef>
#include <cstdint>
#include <exception>

#include "train/idx_dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const sg::data::IdxImages r = sg::data::read_idx_images_from_memory(data, size, "fuzz-input");
    if (r.pixels.size() != (size_t)(r.count * r.rows * r.cols)) __builtin_trap();
  } catch (const std::exception&) {
  }
  return 0;
}
