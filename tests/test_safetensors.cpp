// sg::io safetensors: round trips (exact bytes, names, order, metadata), files written by the
// Python oracle, and every kind of bad file throwing an sg::Error that names the file.
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "engine/io/safetensors.h"
#include "engine/ops.h"

using namespace sg;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("sg_safetensors_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), (std::streamsize)bytes.size());
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = (char)(uint8_t)(v >> (8 * i));
  return s;
}

// A hand-made safetensors file: header length, header, data.
void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  write_bytes(path, le64(header.size()) + header + data);
}

Tensor filled(const Shape& s, DType dt, double start) {
  int64_t n = numel_of(s);
  std::vector<double> v((size_t)n);
  for (int64_t i = 0; i < n; ++i) v[i] = start + 0.1234567890123 * (double)i * (i % 2 ? -1 : 1);
  return from_vector(v, s, dt);
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  size_t n = (size_t)a.numel() * dtype_size(a.dtype());
  return n == 0 || std::memcmp(a.raw_data(), b.raw_data(), n) == 0;
}

}  // namespace

// Both: it throws an sg::Error, and the message names the file and the problem.
#define REQUIRE_LOAD_FAILS(path, phrase)                                                 \
  do {                                                                                   \
    REQUIRE_THROWS_AS(io::load_safetensors(path), sg::Error);                            \
    REQUIRE_THROWS_WITH(io::load_safetensors(path), Contains(path) && Contains(phrase)); \
  } while (0)

TEST_CASE("safetensors: round trip f32 and f64", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("round_trip.safetensors");
  std::vector<std::pair<std::string, Tensor>> ts = {
      {"mapping.fc0.weight", filled({3, 5}, DType::f32, 0.5)},
      {"b64", filled({7}, DType::f64, -2.0)},
      {"scalar", scalar(3.25, DType::f64)},
      {"empty", zeros({0, 4}, DType::f32)},
      {"a/4d \"quoted\"", filled({2, 3, 1, 4}, DType::f64, 1e-300)},
      {"odd_f32", filled({3}, DType::f32, 1.0)},  // 12 bytes: later tensors are not 8-aligned
      {"z_after_odd", filled({2, 2}, DType::f64, 7.0)},
  };
  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"note", "quotes \" backslash \\ newline \n tab \t unicode \xc3\xa9"}, {"empty", ""}};
  io::save_safetensors(path, ts, meta);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK(io::load_safetensors_metadata(path) == meta);  // the header alone gives the same metadata

  // The header is padded so the data starts 8-byte aligned.
  std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t hl = 0;
  for (int i = 0; i < 8; ++i) hl |= (uint64_t)(uint8_t)bytes[i] << (8 * i);
  CHECK(hl % 8 == 0);

  std::map<std::string, std::string> meta_back;
  auto back = io::load_safetensors(path, &meta_back);
  CHECK(meta_back == meta);
  REQUIRE(back.size() == ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    INFO("tensor " << ts[i].first);
    CHECK(back[i].first == ts[i].first);  // file order = the order given
    CHECK(back[i].second.shape() == ts[i].second.shape());
    CHECK(back[i].second.dtype() == ts[i].second.dtype());
    CHECK(back[i].second.is_cpu());
    CHECK_FALSE(back[i].second.requires_grad());
    CHECK(same_bytes(back[i].second, ts[i].second));
  }

  auto m = io::load_safetensors_map(path);
  CHECK(m.size() == ts.size());
  CHECK(m.at("scalar").item() == 3.25);
  CHECK(m.at("scalar").dim() == 0);

  // A second save replaces the file whole.
  io::save_safetensors(path, {{"only", filled({2}, DType::f32, 9.0)}});
  std::map<std::string, std::string> meta2 = {{"stale", "x"}};
  auto again = io::load_safetensors(path, &meta2);
  REQUIRE(again.size() == 1);
  CHECK(again[0].first == "only");
  CHECK(meta2.empty());
}

TEST_CASE("safetensors: a failed save leaves the old file intact", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("keep.safetensors");
  io::save_safetensors(path, {{"w", filled({4}, DType::f64, 1.0)}});
  const std::string before = read_bytes(path);

  Tensor t = filled({2}, DType::f32, 0.0);
  REQUIRE_THROWS_AS(io::save_safetensors(path, {{"a", t}, {"a", t}}), sg::Error);
  REQUIRE_THROWS_WITH(io::save_safetensors(path, {{"a", t}, {"a", t}}), Contains(path) && Contains("duplicate"));
  REQUIRE_THROWS_WITH(io::save_safetensors(path, {{"__metadata__", t}}), Contains(path) && Contains("reserved"));
  REQUIRE_THROWS_WITH(io::save_safetensors(path, {{"", t}}), Contains(path) && Contains("empty name"));
  REQUIRE_THROWS_WITH(io::save_safetensors(path, {{"u", Tensor()}}), Contains(path) && Contains("undefined"));
  CHECK(read_bytes(path) == before);
  CHECK_FALSE(fs::exists(path + ".tmp"));

  const std::string nodir = dir.file("no/such/dir/x.safetensors");
  REQUIRE_THROWS_AS(io::save_safetensors(nodir, {{"a", t}}), sg::Error);
  REQUIRE_THROWS_WITH(io::save_safetensors(nodir, {{"a", t}}), Contains(nodir));
}

