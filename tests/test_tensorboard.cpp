// TensorBoard event files (train/tensorboard.h): CRC32C, the TFRecord framing and the Event
// encoding read back in C++, then by the tensorboard Python package (EventAccumulator, as
// TensorBoard reads a log directory), from the writer alone and from short training runs.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "train/image_io.h"
#include "train/snapshot.h"
#include "train/tensorboard.h"
#include "train/training_loop.h"
#include "train_util.h"

using namespace sg;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path scratch(const std::string& name) { return testing::scratch_dir("sg_test_tb_", name); }
using testing::make_image_folder;
using testing::read_all;

// ---- a minimal protobuf reader: the fields of one message, in order ------------------------
struct Field {
  uint32_t num = 0, wire = 0;
  uint64_t bits = 0;  // varint, fixed64 or fixed32
  std::string bytes;  // length-delimited
};

std::vector<Field> parse(const std::string& s) {
  std::vector<Field> out;
  size_t at = 0;
  auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      REQUIRE(at < s.size());
      REQUIRE(shift < 64);
      const uint8_t b = (uint8_t)s[at++];
      v |= (uint64_t)(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  auto fixed = [&](int n) {
    REQUIRE(at + n <= s.size());
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= (uint64_t)(uint8_t)s[at + i] << (8 * i);
    at += n;
    return v;
  };
  while (at < s.size()) {
    Field f;
    const uint64_t key = varint();
    f.num = (uint32_t)(key >> 3);
    f.wire = (uint32_t)(key & 7);
    if (f.wire == 0) {
      f.bits = varint();
    } else if (f.wire == 1) {
      f.bits = fixed(8);
    } else if (f.wire == 5) {
      f.bits = fixed(4);
    } else {
      REQUIRE(f.wire == 2);
      const uint64_t n = varint();
      REQUIRE(n <= s.size() - at);
      f.bytes = s.substr(at, n);
      at += n;
    }
    out.push_back(f);
  }
  return out;
}

double as_double(const Field& f) {
  REQUIRE(f.wire == 1);
  double d;
  std::memcpy(&d, &f.bits, 8);
  return d;
}

float as_float(const Field& f) {
  REQUIRE(f.wire == 5);
  const uint32_t b = (uint32_t)f.bits;
  float v;
  std::memcpy(&v, &b, 4);
  return v;
}

// A decoded Event: wall_time, step, file_version, and the summary's values.
struct Value {
  std::string tag;
  bool has_simple = false, has_image = false;
  float simple = 0;
  int64_t height = 0, width = 0, colorspace = 0;
  std::string png;
};
struct Event {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<Value> values;
};

Event decode_event(const std::string& data) {
  Event e;
  for (const Field& f : parse(data)) {
    if (f.num == 1) e.wall_time = as_double(f);
    if (f.num == 2) e.step = (int64_t)f.bits;
    if (f.num == 3) e.file_version = f.bytes;
    if (f.num != 5) continue;
    for (const Field& sv : parse(f.bytes)) {
      REQUIRE(sv.num == 1);  // Summary.value
      Value v;
      for (const Field& vf : parse(sv.bytes)) {
        if (vf.num == 1) v.tag = vf.bytes;
        if (vf.num == 2) v.has_simple = true, v.simple = as_float(vf);
        if (vf.num != 4) continue;
        v.has_image = true;
        for (const Field& im : parse(vf.bytes)) {
          if (im.num == 1) v.height = (int64_t)im.bits;
          if (im.num == 2) v.width = (int64_t)im.bits;
          if (im.num == 3) v.colorspace = (int64_t)im.bits;
          if (im.num == 4) v.png = im.bytes;
        }
      }
      e.values.push_back(v);
    }
  }
  return e;
}

std::vector<fs::path> events_files(const fs::path& dir) {
  std::vector<fs::path> r;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find("tfevents") != std::string::npos) r.push_back(e.path());
  std::sort(r.begin(), r.end());
  return r;
}

std::vector<Event> read_events(const fs::path& file) {
  std::vector<Event> r;
  for (const std::string& rec : tensorboard::read_records(file.string())) r.push_back(decode_event(rec));
  return r;
}

data::Image test_image(int w, int h, int channels) {
  data::Image img{w, h, channels, std::vector<uint8_t>((size_t)w * h * channels)};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = (uint8_t)(i * 37 % 251);
  return img;
}

