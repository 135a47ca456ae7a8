#include "train/dataset.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "engine/error.h"
#include "train/idx_dataset.h"
#include "train/image_io.h"

namespace fs = std::filesystem;

namespace sg::data {

Dataset::~Dataset() = default;

void Dataset::check_index(int64_t i) const {
  SG_CHECK(i >= 0 && i < size(), "Dataset::get", "index ", i, " out of range for ", size(), " images (", description_,
           ")");
}

std::string dataset_name(const std::string& path) {
  const fs::path dp = fs::absolute(path).lexically_normal();
  std::string stem = dp.filename().string();
  if (stem.empty()) stem = dp.parent_path().filename().string();
  if (stem.rfind("train-", 0) == 0 || stem.rfind("t10k-", 0) == 0 || stem.rfind("data_batch", 0) == 0)
    stem = dp.parent_path().filename().string();
  return fs::path(stem).stem().stem().string();
}

void check_dataset_shape(const std::string& path, int64_t resolution, int64_t channels) {
  const bool pow2 = resolution >= 8 && resolution <= 1024 && (resolution & (resolution - 1)) == 0;
  SG_CHECK(pow2, "open_dataset", "resolution ", resolution, " for '", path, "' is not a power of two in 8..1024");
  SG_CHECK(channels == 1 || channels == 3, "open_dataset", "channels must be 1 or 3 for '", path, "', got ", channels);
}

namespace {

// uint8 -> [-1, 1]: v / 127.5 - 1, computed by division so that 0 -> -1 and 255 -> 1 exactly
// (multiplying by 1 / 127.5f overshoots 1 by an ulp).
struct ByteToUnit {
  float v[256];
  ByteToUnit() {
    for (int i = 0; i < 256; ++i) v[i] = (float)i / 127.5f - 1.0f;
  }
};
const ByteToUnit kUnit;

// HWC uint8 (resolution x resolution, `channels`) -> CHW floats in [-1, 1].
void hwc_to_float(const uint8_t* px, int64_t res, int64_t channels, float* out) {
  const int64_t plane = res * res;
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < plane; ++i) out[c * plane + i] = kUnit.v[px[i * channels + c]];
}

// Gray plane (res x res) -> `channels` identical CHW planes.
void gray_to_float(const uint8_t* px, int64_t res, int64_t channels, float* out) {
  const int64_t plane = res * res;
  for (int64_t i = 0; i < plane; ++i) out[i] = kUnit.v[px[i]];
  for (int64_t c = 1; c < channels; ++c) std::copy(out, out + plane, out + c * plane);
}

// ---- idx3 (MNIST / Fashion-MNIST) ----------------------------------------------------------
class IdxDataset final : public Dataset {
 public:
  IdxDataset(const std::string& path, int64_t res, int64_t ch) : Dataset(res, ch) {
    images_ = read_idx_images(path);
    SG_CHECK(images_.count > 0, "open_dataset", "'", path, "' holds no images");
    pad_ = res == 32 && images_.rows == 28 && images_.cols == 28;
    description_ = str("idx '", path, "' (", images_.count, " images ", images_.rows, "x", images_.cols,
                       pad_ ? ", padded to " : ", fitted to ", res, "x", res, "x", ch, ")");
  }
  int64_t size() const override { return images_.count; }
  void get(int64_t i, float* out) const override {
    check_index(i);
    const int64_t rows = images_.rows, cols = images_.cols, res = resolution_;
    const uint8_t* src = &images_.pixels[(size_t)(i * rows * cols)];
    std::vector<uint8_t> plane((size_t)(res * res), 0);  // 0 = black = -1
    if (pad_ || (rows == res && cols == res)) {
      const int64_t y0 = (res - rows) / 2, x0 = (res - cols) / 2;
      for (int64_t y = 0; y < rows; ++y)
        std::copy(src + y * cols, src + (y + 1) * cols, &plane[(size_t)((y0 + y) * res + x0)]);
    } else {
      Image img;
      img.w = (int)cols, img.h = (int)rows, img.channels = 1;
      img.pixels.assign(src, src + rows * cols);
      plane = fit_image(img, (int)res, 1).pixels;
    }
    gray_to_float(plane.data(), res, channels_, out);
  }

