// nas-distill: train trials of a study by knowledge distillation from its teacher, and record
// that teacher
#include "nas/app/cli.h"
#include "nas/app/distill.h"
#include "nas/app/worker_options.h"
#include "nas/distill/run.h"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Train trials of a study as nas-train does, each trial that distills learning from the study's\n"
               "teacher by KD or DKD ([distill] in the study's TOML). 'nas-distill teacher' trains a teacher\n"
               "(--genome, --arch) or loads the TorchScript file [distill] names, checks it against the task,\n"
               "measures it, caches its soft targets and records it; run it once before the workers.",
               "nas-distill"};
  nas::CommonOptions common;
  nas::train::TrainOptions o;
  nas::app::WorkerFlags flags;
  nas::distill::TeacherOptions t;
  int64_t epochs = 0;
  nas::add_common_options(app, common, true, true);
  nas::app::add_worker_options(app, o, flags, "distill");
  nas::app::DistillReportOptions report;
  bool want_report = false;
  auto* r = app.add_flag("--report", want_report, "gain of each distilled trial over the same genome in --baseline, and its summary");
  app.add_option("--baseline", report.baseline, "--report: a study of the same genomes trained without distillation")
      ->option_text("FILE");
  r->excludes("--worker")->excludes("--trial");
  app.require_subcommand(0, 1);
  auto* teacher = app.add_subcommand("teacher", "train (--genome, --arch) or load the study's teacher, measure and record it");
  auto* g = teacher->add_option("--genome", t.genome_file, "train this network (a JSON genome, one line)")->option_text("FILE");
  auto* a = teacher->add_option("--arch", t.arch, "train this NAS-Bench-201 network")->option_text("STRING");
  g->excludes(a);
  auto* e = teacher->add_option("--epochs", epochs, "epochs to train the teacher")
                ->option_text("N")
                ->check(nas::whole_number(1, 100000));
  teacher->add_option("--device", t.device, "cpu, cuda, cuda:N or auto [auto]")->option_text("DEV");
  teacher->add_option("--threads", t.threads, "CPU threads [cores]")->option_text("N")->check(nas::whole_number(1, 1024));
  teacher->add_option("--ranks", t.ranks, "data-parallel training: N local processes, each its slice of every batch [1]")
      ->option_text("N")
      ->check(nas::whole_number(1, 64));
  teacher->add_option("--augment", t.augment, "the teacher's own augmentations, crop and/or flip, e.g. crop,flip ([data] "
                                              "crop_padding); its students' data stay as the study has them")
      ->option_text("LIST")
      ->delimiter(',');
  nas::add_subcommand_options(*teacher, common);
  return nas::run_tool(app, common, argc, argv, [&] {
    if (teacher->parsed()) {
      t.db = nas::require_db(common);
      t.format = common.parsed_format();
      if (*e) t.epochs = epochs;
      return nas::distill::run_teacher(t, std::cout);
    }
    if (want_report) {
      report.db = nas::require_db(common);
      report.format = common.parsed_format();
      return nas::app::run_distill_report(report, std::cout);
    }
    nas::app::apply_worker_flags(flags, common, o);
    return nas::distill::run_distill(o, std::cout);
  });
}
