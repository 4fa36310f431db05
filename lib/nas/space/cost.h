// cost: the analytic cost model of a genome, without building a network. Layer by layer, so
// that the model issue can compare each layer with the built torch module.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nas/space/genome.h"

namespace nas::space {

// What the cost model needs beyond the genome.
struct CostContext {
  std::vector<int64_t> input;     // C, H, W of one sample
  int64_t classes = 10;
  int64_t nb201_channels = 16;    // NB201 skeleton C
  int64_t nb201_cells = 5;        // NB201 skeleton N
  int bytes_per_element = 1;      // int8 deployment by default
};

// One parameterised or MAC-carrying layer (conv, batch norm, linear).
struct LayerCost {
  std::string name;               // e.g. "stage1.block0.expand.conv"
  std::string kind;               // conv | bn | linear
  int64_t params = 0;
  int64_t macs = 0;
  std::vector<int64_t> out;       // C, H, W (or features) of its output
};

struct Cost {
  int64_t params = 0;             // trainable parameters (conv weights, BN gamma/beta, linear weight+bias)
  int64_t macs = 0;               // multiply-accumulates of conv and linear layers, batch 1
  int64_t peak_activation_bytes = 0; // largest sum of tensors alive at once, layer-by-layer inference, batch 1
  int64_t weight_bytes = 0;       // params x bytes per element
  std::vector<LayerCost> layers;
};

// Throws UsageError for a genome that cannot be built for the context (e.g. NB201 on a
// non-square input smaller than 4x4). Counts past int64 saturate at INT64_MAX.
Cost estimate_cost(const space::Genome& g, const CostContext& ctx);

// Output size of a convolution or pooling with padding k/2.
inline int64_t conv_out(int64_t in, int64_t kernel, int64_t stride) {
  return (in + 2 * (kernel / 2) - kernel) / stride + 1;
}

} // namespace nas::space
