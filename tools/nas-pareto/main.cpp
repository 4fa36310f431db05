// nas-pareto: the Pareto front of a study over any of its metrics, with hypervolume and plots
#include "nas/app/cli.h"
#include "nas/app/pareto.h"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Sort the trials of a study into Pareto fronts over two or more objectives (cost-model values,\n"
               "training results, proxy scores, measurements), print the front with its hypervolume and knee,\n"
               "and draw it as SVG; or show how the hypervolume grew as trials finished (--history).",
               "nas-pareto"};
  nas::CommonOptions common;
  nas::app::ParetoOptions o;
  nas::add_common_options(app, common, true, true);
  app.add_option("-o,--objective", o.objectives, "objective NAME:min|max (repeat; at least two)")
      ->option_text("NAME:DIR")->required();
  app.add_option("-w,--where", o.where, "keep trials where NAME OP NUMBER holds, e.g. 'rom_bytes<=1048576' (repeat)")
      ->option_text("COND");
  app.add_option("--rung", o.rung, "training results at this rung [the last rung reached]")->option_text("N");
  app.add_option("--reference", o.reference, "hypervolume reference point, one value per objective [nadir + 10% of the range]")
      ->option_text("V,V,...");
  app.add_option("--plot", o.plot, "write an SVG: the front (or the history with --history)")->option_text("FILE");
  app.add_flag("--history", o.history, "hypervolume after each finished trial, in finishing order");
  app.add_flag("--all", o.all, "list every trial with its front rank, not only the front");
  return nas::run_tool(app, common, argc, argv, [&] {
    o.db = nas::require_db(common);
    o.format = common.parsed_format();
    return nas::app::run_pareto(o, std::cout);
  });
}
