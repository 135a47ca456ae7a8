// libFuzzer target: the snapshot and training-state metadata checks of train/snapshot.h
// (snapshot_config, snapshot_nimg, parse_training_state_metadata) and state_path_for, which
// --resume runs on every network-snapshot-* file it finds. The input is read as a file name
// (the first line) and then "key=value" lines, the string map a safetensors header's
// __metadata__ holds (fuzz_safetensors covers the header parsing itself). An sg::Error is the
// expected answer to bad values; a crash, a sanitizer report, a leak or a timeout is a finding
// (docs/fuzzing.md).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <string>

#include "train/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  size_t pos = in.find('\n');
  const std::string file = in.substr(0, pos);
  std::map<std::string, std::string> meta;
  while (pos != std::string::npos && pos < in.size()) {
    const size_t next = in.find('\n', pos + 1);
    const std::string line = in.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) meta[line.substr(0, eq)] = line.substr(eq + 1);
    pos = next;
  }
  try {
    (void)sg::train::state_path_for(file);
  } catch (const std::exception&) {
  }
  try {
    const sg::models::Config c = sg::train::snapshot_config(meta, file);
    if (c.resolution < 8 || c.resolution > 1024 || (c.img_channels != 1 && c.img_channels != 3)) __builtin_trap();
  } catch (const std::exception&) {
  }
  try {
    if (sg::train::snapshot_nimg(meta, file) < 0) __builtin_trap();
  } catch (const std::exception&) {
  }
  try {
    const sg::train::TrainingStateMeta s = sg::train::parse_training_state_metadata(meta, file);
    if (s.cur_nimg < 0 || s.batch < 1 || s.batch > 4096 || s.loader_position < 0) __builtin_trap();
  } catch (const std::exception&) {
  }
  return 0;
}
