// job: the table job -- a worker::Job that "trains" an nb201 trial by looking up its accuracy in
// a tabular benchmark, with the training time simulated from its MACs, so that a search strategy
// runs thousands of evaluations in seconds through the real worker, queue and promotion code
#pragma once
#include <string>
#include <vector>

#include "nas/config/study_config.h"
#include "nas/space/cost.h"
#include "nas/tabular/table.h"
#include "nas/worker/worker.h"

namespace nas::tabular {

// The simulated seconds of training a network of `macs` for `epochs` epochs over `samples`
// samples at `flops_per_s`: 6 FLOPs a MAC and sample (2 a MAC, forward and twice backward).
double simulated_train_s(int64_t macs, double epochs, int64_t samples, double flops_per_s);

class TableJob : public worker::Job {
public:
  // `cfg` and `table` must outlive the job.
  TableJob(const config::StudyConfig& cfg, const Nb201Table& table);
  std::string verb() const override { return "look up"; }
  std::vector<std::string> columns() const override { return {"val_acc", "wall_s"}; }
  // Records val_acc and test_acc (both the table's value: it holds test accuracies only),
  // epochs and the simulated wall_s at the claim's rung and finishes the trial (paused below the
  // last budget, done at it), in one transaction. Throws TrialFailed (no retry) for a genome
  // the table lacks.
  worker::JobResult run(worker::Slot& slot, const store::Claim& claim) override;
private:
  const config::StudyConfig& cfg_;
  const Nb201Table& table_;
  space::CostContext ctx_;
};

} // namespace nas::tabular
