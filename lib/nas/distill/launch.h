// launch: the local rank processes of a data-parallel command -- this program started again N
// times (/proc/self/exe, the same arguments), each told its rank and the rendezvous file
#pragma once
#include <memory>
#include <optional>
#include <string>

namespace nas::distill {

// When `ranks` > 1 and this process is not a rank already (no NAS_DDP_* variables, not an srun
// task of several): starts `ranks` copies of this process, rank r with NAS_DDP_RANK=r,
// NAS_DDP_WORLD=ranks and NAS_DDP_STORE a fresh file in `folder`; forwards SIGTERM/SIGINT/SIGUSR1
// to them; when one fails, stops the rest (TERM, then KILL after 10 s: they may be waiting in a
// collective for the failed one). Returns the exit code for the launcher: 0 when every rank
// exited 0, else the first failing rank's (1 for a rank killed by a signal). nullopt: this
// process is a rank, or the only one, and does the work itself. Throws Error when a process
// cannot be started.
std::optional<int> launch_local_ranks(int ranks, const std::string& folder);

class DataParallel;

// nas-distill teacher --ranks N (or under srun with several tasks): in the process the user
// started, checks that this build has a process group for `device` (UsageError if not), starts N
// local ranks (launch_local_ranks; their rendezvous file in `folder`) and returns its exit
// code. In a rank process: joins the group into `dp`, points `device` at the rank's GPU when it
// names CUDA without an index ("auto", "cuda": local rank modulo the GPUs), prefixes its log
// lines with the rank, and returns nullopt: train. Throws UsageError when --ranks disagrees with
// srun's task count.
std::optional<int> start_ranks(int ranks, const std::string& folder, std::string& device,
                               std::unique_ptr<DataParallel>& dp);

} // namespace nas::distill