// What the tensorboard package reads from `logdir` (tests/oracle/read_tfevents.py).
struct TbRead {
  int files = 0, records = 0;
  std::string file_version;
  struct Scalar {
    int64_t step;
    double value, wall_time;
  };
  std::map<std::string, std::vector<Scalar>> scalars;
  struct Img {
    int64_t step, width, height, nbytes;
  };
  std::map<std::string, std::vector<Img>> images;
};

TbRead read_with_tensorboard(const fs::path& logdir, const fs::path& out) {
  fs::create_directories(out);
  const fs::path txt = out / "read.txt";
  const std::string cmd = std::string(SG_TB_PYTHON) + " " + SG_SOURCE_DIR + "/tests/oracle/read_tfevents.py " +
                          logdir.string() + " " + out.string() + " > " + txt.string() + " 2>&1";
  const int rc = std::system(cmd.c_str());
  INFO("SG_TB_PYTHON = " << SG_TB_PYTHON << " (scripts/install-deps.sh --test installs tensorboard into it)");
  INFO(read_all(txt));
  REQUIRE(rc == 0);
  TbRead r;
  std::istringstream in(read_all(txt));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string kind;
    l >> kind;
    if (kind == "files") l >> r.files;
    if (kind == "records") {
      std::string name;
      int n = 0;
      l >> name >> n;
      r.records += n;
    }
    if (kind == "file_version") l >> r.file_version;
    if (kind == "scalar") {
      std::string tag;
      TbRead::Scalar s{};
      l >> tag >> s.step >> s.value >> s.wall_time;
      r.scalars[tag].push_back(s);
    }
    if (kind == "image") {
      std::string tag;
      TbRead::Img i{};
      l >> tag >> i.step >> i.width >> i.height >> i.nbytes;
      r.images[tag].push_back(i);
    }
  }
  return r;
}

// log.jsonl's records: each line's numbers ({"k": v, ...}; null for non-finite).
std::vector<std::map<std::string, double>> read_log(const fs::path& p) {
  std::vector<std::map<std::string, double>> r;
  std::istringstream in(read_all(p));
  std::string line;
  const std::regex kv("\"([^\"]+)\": (null|[-+0-9.eE]+)");
  while (std::getline(in, line)) {
    std::map<std::string, double> rec;
    for (std::sregex_iterator it(line.begin(), line.end(), kv), end; it != end; ++it)
      rec[(*it)[1]] = (*it)[2] == "null" ? NAN : std::stod((*it)[2]);
    r.push_back(rec);
  }
  return r;
}

// A tiny run with a sample grid at every tick.
train::TrainOptions tiny(const fs::path& data, const fs::path& out, double kimg) {
  train::TrainOptions o = testing::tiny(data, out, kimg);
  o.snap = 1;
  return o;
}

}  // namespace

TEST_CASE("tensorboard: CRC32C and its TFRecord mask match the known vectors", "[tensorboard]") {
  auto crc = [](const std::string& s) { return tensorboard::crc32c(s.data(), s.size()); };
  CHECK(crc("123456789") == 0xE3069283u);
  CHECK(crc("") == 0u);
  // RFC 3720 (iSCSI) B.4: 32 zeros, 32 x 0xff, 0..31, 31..0.
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) ascending.push_back((char)i), descending.push_back((char)(31 - i));
  CHECK(crc(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc(std::string(32, '\xff')) == 0x62A8AB43u);
  CHECK(crc(ascending) == 0x46DD794Eu);
  CHECK(crc(descending) == 0x113FDB5Cu);
  // Masked, as TensorBoard's own masked_crc32c computes them.
  CHECK(tensorboard::masked_crc32c("123456789", 9) == 0xC78AB0E5u);
  const uint8_t len24[8] = {24, 0, 0, 0, 0, 0, 0, 0};
  CHECK(tensorboard::masked_crc32c(len24, 8) == 0x224B7FA3u);
}

