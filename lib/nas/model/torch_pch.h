// torch_pch: the one precompiled header for translation units that include LibTorch
#pragma once
#include <torch/torch.h>
