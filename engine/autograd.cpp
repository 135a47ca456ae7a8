// The backward engine: discovers the graph from the outputs, orders it topologically,
// decides which nodes lead to a requested input, and runs their backward functions with
// grad mode set to create_graph (the double-backward rule).
#include "engine/autograd.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"

namespace sg {
namespace autograd {

namespace {
thread_local bool t_grad_enabled = true;
thread_local bool t_no_weight_grads = false;
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }
bool weight_gradients_disabled() { return t_no_weight_grads; }
NoWeightGradientsGuard::NoWeightGradientsGuard() : prev(t_no_weight_grads) { t_no_weight_grads = true; }
NoWeightGradientsGuard::~NoWeightGradientsGuard() { t_no_weight_grads = prev; }

Tensor Node::saved_output(const Tensor& detached, int nr) {
  if (!grad_enabled()) return detached;
  auto p = std::make_shared<TensorImpl>();
  p->storage = detached.impl()->storage;
  p->shape = detached.shape();
  p->dtype = detached.dtype();
  p->device = detached.device();
  p->requires_grad = true;
  p->grad_fn = shared_from_this();
  p->output_nr = nr;
  return Tensor(p);
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (auto* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}
bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return false;
  for (auto& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

static Edge edge_of(const Tensor& t) {
  Edge e;
  if (!t.defined() || !t.requires_grad()) return e;
  if (t.grad_fn()) {
    e.fn = t.grad_fn();
    e.input_nr = t.output_nr();
  } else {
    e.leaf = t.impl_ptr();
  }
  return e;
}

void set_history(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs) {
  node->next_edges.clear();
  for (auto& t : inputs) node->next_edges.push_back(edge_of(t));
  node->outputs.clear();
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* p = outputs[i].impl();
    p->requires_grad = true;
    p->grad_fn = node;
    p->output_nr = (int)i;
    node->outputs.push_back({p->shape, p->dtype, p->device});
  }
}

void record(const char* op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            std::function<std::vector<Tensor>(const std::vector<Tensor>&, const Node&)> fn) {
  if (!any_requires_grad(inputs)) return;
  auto node = std::make_shared<LambdaNode>();
  node->op = op;
  node->fn = std::move(fn);
  set_history(node, inputs, outputs);
}

namespace {
struct OutputRuleNode : Node {
  std::string op;
  Tensor y;  // detached
  std::function<std::vector<Tensor>(const Tensor&, const std::vector<Tensor>&, const Node&)> fn;
  std::string name() const override { return op; }
  std::vector<Tensor> backward(const std::vector<Tensor>& grads) override {
    return fn(saved_output(y, 0), grads, *this);
  }
};
}  // namespace

void record_with_output(const char* op, const std::vector<Tensor>& inputs, const Tensor& output,
                        std::function<std::vector<Tensor>(const Tensor&, const std::vector<Tensor>&, const Node&)> fn) {
  if (!any_requires_grad(inputs)) return;
  auto node = std::make_shared<OutputRuleNode>();
  node->op = op;
  node->y = output.detach();
  node->fn = std::move(fn);
  set_history(node, inputs, {output});
}

namespace {

Tensor accumulate(const Tensor& acc, const Tensor& g) { return acc.defined() ? add(acc, g) : g; }

struct NodeState {
  int deps = 0;
  bool needed = false;
  std::vector<Tensor> buf;
};

// Runs the graph from `outputs`. Targets are leaves (by impl) and intermediate tensors (by
// node and output slot). With accumulate_leaves, every reachable leaf is a target and its
// gradient lands in .grad; otherwise gradients of `inputs` are returned.
std::vector<Tensor> run(const char* api, const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                        const std::vector<Tensor>& inputs, bool create_graph, bool allow_unused,
                        bool accumulate_leaves) {
  SG_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), api, outputs.size(), " outputs but ",
           grad_outputs.size(), " grad_outputs");
  EnableGradGuard mode(create_graph);

  // Root gradients.
  std::vector<Tensor> root_grads;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& y = outputs[k];
    SG_CHECK(y.defined(), api, "output ", k, " is undefined");
    SG_CHECK(y.requires_grad(), api, "output ", k, " ", y.str(), " does not require grad (no graph)");
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[k];
    if (!g.defined()) {
      SG_CHECK(y.numel() == 1, api, "grad can be implied only for one-element outputs; output ", k, " has shape ",
               shape_str(y.shape()));
      g = ones(y.shape(), y.dtype(), y.device());
    }
    SG_CHECK(g.shape() == y.shape() && g.dtype() == y.dtype() && g.device() == y.device(), api, "grad_output ", k, " ",
             g.str(), " does not match output ", y.str());
    root_grads.push_back(g);
  }

