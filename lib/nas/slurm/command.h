// command: runs Slurm's programs (sbatch, squeue, scancel, ...) without a shell
#pragma once
#include <string>
#include <vector>

namespace nas::slurm {

struct CommandResult {
  int rc = 0;                   // exit status; 128 + N when killed by signal N
  std::string out, err;
};

// Runs argv[0] (looked up on PATH) with the arguments, no shell between, and collects its
// output. Throws Error when the program cannot be started ("'sbatch' is not on PATH").
CommandResult run_command(const std::vector<std::string>& argv);

// True when `name` is an executable on PATH.
bool on_path(const std::string& name);

// "sbatch ... 'a b'": the command as a person would type it, for logs and --dry-run.
std::string shell_quote(const std::vector<std::string>& argv);

} // namespace nas::slurm
