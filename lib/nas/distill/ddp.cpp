// ddp: see ddp.h. The process group is c10d's (LibTorch's distributed library): ProcessGroupGloo
// needs Gloo's headers at build time (libgloo-dev: NAS_WITH_GLOO), ProcessGroupNCCL a CUDA build
// of LibTorch (NAS_WITH_CUDA; written to PyTorch's interface, not yet run on a GPU).
#include "nas/distill/ddp.h"
#include "nas/core/error.h"
#include "nas/core/text.h"

#include <cstdlib>
#include <map>
#include <optional>

#ifdef NAS_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef NAS_WITH_CUDA
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

#if defined(NAS_WITH_GLOO) || defined(NAS_WITH_CUDA)
#define NAS_WITH_C10D 1
#endif

namespace nas::distill {
namespace {

std::optional<int> env_int(const char* name, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end || n < lo || n > hi)
    throw UsageError(std::string(name) + ": expected a whole number in " + std::to_string(lo) + ".." + std::to_string(hi) +
                     ", got '" + v + "'");
  return int(n);
}

} // namespace

std::optional<Rendezvous> rendezvous_from_environment() {
  Rendezvous r;
  if (auto world = env_int(kWorldEnv, 1, 4096)) {
    r.world = *world;
    r.rank = env_int(kRankEnv, 0, r.world - 1).value_or(0);
    r.local_rank = r.rank;
    const char* f = std::getenv(kStoreEnv);
    if (!f || !*f) throw UsageError(std::string(kStoreEnv) + " is not set: a local rank needs the rendezvous file");
    r.file = f;
    return r;
  }
  auto world = env_int("SLURM_STEP_NUM_TASKS", 1, 1 << 20);
  if (!world) world = env_int("SLURM_NTASKS", 1, 1 << 20);
  const auto rank = env_int("SLURM_PROCID", 0, 1 << 20);
  if (!world || *world < 2 || !rank) return std::nullopt;
  if (*rank >= *world) throw UsageError("SLURM_PROCID " + std::to_string(*rank) + " is not below the " + std::to_string(*world) + " tasks");
  r.world = *world;
  r.rank = *rank;
  r.local_rank = env_int("SLURM_LOCALID", 0, 1 << 20).value_or(0);
  const char* addr = std::getenv("MASTER_ADDR");
  const auto port = env_int("MASTER_PORT", 1, 65535);
  if (!addr || !*addr || !port)
    throw UsageError("under srun with " + std::to_string(r.world) + " tasks the ranks meet at MASTER_ADDR:MASTER_PORT: set both "
                     "(templates/teacher.sbatch.in does)");
  r.master_addr = addr;
  r.master_port = *port;
  return r;
}

bool data_parallel_available(const torch::Device& device, std::string& why) {
  if (device.is_cuda()) {
#ifdef NAS_WITH_CUDA
    return true;
#else
    why = "this minnow was built without CUDA: no NCCL process group";
    return false;
#endif
  }
#ifdef NAS_WITH_GLOO
  return true;
#else
  why = "this minnow was built without Gloo's headers (libgloo-dev; scripts/install-deps installs it): "
        "no process group for data-parallel training on the CPU";
  return false;
#endif
}

#ifdef NAS_WITH_C10D

#if TORCH_VERSION_MAJOR >= 2
using ProcessGroup = c10d::Backend;   // LibTorch 2 splits the group's front from its backends
#else
using ProcessGroup = c10d::ProcessGroup;
#endif

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<ProcessGroup> pg;
};

namespace {

c10::intrusive_ptr<c10d::Store> make_store(const Rendezvous& r, std::chrono::milliseconds timeout) {
  if (!r.file.empty()) {
    auto s = c10::make_intrusive<c10d::FileStore>(r.file, r.world);
    s->setTimeout(timeout);
    return s;
  }
  c10d::TCPStoreOptions o;
  o.port = uint16_t(r.master_port);
  o.isServer = r.rank == 0;
  o.numWorkers = size_t(r.world);
  o.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(r.master_addr, o);
}

c10::intrusive_ptr<ProcessGroup> make_group(const Rendezvous& r, const torch::Device& device,
                                            const c10::intrusive_ptr<c10d::Store>& store,
                                            std::chrono::milliseconds timeout) {
#ifdef NAS_WITH_CUDA
  if (device.is_cuda()) {
    c10::cuda::set_device(device.index() < 0 ? 0 : device.index());
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, r.rank, r.world, o);
  }
#endif
#ifdef NAS_WITH_GLOO
  (void)device;
  auto o = c10d::ProcessGroupGloo::Options::create(timeout);
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  if (ifname && *ifname) o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  else if (!r.file.empty()) o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  else o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  o->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, r.rank, r.world, o);
#else
  (void)r, (void)device, (void)store, (void)timeout;
  throw UsageError("no process group for the CPU in this build");
#endif
}

// c10d reports a peer that went away, a timeout or a refused connection as c10::Error.
// Called from a handler: minnow's own errors go on as they are (their exit code), any other
// (LibTorch's, Gloo's) becomes an Error naming the collective.
[[noreturn]] void rethrow(const char* what, const std::exception& e) {
  if (dynamic_cast<const Error*>(&e)) throw;
  throw Error(std::string("data-parallel ") + what + ": " + first_line(e.what()));
}

} // namespace

DataParallel::DataParallel(const Rendezvous& r, const torch::Device& device, std::chrono::milliseconds timeout)
    : rank_(r.rank), world_(r.world), device_(device) {
  std::string why;
  if (!data_parallel_available(device, why)) throw UsageError(why);
  group_ = std::make_unique<Group>();
  try {
    group_->store = make_store(r, timeout);
    group_->pg = make_group(r, device, group_->store, timeout);
  } catch (const std::exception& e) {   // c10::Error, and Gloo's own (a peer gone, a timeout)
    rethrow("rendezvous", e);
  }
}