  // Discover the graph.
  std::unordered_map<Node*, NodeState> st;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep;
  std::vector<Node*> stack;
  for (auto& y : outputs)
    if (y.grad_fn() && !st.count(y.grad_fn().get())) {
      st[y.grad_fn().get()];
      keep[y.grad_fn().get()] = y.grad_fn();
      stack.push_back(y.grad_fn().get());
    }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& e : n->next_edges) {
      if (!e.fn) continue;
      Node* c = e.fn.get();
      if (!st.count(c)) {
        keep[c] = e.fn;
        stack.push_back(c);
      }
      st[c].deps++;
    }
  }
  // Topological order (Kahn).
  std::vector<Node*> order;
  {
    std::unordered_map<Node*, int> deps;
    for (auto& [n, s] : st) deps[n] = s.deps;
    std::vector<Node*> ready;
    for (auto& [n, d] : deps)
      if (d == 0) ready.push_back(n);
    while (!ready.empty()) {
      Node* n = ready.back();
      ready.pop_back();
      order.push_back(n);
      for (auto& e : n->next_edges)
        if (e.fn && --deps[e.fn.get()] == 0) ready.push_back(e.fn.get());
    }
  }

  // Targets.
  std::unordered_map<TensorImpl*, Tensor> leaf_grads;  // leaf targets -> gradient
  std::unordered_map<Node*, std::vector<int>> node_targets;
  std::unordered_map<TensorImpl*, std::shared_ptr<TensorImpl>> leaves;
  for (auto& x : inputs) {
    SG_CHECK(x.defined(), api, "an input is undefined");
    SG_CHECK(x.requires_grad(), api, "input ", x.str(), " does not require grad");
    if (x.grad_fn())
      node_targets[x.grad_fn().get()].push_back(x.output_nr());
    else
      leaf_grads[x.impl()];
  }
  auto is_leaf_target = [&](TensorImpl* p) { return accumulate_leaves || leaf_grads.count(p) > 0; };

  // Needed: a node runs when one of its edges reaches a target.
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node* n = *it;
    bool need = false;
    for (auto& e : n->next_edges) {
      if (e.leaf && is_leaf_target(e.leaf.get())) need = true;
      if (e.fn && (st[e.fn.get()].needed || node_targets.count(e.fn.get()))) need = true;
    }
    st[n].needed = need;
  }

  // Seed.
  for (size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& y = outputs[k];
    if (y.grad_fn()) {
      auto& s = st[y.grad_fn().get()];
      s.buf.resize(y.grad_fn()->outputs.size());
      s.buf[y.output_nr()] = accumulate(s.buf[y.output_nr()], root_grads[k]);
    } else if (is_leaf_target(y.impl())) {
      leaves[y.impl()] = y.impl_ptr();
      leaf_grads[y.impl()] = accumulate(leaf_grads[y.impl()], root_grads[k]);
    }
  }

  // Execute.
  std::unordered_map<Node*, std::vector<Tensor>> captured;
  for (Node* n : order) {
    auto& s = st[n];
    s.buf.resize(n->outputs.size());
    if (auto t = node_targets.find(n); t != node_targets.end()) captured[n] = s.buf;
    if (!s.needed) {
      s.buf.clear();
      continue;
    }
    std::vector<Tensor> grads(n->outputs.size());
    for (size_t i = 0; i < grads.size(); ++i) {
      const auto& m = n->outputs[i];
      grads[i] = s.buf[i].defined() ? s.buf[i] : zeros(m.shape, m.dtype, m.device);
    }
    s.buf.clear();
    n->edge_needed.assign(n->next_edges.size(), false);
    for (size_t j = 0; j < n->next_edges.size(); ++j) {
      const Edge& e = n->next_edges[j];
      n->edge_needed[j] = (e.leaf && is_leaf_target(e.leaf.get())) ||
                          (e.fn && (st[e.fn.get()].needed || node_targets.count(e.fn.get())));
    }
    std::vector<Tensor> in_grads;
    {
      CudaMathGuard math(n->math);  // the forward's math (a bf16 layer's gradients are bf16 too)
      in_grads = n->backward(grads);
    }
    n->edge_needed.clear();
    SG_CHECK(in_grads.size() == n->next_edges.size(), n->name(), " backward returned ", in_grads.size(),
             " gradients for ", n->next_edges.size(), " inputs");
    for (size_t j = 0; j < in_grads.size(); ++j) {
      const Edge& e = n->next_edges[j];
      const Tensor& g = in_grads[j];
      if (!e.valid() || !g.defined()) continue;
      if (e.leaf) {
        SG_CHECK(g.shape() == e.leaf->shape, n->name(), " backward: gradient of input ", j, " has shape ",
                 shape_str(g.shape()), " but the input has ", shape_str(e.leaf->shape));
        if (!is_leaf_target(e.leaf.get())) continue;
        leaves[e.leaf.get()] = e.leaf;
        leaf_grads[e.leaf.get()] = accumulate(leaf_grads[e.leaf.get()], g);
      } else {
        const auto& m = e.fn->outputs[e.input_nr];
        SG_CHECK(g.shape() == m.shape, n->name(), " backward: gradient of input ", j, " has shape ",
                 shape_str(g.shape()), " but the input has ", shape_str(m.shape));
        auto& c = st[e.fn.get()];
        if (!c.needed && !node_targets.count(e.fn.get())) continue;
        c.buf.resize(e.fn->outputs.size());
        c.buf[e.input_nr] = accumulate(c.buf[e.input_nr], g);
      }
    }
  }

  if (accumulate_leaves) {
    for (auto& [p, g] : leaf_grads) {
      if (!g.defined()) continue;
      Tensor leaf(leaves.at(p));
      Tensor add_g = create_graph ? g : g.detach();
      leaf.set_grad(leaf.grad().defined() ? add(leaf.grad(), add_g) : add_g);
    }
    return {};
  }
  std::vector<Tensor> result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    Tensor g;
    if (x.grad_fn()) {
      auto c = captured.find(x.grad_fn().get());
      if (c != captured.end() && (size_t)x.output_nr() < c->second.size()) g = c->second[x.output_nr()];
    } else {
      g = leaf_grads[x.impl()];
    }
    SG_CHECK(g.defined() || allow_unused, api, "input ", i, " ", x.str(),
             " was not used to compute the outputs (pass allow_unused=true)");
    result.push_back(g);
  }
  return result;
}

}  // namespace

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool create_graph, bool allow_unused) {
  return run("autograd::grad", outputs, grad_outputs, inputs, create_graph, allow_unused, false);
}

void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs, bool create_graph) {
  run("backward", outputs, grad_outputs, {}, create_graph, true, true);
}

}  // namespace autograd
}  // namespace sg
