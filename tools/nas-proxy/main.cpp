// nas-proxy: score candidates with zero-cost proxies, decide which enter training, and report
// how well each proxy predicted
#include "nas/app/cli.h"
#include "nas/app/proxy.h"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Score the sampled candidates of a study with zero-cost proxies (no training), combine them into\n"
               "an ensemble, queue the best for training and prune the rest; or (--report) compare each proxy's\n"
               "ranking with the trained trials' accuracy.",
               "nas-proxy"};
  nas::CommonOptions common;
  nas::app::ProxyOptions o;
  nas::add_common_options(app, common, true, true);
  bool no_select = false;
  app.add_option("--proxies", o.proxies, "proxies to compute, comma-separated [the study's [proxy] proxies]")
      ->delimiter(',')->option_text("LIST");
  app.add_option("--threads", o.threads, "candidates scored at once [[proxy] threads, or the cores]")
      ->option_text("N")
      ->check(nas::whole_number(1, 1024));
  app.add_option("--device", o.device, "where candidates are scored: cpu, cuda, cuda:N or auto [cpu]")->option_text("D");
  app.add_flag("--rescore", o.rescore, "score candidates again that already have scores");
  app.add_flag("--no-select", no_select, "only score (every trial, trained ones too): queue and prune nothing");
  app.add_flag("--report", o.report, "how well each proxy predicted, instead of scoring");
  app.add_option("--metric", o.metric, "--report: the metric to predict [val_acc]")->option_text("NAME");
  app.add_option("--rung", o.rung, "--report: only this rung [every rung with results]")->option_text("N");
  return nas::run_tool(app, common, argc, argv, [&] {
    o.db = nas::require_db(common);
    o.format = common.parsed_format();
    o.select = !no_select;
    return o.report ? nas::app::run_proxy_report(o, std::cout) : nas::app::run_proxy_score(o, std::cout);
  });
}