TEST_CASE("tensorboard: scalars and an image are framed, encoded and read back in C++", "[tensorboard]") {
  const fs::path dir = scratch("writer");
  const data::Image img = test_image(5, 3, 3);
  const double before = (double)std::time(nullptr);
  std::string path;
  {
    tensorboard::EventWriter w(dir.string());
    path = w.path();
    w.add_scalars({{"loss/G", 0.625}, {"kimg", 0.016}, {"big", 1e30}, {"neg", -3.25}}, 16, 1.5);
    w.add_image("fakes", img, 16, 2.0);
    w.add_scalars({{"loss/G", 0.5}}, 1LL << 40, 3.0);  // steps above 2^32 stay exact
    // Flushed when written: a reader sees every record before the writer is closed.
    CHECK(tensorboard::read_records(path).size() == 4);
    w.close();
  }
  // The file name TensorBoard's EventFileWriter gives: tfevents.<secs>.<host>.<pid>.<n>.
  const std::string name = fs::path(path).filename().string();
  CHECK(fs::path(path).parent_path() == dir);
  CHECK(std::regex_match(name, std::regex("events\\.out\\.tfevents\\.[0-9]{10}\\..+\\.[0-9]+\\.[0-9]+")));
  CHECK(name.find("." + std::to_string(::getpid()) + ".") != std::string::npos);

  const std::vector<Event> ev = read_events(path);
  REQUIRE(ev.size() == 4);
  CHECK(ev[0].file_version == "brain.Event:2");
  CHECK(ev[0].wall_time >= before);
  CHECK(ev[0].wall_time < before + 600);
  CHECK(ev[0].values.empty());

  CHECK(ev[1].step == 16);
  CHECK(ev[1].wall_time == 1.5);
  REQUIRE(ev[1].values.size() == 4);
  CHECK(ev[1].values[0].tag == "loss/G");
  CHECK(ev[1].values[0].simple == 0.625f);
  CHECK(ev[1].values[1].tag == "kimg");
  CHECK(ev[1].values[1].simple == 0.016f);
  CHECK(ev[1].values[2].simple == 1e30f);
  CHECK(ev[1].values[3].simple == -3.25f);
  for (const Value& v : ev[1].values) CHECK((v.has_simple && !v.has_image));

  CHECK(ev[2].step == 16);
  CHECK(ev[2].wall_time == 2.0);
  REQUIRE(ev[2].values.size() == 1);
  const Value& iv = ev[2].values[0];
  CHECK(iv.tag == "fakes");
  CHECK(iv.has_image);
  CHECK(iv.height == 3);
  CHECK(iv.width == 5);
  CHECK(iv.colorspace == 3);
  const std::vector<uint8_t> png = data::encode_png(img);
  CHECK(iv.png == std::string(png.begin(), png.end()));
  const data::Image back = data::decode_image((const uint8_t*)iv.png.data(), iv.png.size(), "event image");
  CHECK((back.w == 5 && back.h == 3 && back.channels == 3 && back.pixels == img.pixels));

  CHECK(ev[3].step == (1LL << 40));

  // Two writers in one directory and one second: two files, neither overwritten.
  {
    tensorboard::EventWriter a(dir.string()), b(dir.string());
    CHECK(a.path() != b.path());
  }
  CHECK(events_files(dir).size() == 3);
  fs::remove_all(dir);
}

TEST_CASE("tensorboard: corrupt or cut-short events files are errors naming the file and the offset",
          "[tensorboard][errors]") {
  const fs::path dir = scratch("corrupt");
  std::string path;
  {
    tensorboard::EventWriter w(dir.string());
    w.add_scalars({{"a", 1.0}}, 1, 1.0);
    path = w.path();
  }
  const std::string good = read_all(path);
  const size_t second = tensorboard::tfrecord(tensorboard::file_version_event(0)).size();  // same length
  auto rewrite = [&](const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; };
  std::string bad = good;
  bad[second + 14] ^= 1;  // a data byte of the second record
  rewrite(bad);
  CHECK_THROWS_WITH(tensorboard::read_records(path),
                    Contains(path) && Contains("data CRC") && Contains("at byte " + std::to_string(second)));
  bad = good;
  bad[second + 2] ^= 1;  // its length
  rewrite(bad);
  CHECK_THROWS_WITH(tensorboard::read_records(path), Contains(path) && Contains("length CRC"));
  rewrite(good.substr(0, good.size() - 3));
  CHECK_THROWS_WITH(tensorboard::read_records(path), Contains(path) && Contains("cut short"));
  rewrite(good.substr(0, second + 5));
  CHECK_THROWS_WITH(tensorboard::read_records(path), Contains(path) && Contains("cut short"));
  rewrite(good);
  CHECK(tensorboard::read_records(path).size() == 2);
  // A directory that does not exist: the error names the file it could not create.
  CHECK_THROWS_WITH(tensorboard::EventWriter((dir / "missing").string()),
                    Contains("cannot create the events file") && Contains((dir / "missing").string()));
  fs::remove_all(dir);
}

