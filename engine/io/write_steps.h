// Crash-consistency test hook for durable file writes.
//
// Every step of an atomic file write (open the .tmp file, write, fsync, close, rename into
// place, fsync the directory) calls write_step() after it has happened: save_safetensors
// (engine/io/safetensors.cpp) and write_file_atomic (train/run_dir.cpp). Two environment
// variables, read once per process, turn it into a fault injector:
//   SG_WRITE_STEP_TRACE=1  prints "sg-write-step <n> <what> <path>" on stderr for each step;
//   SG_WRITE_STEP_KILL=<n> ends the process right after step n with _exit(86): no destructor,
//                          no buffer flush, no cleanup, as kill -9 at that point would.
// tests/test_train.cpp ("a kill at any step of a snapshot write ...") traces one run, then
// kills fresh runs at each step of one snapshot and checks that --resume is exact.
// Without the variables a step costs one relaxed atomic load.
#pragma once
#include <string>

namespace sg::io {

void write_step(const char* what, const std::string& path);

}  // namespace sg::io
