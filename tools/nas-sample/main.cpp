// nas-sample: create a study and add candidates to it -- sampled under constraints, or given
#include "nas/app/cli.h"
#include "nas/app/sample.h"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Create a study from its TOML file and add candidate architectures: N sampled uniformly\n"
               "under the constraints, or given ones (NB201 architecture strings, genome JSON lines).",
               "nas-sample"};
  nas::CommonOptions common;
  nas::app::SampleOptions o;
  std::string format, strategy;
  nas::add_common_options(app, common, true, false);
  app.add_option("--config", o.config, "study TOML; creates the study if the file has none")->option_text("FILE");
  app.add_flag("--replace-config", o.replace_config, "replace a different stored configuration");
  app.add_option("-n,--count", o.count, "sample N new unique candidates")->option_text("N")->check(nas::whole_number(0, 100000000));
  app.add_option("--strategy", strategy, "with -n: random, evolution or nsga2 (breeds N now) [search.strategy]")
      ->option_text("NAME");
  app.add_option("--arch", o.archs, "add an NB201 architecture string (repeatable)")->option_text("STRING");
  app.add_option("--genome", o.genome_file, "add genomes from FILE or - (JSON, one per line)")->option_text("FILE|-");
  app.add_flag("--queue", o.queue, "queue new candidates for training at once (no proxies)");
  app.add_option("--budget", o.budget, "with --queue: train them this many epochs [train.epochs]")
      ->option_text("EPOCHS")
      ->check(nas::whole_number(1, 100000));
  app.add_option("--format", format, "output: ids, table, tsv, csv or json [ids when sampling, table when adding]")
      ->option_text("FMT");
  return nas::run_tool(app, common, argc, argv, [&] {
    o.db = nas::require_db(common);
    if (!format.empty()) o.format = nas::app::parse_sample_format(format);
    if (!strategy.empty()) o.strategy = nas::app::parse_strategy_option(strategy);
    return nas::app::run_sample(o, std::cout);
  });
}
