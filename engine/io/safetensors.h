// safetensors: the checkpoint format that Python's safetensors and PyTorch read.
//
// Layout: an 8-byte little-endian header length N, then N bytes of JSON
//   {"__metadata__": {"key": "value", ...},
//    "name": {"dtype": "F32" | "F64", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8, then the raw little-endian tensor data; offsets are
// relative to the start of the data. Tensors lie in the file in the order they were given.
//
// Writes are atomic: the file goes to path + ".tmp", is flushed and fsync'ed, then renamed
// over path, so a crash never leaves a half-written checkpoint. Every problem (missing file,
// truncation, bad header length, bad JSON, unsupported dtype such as F16 / BF16, offsets out
// of range or overlapping, duplicate names) throws sg::Error naming the file.
// The JSON reader / writer is our own (engine/io/safetensors.cpp): no dependencies.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace sg::io {

// Writes tensors (CUDA tensors are copied to the CPU first) and string metadata. Names must
// be unique, non-empty and not "__metadata__".
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor (CPU, requires_grad off) in file order; fills *metadata when given.
std::vector<std::pair<std::string, Tensor>> load_safetensors(const std::string& path,
                                                             std::map<std::string, std::string>* metadata = nullptr);

// The same as load_safetensors on a file's bytes held in memory (the fuzz target
// fuzz/fuzz_safetensors.cpp uses it); `name` stands for the path in messages.
std::vector<std::pair<std::string, Tensor>> load_safetensors_from_memory(
    const void* data, size_t size, const std::string& name, std::map<std::string, std::string>* metadata = nullptr);

// Only the string metadata, read from the header (the tensor data is not read).
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

// The same as load_safetensors, keyed by name.
std::map<std::string, Tensor> load_safetensors_map(const std::string& path);

}  // namespace sg::io