DataParallel::~DataParallel() = default;

// Flattens same-dtype tensors into buckets of at most bucket_bytes, starts every bucket's
// all-reduce, then waits for each and copies it back (times `scale` applied before the sum).
void DataParallel::allreduce_flat(std::vector<torch::Tensor>& tensors, double scale) {
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_type;
  for (auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  struct Bucket {
    std::vector<torch::Tensor> members;
    std::vector<torch::Tensor> flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  for (auto& [type, ts] : by_type) {
    int64_t bytes = 0;
    for (auto& t : ts) {
      const int64_t b = t.numel() * int64_t(t.element_size());
      if (buckets.empty() || buckets.back().members.front().scalar_type() != type || bytes + b > bucket_bytes) {
        buckets.emplace_back();
        bytes = 0;
      }
      buckets.back().members.push_back(t);
      bytes += b;
    }
  }
  try {
    for (auto& b : buckets) {
      std::vector<torch::Tensor> views;
      for (auto& t : b.members) views.push_back(t.reshape({-1}));
      torch::Tensor flat = torch::cat(views).to(device_);
      if (scale != 1) flat.mul_(scale);
      b.flat = {flat};
      b.work = group_->pg->allreduce(b.flat);
    }
    for (auto& b : buckets) {
      b.work->wait();
      int64_t at = 0;
      for (auto& t : b.members) {
        t.copy_(b.flat[0].narrow(0, at, t.numel()).view(t.sizes()));
        at += t.numel();
      }
    }
  } catch (const std::exception& e) {   // c10::Error, and Gloo's own (a peer gone, a timeout)
    rethrow("all-reduce", e);
  }
}

void DataParallel::broadcast_flat(std::vector<torch::Tensor> tensors) {
  if (tensors.empty()) return;
  std::map<c10::ScalarType, std::vector<torch::Tensor>> by_type;
  for (auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  try {
    for (auto& [type, ts] : by_type) {
      std::vector<torch::Tensor> views;
      for (auto& t : ts) views.push_back(t.reshape({-1}));
      std::vector<torch::Tensor> flat{torch::cat(views).to(device_)};
      group_->pg->broadcast(flat)->wait();   // root 0
      int64_t at = 0;
      for (auto& t : ts) {
        t.copy_(flat[0].narrow(0, at, t.numel()).view(t.sizes()));
        at += t.numel();
      }
    }
  } catch (const std::exception& e) {   // c10::Error, and Gloo's own (a peer gone, a timeout)
    rethrow("broadcast", e);
  }
}

void DataParallel::broadcast_parameters(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> ts = module.parameters();
  for (auto& b : module.buffers()) ts.push_back(b);
  broadcast_flat(ts);
}

void DataParallel::broadcast_buffers(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  broadcast_flat(module.buffers());
}

void DataParallel::allreduce_gradients(const std::vector<torch::Tensor>& params, double share) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  torch::NoGradGuard no_grad;
  allreduce_flat(grads, share);
}

void DataParallel::allreduce_sum(torch::Tensor& t) {
  std::vector<torch::Tensor> one{t.to(device_)};
  try {
    group_->pg->allreduce(one)->wait();
  } catch (const std::exception& e) {   // c10::Error, and Gloo's own (a peer gone, a timeout)
    rethrow("all-reduce", e);
  }
  t.copy_(one[0]);
}

bool DataParallel::any(bool flag) {
  torch::Tensor t = torch::full({1}, flag ? 1.0 : 0.0, torch::kFloat32);
  allreduce_sum(t);
  return t.item<float>() > 0;
}

void DataParallel::barrier() {
  try {
    group_->pg->barrier()->wait();
  } catch (const std::exception& e) {   // c10::Error, and Gloo's own (a peer gone, a timeout)
    rethrow("barrier", e);
  }
}

#else   // no process group in this build: the constructor refuses, nothing else is reachable

struct DataParallel::Group {};

DataParallel::DataParallel(const Rendezvous& r, const torch::Device& device, std::chrono::milliseconds)
    : rank_(r.rank), world_(r.world), device_(device) {
  std::string why;
  data_parallel_available(device, why);
  throw UsageError(why);
}
DataParallel::~DataParallel() = default;
void DataParallel::allreduce_flat(std::vector<torch::Tensor>&, double) {}
void DataParallel::broadcast_flat(std::vector<torch::Tensor>) {}
void DataParallel::broadcast_parameters(torch::nn::Module&) {}
void DataParallel::broadcast_buffers(torch::nn::Module&) {}
void DataParallel::allreduce_gradients(const std::vector<torch::Tensor>&, double) {}
void DataParallel::allreduce_sum(torch::Tensor&) {}
bool DataParallel::any(bool flag) { return flag; }
void DataParallel::barrier() {}

#endif

void make_data_parallel(DataParallel& dp, model::Network& net, train::FitPlan& plan, train::FitHooks& hooks) {
  dp.broadcast_parameters(*net);
  plan.rank = dp.rank();
  plan.world = dp.world();
  plan.write_checkpoint = dp.rank() == 0;
  std::vector<torch::Tensor> params = net->parameters();
  plan.after_backward = [&dp, &net, params](double share) {
    dp.allreduce_gradients(params, share);
    dp.broadcast_buffers(*net);
  };
  plan.reduce_sums = [&dp](torch::Tensor& sums) { dp.allreduce_sum(sums); };
  auto stop = hooks.should_stop;
  hooks.should_stop = [&dp, stop] { return dp.any(stop && stop()); };
}

} // namespace nas::distill
