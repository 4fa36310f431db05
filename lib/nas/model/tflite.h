// tflite: a Graph (graph.h) as a TFLite flatbuffer (schema version 3, NHWC), float32 or int8
// (post-training quantisation from calibrated ranges, TFLite's int8 specification). No LibTorch.
#pragma once
#include <string>
#include <vector>

#include "nas/model/graph.h"

namespace nas::model {

struct TfliteOptions {
  bool int8 = false;                              // full-integer int8 (input and output int8 too)
  const std::vector<TensorRange>* ranges = nullptr;  // per graph tensor; required for int8
  std::string description = "minnow";             // the Model's description string
};

// The file's bytes: one subgraph whose input is the graph's input as [1, H, W, C] and whose
// output is the graph's output ([1, classes]). Convolutions whose PyTorch padding differs from
// TFLite's SAME get an explicit PAD and VALID padding.
// Throws UsageError when int8 is asked without a finite range for every tensor, and Error for a
// graph TFLite cannot express (a grouped convolution that is not depthwise, an average pooling
// with padding that SAME does not reproduce, an unknown activation).
std::string write_tflite(const Graph& g, const TfliteOptions& opt);

// True when `bytes` is a well-formed TFLite flatbuffer of the schema subset minnow writes
// (the flatbuffers verifier, file identifier "TFL3"). Reads only `bytes`.
bool verify_tflite(const std::string& bytes);

} // namespace nas::model