TEST_CASE("safetensors: reads the files the Python oracle writes", "[safetensors]") {
  const std::string path = std::string(SG_FIXTURE_DIR) + "/conv2d_grouped.safetensors";
  std::map<std::string, std::string> meta;
  auto ts = io::load_safetensors(path, &meta);
  CHECK(meta["case"] == "conv2d_grouped");
  std::vector<std::string> names;
  for (auto& [n, t] : ts) names.push_back(n);
  // Python wrote them in this order.
  CHECK(names == std::vector<std::string>{"x", "w", "gy", "y", "dx", "dw", "h", "dh_dx", "dh_dw", "dh_dgy"});
  auto m = io::load_safetensors_map(path);
  CHECK(m.at("x").shape() == Shape{2, 4, 7, 9});
  CHECK(m.at("w").shape() == Shape{6, 2, 3, 3});
  CHECK(m.at("y").shape() == Shape{2, 6, 4, 5});
  CHECK(m.at("dw").shape() == Shape{6, 2, 3, 3});
  CHECK(m.at("h").shape() == Shape{});
  for (auto& [n, t] : m) CHECK(t.dtype() == DType::f64);
  // Values are finite and not all zero (the fixture really ran).
  double s = 0;
  for (double v : m.at("y").to_vector()) {
    REQUIRE(std::isfinite(v));
    s += std::abs(v);
  }
  CHECK(s > 0);

  // Re-saving what we read gives a file that reads back to the same bytes.
  TempDir dir;
  const std::string copy = dir.file("copy.safetensors");
  io::save_safetensors(copy, ts, meta);
  auto ts2 = io::load_safetensors(copy);
  REQUIRE(ts2.size() == ts.size());
  for (size_t i = 0; i < ts.size(); ++i) CHECK(same_bytes(ts[i].second, ts2[i].second));
}

TEST_CASE("safetensors: load_safetensors_from_memory reads what load_safetensors reads", "[safetensors]") {
  TempDir dir;
  const std::string p = dir.file("m.safetensors");
  io::save_safetensors(p, {{"w", filled({2, 3}, DType::f32, 1.5)}, {"b", filled({4}, DType::f64, -2.0)}},
                       {{"kimg", "7"}});
  const std::string bytes = read_bytes(p);
  std::map<std::string, std::string> meta;
  const auto mem = io::load_safetensors_from_memory(bytes.data(), bytes.size(), "in-memory", &meta);
  const auto file = io::load_safetensors(p);
  REQUIRE(mem.size() == file.size());
  for (size_t i = 0; i < mem.size(); ++i) {
    CHECK(mem[i].first == file[i].first);
    CHECK(mem[i].second.shape() == file[i].second.shape());
    CHECK(std::memcmp(mem[i].second.raw_data(), file[i].second.raw_data(),
                      (size_t)file[i].second.numel() * dtype_size(file[i].second.dtype())) == 0);
  }
  CHECK(meta == std::map<std::string, std::string>{{"kimg", "7"}});
  // The same checks, naming what it was given.
  CHECK_THROWS_WITH(io::load_safetensors_from_memory(bytes.data(), bytes.size() - 5, "short-buffer"),
                    Contains("short-buffer") && Contains("out of range"));
  CHECK_THROWS_WITH(io::load_safetensors_from_memory(nullptr, 0, "nothing"),
                    Contains("nothing") && Contains("truncated"));
}

