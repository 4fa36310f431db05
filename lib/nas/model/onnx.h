// onnx: a Graph (graph.h) as an ONNX model (float32, NCHW, opset 13 to 18), the protobuf wire
// format written directly (ModelProto of onnx/onnx.proto, IR version 7 for opset 13, else 8).
// No LibTorch.
#pragma once
#include <cstdint>
#include <string>

#include "nas/model/graph.h"

namespace nas::model {

struct OnnxOptions {
  int64_t opset = 13;            // 13..18; HardSwish is an operator from 14 on, composed before
  bool dynamic_batch = true;     // the batch dimension named "N" instead of fixed at 1
  std::string producer = "minnow";
};

// The oldest and newest opset write_onnx accepts.
constexpr int64_t onnx_min_opset = 13, onnx_max_opset = 18;

// The file's bytes: graph input "input" {N, C, H, W}, output "logits" {N, classes}, every Graph
// tensor under its own name with its shape (value_info), weights as float32 initializers, and
// metadata_props "genome", "input_mean", "input_std" (JSON arrays), "input_layout" ("NCHW").
// Throws UsageError for an opset outside [onnx_min_opset, onnx_max_opset], Error for a graph it
// cannot write (an unknown activation, a fully-connected layer over a feature map).
std::string write_onnx(const Graph& g, const OnnxOptions& opt);

} // namespace nas::model