TEST_CASE("tensorboard: the tensorboard package reads our scalars and images", "[tensorboard][python]") {
  const fs::path dir = scratch("python");
  const data::Image rgb = test_image(7, 4, 3), gray = test_image(6, 9, 1);
  {
    tensorboard::EventWriter w(dir.string());
    for (int i = 1; i <= 3; ++i) w.add_scalars({{"loss/G", 0.1 * i}, {"sec_per_kimg", 2.5 * i}}, 16 * i, 1.0 * i);
    w.add_image("fakes", rgb, 32, 2.0);
    w.add_image("reals", gray, 0, 0.0);
  }
  const TbRead r = read_with_tensorboard(dir, dir / "out");
  CHECK(r.files == 1);
  CHECK(r.records == 6);
  CHECK(r.file_version == "2.0");
  REQUIRE(r.scalars.size() == 2);
  for (const char* tag : {"loss/G", "sec_per_kimg"}) {
    INFO(tag);
    const auto& s = r.scalars.at(tag);
    REQUIRE(s.size() == 3);
    for (int i = 1; i <= 3; ++i) {
      CHECK(s[i - 1].step == 16 * i);
      CHECK(s[i - 1].value == (double)(float)(std::string(tag) == "loss/G" ? 0.1 * i : 2.5 * i));
      CHECK(s[i - 1].wall_time == 1.0 * i);
    }
  }
  REQUIRE(r.images.size() == 2);
  REQUIRE(r.images.at("fakes").size() == 1);
  const auto& f = r.images.at("fakes")[0];
  CHECK((f.step == 32 && f.width == 7 && f.height == 4));
  const auto& g = r.images.at("reals")[0];
  CHECK((g.step == 0 && g.width == 6 && g.height == 9));
  const data::Image back = data::load_image((dir / "out" / "fakes_32.png").string());
  CHECK(back.pixels == rgb.pixels);
  CHECK(data::load_image((dir / "out" / "reals_0.png").string()).pixels == gray.pixels);
  fs::remove_all(dir);
}

