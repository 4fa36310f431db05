// ddp: data-parallel training on a c10d process group -- Gloo on the CPU, NCCL on CUDA -- for
// teachers too large for one device's time: every rank holds the whole network, trains its
// slice of each batch, and the gradients are all-reduced in buckets before every step
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "nas/model/network.h"
#include "nas/train/fit.h"

namespace nas::distill {

// Where a rank finds the others. Local processes meet in a file (c10d's FileStore, under the
// study's artifact folder); ranks started by srun at MASTER_ADDR:MASTER_PORT (TCPStore, served
// by rank 0).
struct Rendezvous {
  int rank = 0, world = 1;
  int local_rank = 0;              // on this host: picks the GPU
  std::string file;                // FileStore path, or ""
  std::string master_addr;         // TCPStore host, when file is ""
  int master_port = 0;
};

// The environment variables that mark a local rank process (set by the launcher).
inline constexpr const char* kRankEnv = "NAS_DDP_RANK";
inline constexpr const char* kWorldEnv = "NAS_DDP_WORLD";
inline constexpr const char* kStoreEnv = "NAS_DDP_STORE";

// This process's rendezvous, if it is a rank: NAS_DDP_RANK/NAS_DDP_WORLD/NAS_DDP_STORE (a local
// rank process), or SLURM_PROCID of SLURM_STEP_NUM_TASKS (else SLURM_NTASKS) > 1 under srun,
// with MASTER_ADDR and MASTER_PORT. nullopt: a single process. Throws UsageError for values
// out of range or a missing MASTER_ADDR/MASTER_PORT under srun.
std::optional<Rendezvous> rendezvous_from_environment();

// Whether this build has a process group for `device`: Gloo (libgloo-dev at build time) for
// the CPU, NCCL for CUDA builds. Otherwise `why` says what is missing.
bool data_parallel_available(const torch::Device& device, std::string& why);

class DataParallel {
public:
  // Joins the group of r.world ranks (blocks until all have joined, up to `timeout`). Collective
  // calls below must be made by every rank in the same order. Throws UsageError when the build
  // has no process group for `device`, Error when the rendezvous fails.
  DataParallel(const Rendezvous& r, const torch::Device& device,
               std::chrono::milliseconds timeout = std::chrono::minutes(10));
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return rank_; }
  int world() const { return world_; }

  // Rank 0's parameters and buffers copied into every rank's `module` (same architecture): all
  // ranks start identical.
  void broadcast_parameters(torch::nn::Module& module);
  // Rank 0's buffers (batch-norm running statistics) copied to every rank, as PyTorch's DDP
  // does on every forward: each rank's statistics come from its own slice.
  void broadcast_buffers(torch::nn::Module& module);
  // Each gradient becomes the sum over ranks of share x the rank's gradient (share: the rank's
  // samples / the batch's; 1/world for equal slices): flattened into buckets of at most
  // bucket_bytes per dtype, all-reduced bucket by bucket (all in flight at once), copied back.
  // Parameters without a gradient are skipped (the same on every rank: the graph decides).
  void allreduce_gradients(const std::vector<torch::Tensor>& params, double share);
  // Sums `t` over the ranks, in place (any device; moved to the group's and back).
  void allreduce_sum(torch::Tensor& t);
  // Whether `flag` is true on any rank (a stop request seen by one stops all).
  bool any(bool flag);
  void barrier();

  int64_t bucket_bytes = 25 << 20;   // PyTorch DDP's default bucket size

private:
  void allreduce_flat(std::vector<torch::Tensor>& tensors, double scale);
  void broadcast_flat(std::vector<torch::Tensor> tensors);
  struct Group;
  std::unique_ptr<Group> group_;
  int rank_ = 0, world_ = 1;
  torch::Device device_;
};

// Makes `plan` and `hooks` data-parallel over `dp`: this rank's slice of every batch, the
// gradients all-reduced after backward and rank 0's batch-norm statistics broadcast, the loss
// sums reduced, a stop request on any rank stopping all, and the checkpoint written by rank 0
// only. Broadcasts rank 0's weights into `net` first.
void make_data_parallel(DataParallel& dp, model::Network& net, train::FitPlan& plan, train::FitHooks& hooks);

} // namespace nas::distill
