// JSON string escaping shared by the safetensors header writer and the run logs.
#pragma once
#include <string>

namespace sg::io {

// The JSON escape of s, without the surrounding quotes (UTF-8 passes through unchanged).
std::string json_escape(const std::string& s);

}  // namespace sg::io
