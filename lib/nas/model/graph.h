// graph: a trained network as a flat list of inference operations, batch norm folded into the
// convolutions -- what the exporters (TFLite, ONNX) write and what int8 calibration observes.
// No LibTorch here: lower.h builds a Graph from a model::Network and runs it; the writers only
// read it. Layouts are PyTorch's (NCHW, OIHW); a writer transposes to its format's own.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nas::model {

// A value flowing between operations, without the batch dimension: {C, H, W} for feature maps,
// {F} after global pooling and for the fully-connected layers.
struct GraphTensor {
  std::string name;
  std::vector<int64_t> shape;
};

enum class GraphOp {
  conv,             // 2-d convolution, "same"-style symmetric padding `pad` on each side; groups ==
                    // in_channels == out_channels is a depthwise convolution
  linear,           // fully connected: out = W x + b
  add,              // elementwise sum of inputs[0] and inputs[1] (same shape)
  mul,              // inputs[0] times the constant `scalar` (NAS-Bench-201's "none" edge: 0)
  act,              // a standalone activation `act`: relu | relu6 | hswish | silu
  avg_pool,         // kernel x kernel, stride, pad; padding never counted in the average
  global_avg_pool,  // {C, H, W} -> {C}
};

struct GraphNode {
  GraphOp op = GraphOp::conv;
  std::string name;               // the cost model's layer name ("stage0.block1.dw.conv")
  std::vector<int> inputs;        // indices into Graph::tensors
  int output = -1;
  // conv, linear and add: a fused activation, "none" | "relu" | "relu6"; act: the activation
  std::string act = "none";
  int64_t kernel = 1, stride = 1, pad = 0, groups = 1;   // conv, avg_pool
  std::vector<int64_t> weight_shape;  // conv: {O, I / groups, k, k}; linear: {O, I}
  std::vector<float> weight;          // row-major in weight_shape
  std::vector<float> bias;            // {O}; conv and linear always have one (batch norm folded)
  float scalar = 0;                   // mul
};

struct Graph {
  std::vector<GraphTensor> tensors;
  std::vector<GraphNode> nodes;       // in execution order: every input is produced earlier
  int input = 0, output = 0;          // the input is normalised as in training (see `mean`, `std`)
  std::vector<float> mean, std;       // the training normalisation per input channel
  std::string genome;                 // canonical genome JSON, for the files' metadata
};

// The observed range of one tensor over calibration images (int8 quantisation); min <= 0 <= max.
struct TensorRange {
  float min = 0, max = 0;
};

// Output size of a convolution or pooling along one axis.
inline int64_t conv_out(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

const char* to_string(GraphOp op);

} // namespace nas::model
