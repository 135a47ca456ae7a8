// Helpers for the tests that train (test_train.cpp, test_tensorboard.cpp): scratch
// directories, a tiny image folder and the options of a tiny run on it.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "train/image_io.h"
#include "train/training_loop.h"

namespace sg::testing {

// An empty directory <tmp>/<prefix><name>_<pid> (removed first if it exists).
inline std::filesystem::path scratch_dir(const std::string& prefix, const std::string& name) {
  std::filesystem::path p = std::filesystem::temp_directory_path() / (prefix + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

// The whole file ("" when it cannot be read).
inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// 16 grayscale 8x8 PNGs with some structure, plus one corrupt file.
inline std::filesystem::path make_image_folder(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  Rng rng(11);
  for (int i = 0; i < 16; ++i) {
    auto v = rand({64}, rng, DType::f64).to_vector();
    std::vector<uint8_t> px(64);
    for (int j = 0; j < 64; ++j) px[j] = (uint8_t)(((j % 8) + (j / 8) + i) % 8 * 28 + v[j] * 30);
    data::write_png((dir / ("img" + std::to_string(i) + ".png")).string(), px.data(), 8, 8, 1);
  }
  std::ofstream(dir / "broken.png") << "this is not a png";
  return dir;
}

// `small` at 8x8, one channel, batch 4, a tick every 16 images, a snapshot only at the end.
inline train::TrainOptions tiny(const std::filesystem::path& data, const std::filesystem::path& out, double kimg) {
  train::TrainOptions o;
  o.data = data.string();
  o.outdir = out.string();
  o.cfg = "small";
  o.resolution = 8;
  o.channels = 1;
  o.batch = 4;
  o.kimg = kimg;
  o.tick_kimg = 0.016;
  o.snap = 0;
  o.seed = 5;
  o.quiet = true;
  return o;
}

}  // namespace sg::testing