 private:
  IdxImages images_;
  bool pad_ = false;
};

// ---- CIFAR-10 binary ------------------------------------------------------------------------
constexpr int64_t kCifarRecord = 1 + 3 * 32 * 32;

class CifarDataset final : public Dataset {
 public:
  CifarDataset(const std::string& path, const std::vector<std::string>& files, int64_t res, int64_t ch)
      : Dataset(res, ch) {
    for (const auto& f : files) {
      std::error_code ec;
      const auto bytes = fs::file_size(f, ec);
      SG_CHECK(!ec, "open_dataset", "cannot read CIFAR-10 batch '", f, "': ", ec.message());
      SG_CHECK(bytes > 0 && bytes % kCifarRecord == 0, "open_dataset", "'", f, "' is not a CIFAR-10 binary batch (",
               bytes, " bytes, not a multiple of ", kCifarRecord, ")");
      std::ifstream in(f, std::ios::binary);
      SG_CHECK(in, "open_dataset", "cannot open CIFAR-10 batch '", f, "'");
      const int64_t n = (int64_t)bytes / kCifarRecord;
      std::vector<char> buf((size_t)bytes);
      in.read(buf.data(), (std::streamsize)bytes);
      SG_CHECK(in.gcount() == (std::streamsize)bytes, "open_dataset", "'", f, "' is truncated");
      const size_t old = pixels_.size();
      pixels_.resize(old + (size_t)(n * 3072));
      for (int64_t r = 0; r < n; ++r)
        std::copy(buf.begin() + r * kCifarRecord + 1, buf.begin() + (r + 1) * kCifarRecord,
                  (char*)&pixels_[old + (size_t)(r * 3072)]);
      count_ += n;
    }
    SG_CHECK(count_ > 0, "open_dataset", "'", path, "' holds no CIFAR-10 images");
    description_ =
        str("CIFAR-10 binary '", path, "' (", files.size(), " file", files.size() == 1 ? "" : "s", ", ", count_,
            " images 32x32x3, ", res == 32 ? "as is" : "fitted", " to ", res, "x", res, "x", ch, ")");
  }
  int64_t size() const override { return count_; }
  void get(int64_t i, float* out) const override {
    check_index(i);
    const uint8_t* chw = &pixels_[(size_t)(i * 3072)];
    if (resolution_ == 32 && channels_ == 3) {
      for (int64_t k = 0; k < 3072; ++k) out[k] = kUnit.v[chw[k]];
      return;
    }
    Image img;
    img.w = img.h = 32, img.channels = 3;
    img.pixels.resize(3072);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < 1024; ++p) img.pixels[(size_t)(p * 3 + c)] = chw[c * 1024 + p];
    const Image fitted = fit_image(img, (int)resolution_, (int)channels_);
    hwc_to_float(fitted.pixels.data(), resolution_, channels_, out);
  }

 private:
  std::vector<uint8_t> pixels_;  // count * 3072, CHW per image
  int64_t count_ = 0;
};

// ---- image folder ---------------------------------------------------------------------------
bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  for (auto& c : ext) c = (char)std::tolower((unsigned char)c);
  static const std::set<std::string> kExt = {".png", ".jpg", ".jpeg"};  // what image_io decodes
  return kExt.count(ext) > 0;
}

class ImageFolderDataset final : public Dataset {
 public:
  ImageFolderDataset(const std::string& root, int64_t res, int64_t ch, int64_t max_cache_bytes) : Dataset(res, ch) {
    std::vector<std::string> files;
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
    SG_CHECK(!ec, "open_dataset", "cannot list image folder '", root, "': ", ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      const fs::path& p = it->path();
      if (p.filename().string().starts_with(".")) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file(ec) || !has_image_extension(p)) continue;
      files.push_back(p.string());
    }
    SG_CHECK(!ec, "open_dataset", "error while listing image folder '", root, "': ", ec.message());
    std::sort(files.begin(), files.end());

