// The op table's CPU checks. Every entry of tests/optable.cpp automatically gets the Catch2
// test cases
//   "gradcheck: <op>"      first derivatives vs central differences, f64, every sample
//   "gradgradcheck: <op>"  second derivatives (grad of grad, in x and in the cotangent)
//   "f32 vs f64: <op>"     the f32 forward against the f64 forward
// (and, in sg_cuda_tests, "cuda: <op>"). Adding an op means adding its entry there.
#include <catch2/catch.hpp>
#include <cmath>
#include <deque>
#include <fstream>

#include "gradcheck.h"
#include "optable.h"

using namespace sg;
using namespace sgtest;

namespace {

const std::vector<OpEntry>& table() { return op_table(); }

enum class Check { grad, gradgrad, f32 };

struct EntryInvoker : Catch::ITestInvoker {
  size_t index;
  Check check;
  EntryInvoker(size_t i, Check c) : index(i), check(c) {}
  void invoke() const override {
    const OpEntry& e = table()[index];
    uint64_t seed = entry_seed(index);
    for (const Sample& s : e.samples) {
      std::vector<bool> diff;
      std::vector<Tensor> in = make_inputs(s, seed++, diff);
      INFO(e.name << " [" << s.desc << "]");
      if (check == Check::f32) {
        std::vector<Tensor> in32;
        for (auto& x : in) in32.push_back(x.to(DType::f32));
        Tensor y64 = s.fn(in), y32 = s.fn(in32);
        CHECK(y32.dtype() == DType::f32);
        double err = sgtest::max_rel_error(y32, y64);
        INFO("max relative error " << err);
        CHECK(err < 1e-5);
        continue;
      }
      auto r =
          check == Check::grad ? sgtest::gradcheck(s.fn, in, diff, seed) : sgtest::gradgradcheck(s.fn, in, diff, seed);
      INFO(r.detail << " (" << r.checked << " elements checked)");
      CHECK(r.checked > 0);
      CHECK(r.ok);
    }
  }
};

bool register_all() {
  static std::deque<std::string> names;  // Catch keeps StringRefs
  const auto& t = table();
  for (size_t i = 0; i < t.size(); ++i) {
    const std::pair<Check, const char*> kinds[] = {
        {Check::grad, "gradcheck: "}, {Check::gradgrad, "gradgradcheck: "}, {Check::f32, "f32 vs f64: "}};
    for (auto [c, prefix] : kinds) {
      names.push_back(prefix + t[i].name);
      const char* tag = c == Check::grad       ? "[optable][gradcheck]"
                        : c == Check::gradgrad ? "[optable][gradgradcheck]"
                                               : "[optable][f32]";
      Catch::AutoReg(new EntryInvoker(i, c), CATCH_INTERNAL_LINEINFO, Catch::StringRef(),
                     Catch::NameAndTags{Catch::StringRef(names.back()), Catch::StringRef(tag)});
    }
  }
  return true;
}
const bool registered = register_all();

}  // namespace

namespace {
std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  std::vector<std::string> r;
  for (std::string l; std::getline(f, l);) r.push_back(l);
  return r;
}
}  // namespace

TEST_CASE("docs: the op table, engine/derivatives.cpp and the tests list the same ops", "[optable]") {
  // docs/architecture.md, "Every op and its backward": the op of each row, in order.
  std::vector<std::string> docs;
  bool in_table = false;
  for (const std::string& l : lines_of(std::string(SG_SOURCE_DIR) + "/docs/architecture.md")) {
    if (l.rfind("### Every op and its backward", 0) == 0)
      in_table = true;
    else if (in_table && l.rfind("#", 0) == 0)
      break;
    else if (in_table && l.rfind("| `", 0) == 0)
      docs.push_back(l.substr(3, l.find_first_of("(`", 3) - 3));
  }
  // engine/derivatives.cpp: the rule functions, in order (the fused modconv's rule is named
  // for its path).
  std::vector<std::string> rules;
  for (const std::string& l : lines_of(std::string(SG_SOURCE_DIR) + "/engine/derivatives.cpp"))
    if (l.rfind("Grads ", 0) == 0) {
      std::string name = l.substr(6, l.find('(') - 6);
      if (name == "modulated_conv2d_fused") name = "modulated_conv2d";
      rules.push_back(name);
    }
  REQUIRE(docs.size() >= 30);
  CHECK(docs == rules);
  // Every op has an op-table entry (its gradcheck, gradgradcheck, f32 and CUDA checks), except
  // cast (f64 -> f32 -> f64 cannot pass an f64 gradcheck; tests/test_autograd.cpp checks it)
  // and to_device (tests/cuda/test_cuda_runtime.cpp).
  for (const std::string& op : docs) {
    if (op == "cast" || op == "to_device") continue;
    bool found = false;
    for (auto& e : table()) found |= e.name == op || e.name.rfind(op + " (", 0) == 0;
    INFO(op);
    CHECK(found);
  }
}