TEST_CASE("tensorboard: a training run logs every tick's scalars and its sample grids, read by tensorboard",
          "[tensorboard][train][python]") {
  const fs::path root = scratch("run");
  const fs::path data = make_image_folder(root / "data");
  std::string run_dir;
  REQUIRE(train::run_training(tiny(data, root / "runs", 0.032), &run_dir) == 0);
  const auto files = events_files(run_dir);
  REQUIRE(files.size() == 1);
  const auto log = read_log(fs::path(run_dir) / "log.jsonl");
  REQUIRE(log.size() == 2);  // ticks at 16 and 32 images

  const TbRead r = read_with_tensorboard(run_dir, root / "out");
  CHECK(r.files == 1);
  // file_version, reals, fakes_init, then per tick its scalars and its grid (--snap 1).
  CHECK(r.records == 3 + 2 * 2);
  // Every number of every log.jsonl record, under its log.jsonl key, at step = images shown
  // (r1_penalty only in the ticks where the lazy R1 ran, as in log.jsonl), and nothing else.
  size_t keys = 0, scalars = 0;
  for (const auto& [tag, s] : r.scalars) scalars += s.size();
  for (size_t t = 0; t < log.size(); ++t) {
    const int64_t step = std::llround(log[t].at("kimg") * 1000);
    CHECK(step == 16 * (int64_t)(t + 1));
    for (const auto& [k, v] : log[t]) {
      INFO("tick " << t << " " << k);
      REQUIRE(r.scalars.count(k) == 1);
      const auto& all = r.scalars.at(k);
      auto s = std::find_if(all.begin(), all.end(), [&](const TbRead::Scalar& x) { return x.step == step; });
      REQUIRE(s != all.end());
      CHECK(s->value == (double)(float)v);
      CHECK(s->wall_time == log[t].at("total_sec"));  // seconds since the start, as ada
      ++keys;
    }
  }
  CHECK(scalars == keys);
  for (const char* k : {"loss/G", "loss/D", "r1_penalty", "loss/G_pl", "sec_per_kimg", "mem_rss_gb"})
    CHECK(r.scalars.count(k) == 1);

  // The sample grids: the very PNG files of the run directory.
  REQUIRE(r.images.size() == 2);
  const auto& reals = r.images.at("reals");
  REQUIRE(reals.size() == 1);
  const data::Image reals_png = data::load_image(run_dir + "/reals.png");
  CHECK((reals[0].step == 0 && reals[0].width == reals_png.w && reals[0].height == reals_png.h));
  CHECK(read_all(root / "out" / "reals_0.png") == read_all(run_dir + "/reals.png"));
  const auto& fakes = r.images.at("fakes");
  REQUIRE(fakes.size() == 3);
  for (size_t i = 0; i < fakes.size(); ++i) {
    const int64_t step = 16 * (int64_t)i;
    const std::string file = run_dir + (i == 0 ? "/fakes_init.png" : "/fakes" + train::snapshot_tag(step) + ".png");
    INFO(file);
    CHECK(fakes[i].step == step);
    const data::Image png = data::load_image(file);
    CHECK((fakes[i].width == png.w && fakes[i].height == png.h));
    CHECK(read_all(root / "out" / ("fakes_" + std::to_string(step) + ".png")) == read_all(file));
  }

  // A resumed run writes its own events file in its own run directory; the steps continue.
  train::TrainOptions more = tiny(data, root / "runs", 0.048);
  more.resume = run_dir;
  std::string resumed_dir;
  REQUIRE(train::run_training(more, &resumed_dir) == 0);
  CHECK(resumed_dir != run_dir);
  CHECK(events_files(run_dir) == files);  // the first run's directory is left as it was
  const auto resumed = events_files(resumed_dir);
  REQUIRE(resumed.size() == 1);
  std::vector<std::pair<int64_t, std::string>> got;
  for (const Event& e : read_events(resumed[0]))
    for (const Value& v : e.values)
      if (v.tag == "loss/G" || v.has_image) got.push_back({e.step, v.tag});
  CHECK(got ==
        std::vector<std::pair<int64_t, std::string>>{{32, "reals"}, {32, "fakes"}, {48, "loss/G"}, {48, "fakes"}});

  // The same run with --tensorboard=0 writes no events file (the program's flag).
  const std::string cmd = std::string(SG_BIN_DIR) + "/stylegan2-train --data " + data.string() + " --outdir " +
                          (root / "off").string() +
                          " --resolution 8 --channels 1 --batch 4 --kimg 0.016 --tick 0.016 --threads 2 "
                          "--tensorboard=0 > " +
                          (root / "off.txt").string() + " 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  for (auto& run : fs::directory_iterator(root / "off")) {
    CHECK(fs::exists(run.path() / "log.jsonl"));
    CHECK(events_files(run.path()).empty());
  }
  fs::remove_all(root);
}

TEST_CASE("tensorboard: a run stopped by SIGINT leaves every tick's record complete", "[tensorboard][train]") {
  const fs::path root = scratch("signal");
  const fs::path data = make_image_folder(root / "data");
  const fs::path out = root / "runs";
  const std::string bin = std::string(SG_BIN_DIR) + "/stylegan2-train";
  const std::string cmd = "cd " + root.string() + " && (" + bin + " --data " + data.string() + " --outdir " +
                          out.string() +
                          " --resolution 8 --channels 1 --batch 4 --kimg 1000 --tick 0.004 --snap 2 --threads 2"
                          " > log.txt 2>&1 & pid=$!; for i in $(seq 1 300); do ls " +
                          out.string() +
                          "/*/fakes_init.png >/dev/null 2>&1 && break; sleep 0.1; done;"
                          " for i in $(seq 1 600); do [ $(cat " +
                          out.string() +
                          "/*/log.jsonl | wc -l) -ge 3 ] && break; sleep 0.1; done;"
                          " kill -INT $pid; wait $pid)";
  const int rc = std::system(cmd.c_str());
  CHECK(WIFEXITED(rc));
  CHECK(WEXITSTATUS(rc) == 0);
  CHECK_THAT(read_all(root / "log.txt"), Contains("interrupted by SIGINT"));
  const fs::path run = fs::directory_iterator(out)->path();
  const auto files = events_files(run);
  REQUIRE(files.size() == 1);
  const auto log = read_log(run / "log.jsonl");
  CHECK(log.size() >= 3);
  size_t ticks = 0;
  for (const Event& e : read_events(files[0]))  // every CRC checked
    ticks += !e.values.empty() && e.values[0].has_simple;
  CHECK(ticks == log.size());
  fs::remove_all(root);
}