    const int64_t per_image = res * res * ch;
    cached_ = !files.empty() && (int64_t)files.size() <= max_cache_bytes / per_image;
    if (cached_) {
      // Decode and fit everything now, in parallel; report failures in path order.
      if (files.size() >= 5000)
        std::fprintf(stderr, "open_dataset: decoding %zu images in '%s'\n", files.size(), root.c_str());
      std::vector<std::vector<uint8_t>> fitted(files.size());
      std::vector<std::string> errors(files.size());
      std::atomic<size_t> next{0};
      auto worker = [&] {
        for (size_t k; (k = next.fetch_add(1)) < files.size();) {
          try {
            fitted[k] = fit_image(load_image(files[k]), (int)res, (int)ch).pixels;
          } catch (const std::exception& e) {
            errors[k] = e.what();
          }
        }
      };
      const size_t nthreads =
          std::clamp<size_t>(std::thread::hardware_concurrency(), 1, std::min<size_t>(16, files.size()));
      std::vector<std::thread> threads;
      for (size_t t = 1; t < nthreads; ++t) threads.emplace_back(worker);
      worker();
      for (auto& t : threads) t.join();
      for (size_t k = 0; k < files.size(); ++k) {
        if (!errors[k].empty()) {
          warn_skip(files[k], errors[k]);
          continue;
        }
        files_.push_back(files[k]);
        cache_.insert(cache_.end(), fitted[k].begin(), fitted[k].end());
        std::vector<uint8_t>().swap(fitted[k]);
      }
    } else {
      for (const auto& f : files) {
        int w, h, c;
        std::string why;
        if (probe_image(f, &w, &h, &c, &why))
          files_.push_back(f);
        else
          warn_skip(f, why);
      }
    }
    SG_CHECK(!files_.empty(), "open_dataset", "image folder '", root, "' holds no readable images (", files.size(),
             " image files found, ", skipped_.load(), " skipped)");
    description_ = str("image folder '", root, "' (", files_.size(), " images, ", skipped_.load(), " skipped, ",
                       cached_ ? "decoded at open" : "decoded on demand", ", fitted to ", res, "x", res, "x", ch, ")");
  }

  int64_t size() const override { return (int64_t)files_.size(); }

  void get(int64_t i, float* out) const override {
    check_index(i);
    if (cached_) {
      hwc_to_float(&cache_[(size_t)(i * image_numel())], resolution_, channels_, out);
      return;
    }
    // Lazy: on failure, skip (once per file, with a warning) and use the next index.
    const int64_t n = size();
    for (int64_t k = 0; k < n; ++k) {
      const int64_t j = (i + k) % n;
      {
        std::lock_guard<std::mutex> lock(bad_mu_);
        if (bad_.count(j)) continue;
      }
      try {
        const Image img = fit_image(load_image(files_[(size_t)j]), (int)resolution_, (int)channels_);
        hwc_to_float(img.pixels.data(), resolution_, channels_, out);
        return;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(bad_mu_);
        if (bad_.insert(j).second) warn_skip(files_[(size_t)j], e.what());
      }
    }
    throw Error(str("Dataset::get: no image in ", description_, " can be decoded any more"));
  }

 private:
  void warn_skip(const std::string& file, const std::string& why) const {
    skipped_.fetch_add(1);
    std::fprintf(stderr, "warning: skipping '%s': %s\n", file.c_str(), why.c_str());
  }

  std::vector<std::string> files_;
  bool cached_ = false;
  std::vector<uint8_t> cache_;  // size * R * R * C, HWC per image
  mutable std::mutex bad_mu_;
  mutable std::set<int64_t> bad_;
};

std::vector<std::string> cifar_batches_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.starts_with("data_batch_") && n.ends_with(".bin") && e.is_regular_file(ec)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::unique_ptr<Dataset> open_dataset(const std::string& path, int64_t resolution, int64_t channels,
                                      int64_t max_cache_bytes) {
  check_dataset_shape(path, resolution, channels);
  std::error_code ec;
  const auto st = fs::status(path, ec);
  SG_CHECK(!path.empty() && fs::exists(st), "open_dataset", "dataset path '", path, "' does not exist");
  if (fs::is_directory(st)) {
    auto batches = cifar_batches_in(path);
    if (batches.empty() && fs::is_directory(fs::path(path) / "cifar-10-batches-bin", ec))
      batches = cifar_batches_in(fs::path(path) / "cifar-10-batches-bin");
    if (!batches.empty()) return std::make_unique<CifarDataset>(path, batches, resolution, channels);
    return std::make_unique<ImageFolderDataset>(path, resolution, channels, max_cache_bytes);
  }
  if (fs::path(path).extension() == ".bin")
    return std::make_unique<CifarDataset>(path, std::vector<std::string>{path}, resolution, channels);
  try {
    return std::make_unique<IdxDataset>(path, resolution, channels);
  } catch (const Error& e) {
    throw Error(str("open_dataset: '", path,
                    "' is not a dataset (expected an idx3 file, .gz or plain; a CIFAR-10 .bin batch; or a "
                    "directory of images): ",
                    e.what()));
  }
}

}  // namespace sg::data
