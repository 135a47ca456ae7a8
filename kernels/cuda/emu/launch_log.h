// The CUDA emulator's launch log (plain C++, for tests): the names of the kernels launched
// since the last call, in order, so that a test can check which variant a shape selected
// (tests/cuda/test_cuda_paths.cpp). Only in -DSG_CUDA_EMU=ON builds.
#pragma once
#include <string>
#include <vector>

namespace sgemu {
std::vector<std::string> take_launch_log();
}  // namespace sgemu
