// job: a table lookup in place of training
#include "nas/tabular/job.h"
#include "nas/search/policy.h"
#include "nas/space/genome.h"
#include "nas/space/sampler.h"
#include "nas/store/db.h"
#include "nas/store/queue.h"
#include "nas/store/results.h"

namespace nas::tabular {

double simulated_train_s(int64_t macs, double epochs, int64_t samples, double flops_per_s) {
  return 6.0 * double(macs) * double(samples) * epochs / flops_per_s;
}

TableJob::TableJob(const config::StudyConfig& cfg, const Nb201Table& table)
    : cfg_(cfg), table_(table), ctx_(space::cost_context(cfg)) {}

worker::JobResult TableJob::run(worker::Slot& slot, const store::Claim& claim) {
  const space::Genome g = space::genome_from_json(claim.genome);
  if (g.family != "nb201") throw worker::TrialFailed("error", "the table holds nb201 cells, not '" + g.family + "' genomes", false);
  const std::string arch = space::nb201_arch_string(g.nb201);
  const auto acc = table_.accuracy(arch);
  if (!acc) throw worker::TrialFailed("not in table", "'" + arch + "' is not in the table", false);
  const double epochs = claim.budget.value_or(double(cfg_.train.epochs));
  const int64_t samples = cfg_.data.train_samples - int64_t(double(cfg_.data.train_samples) * cfg_.data.validation);
  const double wall = simulated_train_s(space::estimate_cost(g, ctx_).macs, epochs, samples, cfg_.slurm.throughput);
  const std::string note = "table '" + table_.column() + "': test accuracy after 200 epochs at every rung";
  const std::vector<store::ResultValue> results = {
      {"val_acc", *acc / 100, "", note + " (the search sees test accuracies: optimistic)"},
      {"test_acc", *acc / 100, "", note},
      {"epochs", epochs, "epoch", "simulated"},
      {"wall_s", wall, "s", "simulated from MACs at [slurm] throughput"},
  };
  const auto to = epochs >= search::last_budget(cfg_) ? store::TrialState::done : store::TrialState::paused;
  store::Db& db = slot.db();
  db.write([&] {
    store::record_results(db, claim.trial_id, claim.rung, results);
    store::finish(db, claim.trial_id, slot.worker_id(), to);
  });
  worker::JobResult r;
  r.state = to;
  r.values = {*acc / 100, wall};
  return r;
}

} // namespace nas::tabular
