// lower: the GraphBuilder (batch-norm folding, activation fusion), lower(), and the Graph run with
// LibTorch ops that mirror the exporters' operators one for one.
#include "nas/model/lower.h"

#include <algorithm>

#include "nas/core/error.h"

namespace nas::model {

const char* to_string(GraphOp op) {
  switch (op) {
    case GraphOp::conv: return "conv";
    case GraphOp::linear: return "linear";
    case GraphOp::add: return "add";
    case GraphOp::mul: return "mul";
    case GraphOp::act: return "act";
    case GraphOp::avg_pool: return "avg_pool";
    case GraphOp::global_avg_pool: return "global_avg_pool";
  }
  return "?";
}

namespace {

std::vector<float> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::vector<int64_t> sizes_of(const torch::Tensor& t) { return t.sizes().vec(); }

} // namespace

int GraphBuilder::add_tensor(const std::string& name, std::vector<int64_t> shape) {
  std::string unique = name;
  for (int i = 2; std::any_of(g_.tensors.begin(), g_.tensors.end(), [&](const GraphTensor& t) { return t.name == unique; }); ++i)
    unique = name + "_" + std::to_string(i);
  g_.tensors.push_back(GraphTensor{unique, std::move(shape)});
  readers_.push_back(0);
  return int(g_.tensors.size()) - 1;
}

int GraphBuilder::push(GraphNode n, std::vector<int64_t> shape) {
  for (int in : n.inputs) ++readers_.at(size_t(in));
  n.output = add_tensor(n.name, std::move(shape));
  g_.nodes.push_back(std::move(n));
  return g_.nodes.back().output;
}

int GraphBuilder::input(std::vector<int64_t> shape) {
  g_.input = add_tensor("input", std::move(shape));
  return g_.input;
}

int GraphBuilder::conv(const std::string& name, int in, const torch::Tensor& weight, const torch::nn::BatchNorm2d& bn,
                       int64_t stride, int64_t groups) {
  torch::NoGradGuard no_grad;
  torch::Tensor w = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor b = torch::zeros({w.size(0)});
  if (bn) {
    torch::Tensor scale = bn->weight.detach().cpu() / torch::sqrt(bn->running_var.detach().cpu() + bn->options.eps());
    w = w * scale.view({-1, 1, 1, 1});
    b = bn->bias.detach().cpu() - bn->running_mean.detach().cpu() * scale;
  }
  GraphNode n;
  n.op = GraphOp::conv;
  n.name = name;
  n.inputs = {in};
  n.kernel = w.size(2);
  n.stride = stride;
  n.pad = n.kernel / 2;
  n.groups = groups;
  n.weight_shape = sizes_of(w);
  n.weight = to_vector(w);
  n.bias = to_vector(b);
  const auto& s = shape(in);
  return push(std::move(n), {w.size(0), conv_out(s[1], w.size(2), stride, w.size(2) / 2),
                             conv_out(s[2], w.size(3), stride, w.size(3) / 2)});
}

int GraphBuilder::batch_norm(const std::string& name, int in, const torch::nn::BatchNorm2d& bn) {
  const int64_t c = shape(in)[0];
  return conv(name, in, torch::ones({c, 1, 1, 1}), bn, 1, c);
}

int GraphBuilder::linear(const std::string& name, int in, const torch::nn::Linear& l) {
  GraphNode n;
  n.op = GraphOp::linear;
  n.name = name;
  n.inputs = {in};
  n.weight_shape = sizes_of(l->weight);
  n.weight = to_vector(l->weight);
  n.bias = l->bias.defined() ? to_vector(l->bias) : std::vector<float>(size_t(l->weight.size(0)), 0.f);
  return push(std::move(n), {l->weight.size(0)});
}

int GraphBuilder::add(const std::string& name, int a, int b) {
  if (shape(a) != shape(b)) throw Error("graph: adding tensors of different shapes at " + name);
  GraphNode n;
  n.op = GraphOp::add;
  n.name = name;
  n.inputs = {a, b};
  return push(std::move(n), shape(a));
}

int GraphBuilder::mul(const std::string& name, int in, float scalar) {
  GraphNode n;
  n.op = GraphOp::mul;
  n.name = name;
  n.inputs = {in};
  n.scalar = scalar;
  return push(std::move(n), shape(in));
}

int GraphBuilder::avg_pool(const std::string& name, int in, int64_t kernel, int64_t stride, int64_t pad) {
  GraphNode n;
  n.op = GraphOp::avg_pool;
  n.name = name;
  n.inputs = {in};
  n.kernel = kernel;
  n.stride = stride;
  n.pad = pad;
  const auto& s = shape(in);
  return push(std::move(n), {s[0], conv_out(s[1], kernel, stride, pad), conv_out(s[2], kernel, stride, pad)});
}

int GraphBuilder::global_avg_pool(const std::string& name, int in) {
  GraphNode n;
  n.op = GraphOp::global_avg_pool;
  n.name = name;
  n.inputs = {in};
  return push(std::move(n), {shape(in)[0]});
}

int GraphBuilder::activate(const std::string& name, int in, const std::string& act) {
  if (act == "relu" || act == "relu6") {
    GraphNode* last = g_.nodes.empty() ? nullptr : &g_.nodes.back();
    if (last && last->output == in && readers_.at(size_t(in)) == 0 && last->act == "none" &&
        (last->op == GraphOp::conv || last->op == GraphOp::linear || last->op == GraphOp::add)) {
      last->act = act;
      return in;
    }
  }
  GraphNode n;
  n.op = GraphOp::act;
  n.name = name;
  n.inputs = {in};
  n.act = act;
  return push(std::move(n), shape(in));
}

int GraphBuilder::activate_shared(const std::string& name, int in, const std::string& act) {
  auto key = std::make_pair(in, act);
  if (auto it = shared_acts_.find(key); it != shared_acts_.end()) return it->second;
  GraphNode n;
  n.op = GraphOp::act;
  n.name = name;
  n.inputs = {in};
  n.act = act;
  int t = push(std::move(n), shape(in));
  shared_acts_[key] = t;
  return t;
}

Graph lower(Network& net, const std::vector<float>& mean, const std::vector<float>& std) {
  Graph g;
  g.mean = mean;
  g.std = std;
  g.genome = space::canonical(net->genome());
  GraphBuilder b(g);
  net->lower(b);
  return g;
}

namespace {

torch::Tensor tensor_of(const std::vector<float>& v, const std::vector<int64_t>& shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

torch::Tensor run_node(const GraphNode& n, const std::vector<torch::Tensor>& v) {
  const torch::Tensor& x = v.at(size_t(n.inputs.at(0)));
  torch::Tensor y;
  switch (n.op) {
    case GraphOp::conv:
      y = torch::conv2d(x, tensor_of(n.weight, n.weight_shape), tensor_of(n.bias, {int64_t(n.bias.size())}),
                        n.stride, n.pad, 1, n.groups);
      break;
    case GraphOp::linear:
      y = torch::linear(x, tensor_of(n.weight, n.weight_shape), tensor_of(n.bias, {int64_t(n.bias.size())}));
      break;
    case GraphOp::add: y = x + v.at(size_t(n.inputs.at(1))); break;
    case GraphOp::mul: y = x * n.scalar; break;
    case GraphOp::act: return activate(x, n.act);
    case GraphOp::avg_pool:
      return torch::avg_pool2d(x, {n.kernel, n.kernel}, {n.stride, n.stride}, {n.pad, n.pad}, false, false);
    case GraphOp::global_avg_pool: return x.mean({2, 3});
  }
  return n.act == "none" ? y : activate(y, n.act);
}

} // namespace

std::vector<torch::Tensor> run_graph(const Graph& g, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> v(g.tensors.size());
  v.at(size_t(g.input)) = x.to(torch::kFloat32).contiguous();
  for (const auto& n : g.nodes) v.at(size_t(n.output)) = run_node(n, v);
  return v;
}

std::vector<TensorRange> calibrate(const Graph& g, const torch::Tensor& images, int64_t batch) {
  if (images.size(0) == 0) throw UsageError("calibration needs at least one image");
  std::vector<TensorRange> r(g.tensors.size());
  for (int64_t i = 0; i < images.size(0); i += batch) {
    auto v = run_graph(g, images.slice(0, i, std::min(i + batch, images.size(0))));
    for (size_t t = 0; t < v.size(); ++t) {
      if (!v[t].defined()) continue;
      r[t].min = std::min(r[t].min, v[t].min().item<float>());
      r[t].max = std::max(r[t].max, v[t].max().item<float>());
    }
  }
  return r;
}

} // namespace nas::model