TEST_CASE("safetensors: bad files throw sg::Error naming the file", "[safetensors]") {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  io::save_safetensors(good, {{"a", filled({4, 4}, DType::f32, 0.0)}, {"b", filled({3}, DType::f64, 1.0)}},
                       {{"k", "v"}});
  const std::string bytes = read_bytes(good);
  REQUIRE_NOTHROW(io::load_safetensors(good));

  SECTION("missing file") {
    const std::string p = dir.file("does_not_exist.safetensors");
    REQUIRE_LOAD_FAILS(p, "cannot open");
  }
  SECTION("truncated data") {
    const std::string p = dir.file("truncated.safetensors");
    write_bytes(p, bytes.substr(0, bytes.size() - 5));
    REQUIRE_LOAD_FAILS(p, "out of range");
  }
  SECTION("truncated inside the header") {
    const std::string p = dir.file("truncated_header.safetensors");
    write_bytes(p, bytes.substr(0, 20));
    REQUIRE_LOAD_FAILS(p, "bad header length");
  }
  SECTION("shorter than the length field") {
    const std::string p = dir.file("tiny.safetensors");
    write_bytes(p, "abc");
    REQUIRE_LOAD_FAILS(p, "truncated");
  }
  SECTION("empty file") {
    const std::string p = dir.file("empty.safetensors");
    write_bytes(p, "");
    REQUIRE_LOAD_FAILS(p, "truncated");
  }
  SECTION("bad header length") {
    const std::string p = dir.file("bad_len.safetensors");
    write_bytes(p, le64(0xFFFFFFFFFFFFull) + std::string(64, ' '));
    REQUIRE_LOAD_FAILS(p, "bad header length");
    write_bytes(p, le64(0) + std::string(64, ' '));
    REQUIRE_LOAD_FAILS(p, "bad header length");
  }
  SECTION("garbage JSON") {
    const std::string p = dir.file("garbage.safetensors");
    write_raw(p, "{\"a\": {\"dtype\": \"F32\", ", std::string(16, '\0'));
    REQUIRE_LOAD_FAILS(p, "bad JSON");
    write_raw(p, "not json at all!", "");
    REQUIRE_LOAD_FAILS(p, "bad JSON");
    write_raw(p, "{\"a\":1}xyz", "");
    REQUIRE_LOAD_FAILS(p, "bad JSON");
    write_raw(p, "[1, 2, 3]", "");
    REQUIRE_LOAD_FAILS(p, "expected an object");
    write_raw(p, std::string(200, '[') + std::string(200, ']'), "");
    REQUIRE_LOAD_FAILS(p, "bad JSON");
  }
  SECTION("unsupported dtypes name the dtype") {
    const std::string p = dir.file("bf16.safetensors");
    write_raw(p, R"({"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0'));
    REQUIRE_LOAD_FAILS(p, "unsupported dtype BF16");
    write_raw(p, R"({"x":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0'));
    REQUIRE_LOAD_FAILS(p, "unsupported dtype F16");
    write_raw(p, R"({"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0'));
    REQUIRE_LOAD_FAILS(p, "unsupported dtype I64");
  }
  SECTION("offsets out of range, overlapping, or the wrong size") {
    const std::string p = dir.file("offsets.safetensors");
    write_raw(p, R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(4, '\0'));
    REQUIRE_LOAD_FAILS(p, "out of range");
    write_raw(p,
              R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
              R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
              std::string(12, '\0'));
    REQUIRE_LOAD_FAILS(p, "overlap");
    write_raw(p, R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'));
    REQUIRE_LOAD_FAILS(p, "needs 16");
    write_raw(p, R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", std::string(8, '\0'));
    REQUIRE_LOAD_FAILS(p, "end before");
    write_raw(p, R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0'));
    REQUIRE_LOAD_FAILS(p, "non-negative integer");
    write_raw(p, R"({"x":{"dtype":"F32","shape":[1]}})", std::string(4, '\0'));
    REQUIRE_LOAD_FAILS(p, "data_offsets");
  }
  SECTION("an empty tensor name") {  // found by fuzz_safetensors in CI on 3 December
    const std::string p = dir.file("empty_name.safetensors");
    write_raw(p, R"({"":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", std::string(4, '\0'));
    REQUIRE_LOAD_FAILS(p, "empty name");
  }
  SECTION("duplicate names") {
    const std::string p = dir.file("dup.safetensors");
    write_raw(p,
              R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
              R"("x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
              std::string(8, '\0'));
    REQUIRE_LOAD_FAILS(p, "duplicate");
  }
  SECTION("metadata must map strings to strings") {
    const std::string p = dir.file("meta.safetensors");
    write_raw(p, R"({"__metadata__":{"epoch":3}})", "");
    REQUIRE_LOAD_FAILS(p, "__metadata__");
  }
  SECTION("a valid hand-written file with padding and escapes loads") {
    const std::string p = dir.file("hand.safetensors");
    std::string data(8, '\0');
    double v = -1.5;
    std::memcpy(data.data(), &v, 8);
    write_raw(p,
              "{\"__metadata__\":{\"k\\u00e9y\":\"a\\\"b\"}, \"x\\/y\" : {\"dtype\":\"F64\",\"shape\":[],"
              "\"data_offsets\":[0,8]}}    ",
              data);
    std::map<std::string, std::string> meta;
    auto ts = io::load_safetensors(p, &meta);
    REQUIRE(ts.size() == 1);
    CHECK(ts[0].first == "x/y");
    CHECK(ts[0].second.item() == -1.5);
    CHECK(meta.at("k\xc3\xa9y") == "a\"b");
    CHECK(io::load_safetensors_metadata(p) == meta);
  }
}
