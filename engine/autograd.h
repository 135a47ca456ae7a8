// Reverse-mode autograd with double backward.
//
// A differentiable op computes its outputs, then (if grad mode is on and an input requires
// grad) attaches a Node: the node saves what its backward needs and keeps one Edge per
// input, pointing at the input's own grad_fn (or, for a leaf, at the leaf itself).
//
// The double-backward rule (see docs/architecture.md): every Node::backward is written
// with the public differentiable sg:: ops. With create_graph=false the engine runs it under
// NoGradGuard, so nothing is recorded; with create_graph=true it records the gradient's
// own graph, which can be differentiated again (R1, path length).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"

namespace sg {
namespace autograd {

struct Node;

// Where the gradient of one input goes: a node's output slot, or a leaf tensor.
struct Edge {
  std::shared_ptr<Node> fn;          // grad_fn of the input (non-leaf)
  int input_nr = 0;                  // which output of fn the input was
  std::shared_ptr<TensorImpl> leaf;  // set when the input is a leaf requiring grad
  bool valid() const { return fn || leaf; }
};

struct OutputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

struct Node : std::enable_shared_from_this<Node> {
  std::vector<Edge> next_edges;     // one per differentiable input
  std::vector<OutputMeta> outputs;  // one per output
  CudaMath math = cuda_math();      // the CUDA math its op ran under; its backward runs under it too
  virtual ~Node() = default;
  virtual std::string name() const = 0;
  // grads[i] is d(loss)/d(output i) (never undefined: the engine fills zeros). Returns one
  // tensor per input; an undefined tensor means "no gradient". Must use sg:: ops only.
  virtual std::vector<Tensor> backward(const std::vector<Tensor>& grads) = 0;

  // During backward: does input `input` need a gradient? False for inputs that do not
  // require grad and for those that lead to none of the tensors the caller asked for.
  bool needs_grad(size_t input) const {
    return input < next_edges.size() && next_edges[input].valid() && (edge_needed.empty() || edge_needed[input]);
  }
  // Is input `input` a leaf (a parameter or an input the user made), not an op's result?
  bool input_is_leaf(size_t input) const { return input < next_edges.size() && next_edges[input].leaf != nullptr; }
  std::vector<bool> edge_needed;  // set by the engine around each backward call
  // Re-attaches a saved (detached) output of this node to this node, so a backward that
  // uses its own output (tanh, exp, ...) stays differentiable without a reference cycle.
  Tensor saved_output(const Tensor& detached, int output_nr);
};

// Grad mode is thread-local.
bool grad_enabled();
void set_grad_enabled(bool on);
struct NoGradGuard {
  bool prev;
  NoGradGuard() : prev(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev); }
};
struct EnableGradGuard {
  bool prev;
  explicit EnableGradGuard(bool on) : prev(grad_enabled()) { set_grad_enabled(on); }
  ~EnableGradGuard() { set_grad_enabled(prev); }
};

// Within this scope, conv backward skips the gradient of a weight that is a leaf (a
// parameter used directly): R1 and path length never use the inner weight gradients.
// Weights computed by other ops (the fused modulated conv's styled weights) keep theirs, so
// gradients flowing to the styles stay correct. Thread-local.
bool weight_gradients_disabled();
struct NoWeightGradientsGuard {
  bool prev;
  NoWeightGradientsGuard();
  ~NoWeightGradientsGuard();
};

// d(sum_k <outputs[k], grad_outputs[k]>)/d(inputs). grad_outputs may be empty (ones for
// one-element outputs). Inputs may be leaves or intermediate tensors. An input the outputs
// do not depend on is an error unless allow_unused (then its gradient is undefined).
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool create_graph = false,
                         bool allow_unused = false);

// Used by Tensor::backward: accumulates into every reachable leaf's .grad.
void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, bool create_graph);

// ---- helpers for op implementations ----------------------------------------------------
// True when grad mode is on and some input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);
// Wires `node` between inputs and outputs: edges from inputs, grad_fn on outputs.
void set_history(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs);

// A node whose backward is a lambda: for ops whose backward needs only captured tensors.
struct LambdaNode : Node {
  std::string op;
  std::function<std::vector<Tensor>(const std::vector<Tensor>&, const Node&)> fn;
  std::string name() const override { return op; }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override { return fn(grads, *this); }
};
// Records `fn` as the backward of outputs w.r.t. inputs if any input requires grad.
// fn must not capture the outputs (use record_with_output for a backward that reads them).
void record(const char* op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            std::function<std::vector<Tensor>(const std::vector<Tensor>&, const Node&)> fn);
// The same for a one-output op whose backward reads its output y (exp, tanh, ...): the node
// keeps y detached and hands fn(y, grads, node) the output re-attached to itself
// (Node::saved_output), so the backward stays differentiable without a reference cycle.
void record_with_output(const char* op, const std::vector<Tensor>& inputs, const Tensor& output,
                        std::function<std::vector<Tensor>(const Tensor&, const std::vector<Tensor>&, const Node&)> fn);

}  // namespace autograd

using autograd::NoGradGuard;
using autograd::NoWeightGradientsGuard;

}  // namespace sg
