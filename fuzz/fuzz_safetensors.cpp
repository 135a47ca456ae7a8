// libFuzzer target: the safetensors reader (engine/io/safetensors.h) on arbitrary bytes.
// An sg::Error (or another std::exception) is the expected answer to bad input; a crash, a
// sanitizer report, a leak or a timeout is a finding (docs/fuzzing.md).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <string>

#include "engine/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::map<std::string, std::string> metadata;
    const auto tensors = sg::io::load_safetensors_from_memory(data, size, "fuzz-input", &metadata);
    for (const auto& [name, t] : tensors)
      if (name.empty() || !t.defined()) __builtin_trap();  // the reader promises neither
  } catch (const std::exception&) {
  }
  return 0;
}
