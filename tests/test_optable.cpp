// The op table's CPU checks. Every entry of tests/optable.cpp automatically gets the Catch2
// test cases
//   "gradcheck: <op>"      first derivatives vs central differences, f64, every sample
//   "gradgradcheck: <op>"  second derivatives (grad of grad, in x and in the cotangent)
//   "f32 vs f64: <op>"     the f32 forward against the f64 forward
// (and, in sg_cuda_tests, "cuda: <op>"). Adding an op means adding its entry there.
#include <catch2/catch.hpp>
#include <cmath>
#include <deque>

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

TEST_CASE("op table covers the op set", "[optable]") {
  // Every op the engine promises has an entry (the minimum op set of docs/architecture.md).
  const char* required[] = {"add",
                            "sub",
                            "mul",
                            "div",
                            "neg",
                            "exp",
                            "log",
                            "sqrt",
                            "rsqrt",
                            "pow",
                            "square",
                            "abs",
                            "tanh",
                            "sigmoid",
                            "softplus",
                            "leaky_relu",
                            "where",
                            "sum",
                            "mean",
                            "reshape",
                            "permute",
                            "expand",
                            "slice",
                            "cat",
                            "stack",
                            "repeat",
                            "matmul",
                            "linear",
                            "conv2d",
                            "conv_transpose2d",
                            "conv2d_weight_grad",
                            "upfirdn2d",
                            "bias_act",
                            "bias_act_grad",
                            "modulated_conv2d (fused)",
                            "modulated_conv2d (modulate activations)",
                            "pixel_norm",
                            "minibatch_stddev",
                            "lerp",
                            "nan_to_num"};
  for (const char* r : required) {
    bool found = false;
    for (auto& e : table()) found |= e.name == r;
    INFO(r);
    CHECK(found);
  }
}
