// lower: a trained model::Network as an inference Graph (graph.h) -- batch norm folded into the
// preceding convolution, ReLU and ReLU6 fused into the operation before them where nothing else
// reads the unactivated value -- and the Graph run with LibTorch, for checking the lowering
// against the network and for calibrating int8 quantisation.
#pragma once
#include <torch/torch.h>

#include <map>
#include <utility>

#include "nas/model/graph.h"
#include "nas/model/network.h"

namespace nas::model {

// Appends operations to a Graph. The network's modules call it while lowering themselves
// (NetworkImpl::lower), so the structure of each block is written once, in network.cpp.
class GraphBuilder {
public:
  explicit GraphBuilder(Graph& g) : g_(g) {}
  int input(std::vector<int64_t> shape);
  // A convolution (weight OIHW) with its batch norm folded in when bn is given; padding as the
  // network's: kernel / 2 on every side.
  int conv(const std::string& name, int in, const torch::Tensor& weight, const torch::nn::BatchNorm2d& bn,
           int64_t stride, int64_t groups);
  // A batch norm on its own (NAS-Bench-201's last one): a depthwise 1 x 1 convolution.
  int batch_norm(const std::string& name, int in, const torch::nn::BatchNorm2d& bn);
  int linear(const std::string& name, int in, const torch::nn::Linear& l);
  int add(const std::string& name, int a, int b);
  int mul(const std::string& name, int in, float scalar);
  int avg_pool(const std::string& name, int in, int64_t kernel, int64_t stride, int64_t pad);
  int global_avg_pool(const std::string& name, int in);
  // The activation of `in`: fused into the operation that produced it when that is the last one
  // added, nothing else reads its output yet and the activation is relu or relu6; else an act node.
  int activate(const std::string& name, int in, const std::string& act);
  // An act node that is never fused and is shared: the same activation of the same tensor is
  // computed once (NAS-Bench-201 applies ReLU to a node once for each edge leaving it).
  int activate_shared(const std::string& name, int in, const std::string& act);
  void set_output(int t) { g_.output = t; }

private:
  int add_tensor(const std::string& name, std::vector<int64_t> shape);
  int push(GraphNode n, std::vector<int64_t> shape);
  const std::vector<int64_t>& shape(int t) const { return g_.tensors.at(size_t(t)).shape; }
  Graph& g_;
  std::vector<int> readers_;                      // per tensor: how many nodes read it
  std::map<std::pair<int, std::string>, int> shared_acts_;
};

// The inference graph of a trained network (batch norm with its running statistics); `mean`
// and `std` are the input normalisation the network was trained with (recorded in the graph).
Graph lower(Network& net, const std::vector<float>& mean, const std::vector<float>& std);

// Every tensor of the graph for the float32 batch x (N, C, H, W): result[i] is tensors[i].
std::vector<torch::Tensor> run_graph(const Graph& g, const torch::Tensor& x);

// The range of every tensor over `images` (N, C, H, W, normalised), in batches; each range
// includes 0, as int8 quantisation needs.
std::vector<TensorRange> calibrate(const Graph& g, const torch::Tensor& images, int64_t batch = 128);

} // namespace nas::model
