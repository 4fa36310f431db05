// nas-slurm: plan, render and submit a study's batch jobs (or run them locally), and follow them
#include "nas/app/cli.h"
#include "nas/app/slurm.h"

#include <filesystem>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Turn a study's queued trials into Slurm jobs: plan the packed training array (trainings per\n"
               "GPU, array size, GPU hours), render templates/*.sbatch.in into scripts, submit them as a chain\n"
               "(training array, then the Pareto report) or run the same scripts as local processes (--local),\n"
               "and show or cancel what was submitted.",
               "nas-slurm"};
  nas::CommonOptions common;
  nas::app::SlurmOptions o;
  nas::add_common_options(app, common, true, true);
  app.require_subcommand(1);
  auto* plan = app.add_subcommand("plan", "print the plan and the rendered scripts (nothing is submitted)");
  auto* submit = app.add_subcommand("submit", "render and submit the jobs, record their ids in the study file");
  auto* status = app.add_subcommand("status", "the study's progress next to the state of its jobs");
  auto* cancel = app.add_subcommand("cancel", "cancel the jobs of the latest submission");
  plan->add_flag("--dry-run", o.dry_run, "write the scripts to STUDY.d/slurm/plan/ instead of printing them");
  for (auto* sub : {plan, submit}) {
    sub->add_flag("--local", o.local, "plan or run the stages as processes on this machine, without Slurm");
    sub->add_option("--templates", o.templates, "folder of the *.sbatch.in templates [[slurm] templates, or the installed ones]")
        ->option_text("DIR");
    sub->add_option("--stages", o.stages, "stages in order, comma-separated: teacher, proxy, train, measure, pareto [teacher with --teacher-*, proxy when the study has sampled candidates, measure when [measure] asks]")
        ->delimiter(',')->option_text("LIST");
    sub->add_option("-o,--objective", o.objectives, "objective of the Pareto stage, NAME:min|max (repeat) [val_acc:max params:min]")
        ->option_text("OBJ");
    sub->add_option("--gpus", o.gpus, "GPUs the training array holds at a time [[slurm] gpus, 1]")->option_text("N");
    sub->add_option("--gpu-mem", o.gpu_mem, "memory of one GPU, e.g. 40GiB [[slurm] gpu_mem, 80GiB]")->option_text("SIZE");
    sub->add_option("--pack", o.pack, "trainings per GPU [[slurm] pack, or the packing planner]")->option_text("K");
    sub->add_option("--time", o.time, "time limit of an array task, HH:MM:SS or D-HH:MM:SS [[slurm] time, 04:00:00]")
        ->option_text("TIME");
    sub->add_option("--array-parallelism", o.array_parallelism, "array tasks at a time, the array's '%' [the GPUs]")
        ->option_text("N");
    sub->add_option("--partition", o.partition, "partition [[slurm] partition]")->option_text("NAME");
    sub->add_option("--account", o.account, "account [[slurm] account]")->option_text("NAME");
    sub->add_option("--qos", o.qos, "quality of service [[slurm] qos]")->option_text("NAME");
    sub->add_option("--teacher-genome", o.teacher_genome, "a teacher stage first: nas-distill teacher trains this network (JSON genome)")
        ->option_text("FILE");
    sub->add_option("--teacher-arch", o.teacher_arch, "a teacher stage first: this NAS-Bench-201 network")->option_text("STRING");
    sub->add_option("--teacher-epochs", o.teacher_epochs, "the teacher's epochs (needed with a teacher stage)")->option_text("N");
    sub->add_option("--teacher-nodes", o.teacher_nodes, "nodes the teacher trains on, data-parallel [1]")->option_text("N");
    sub->add_option("--teacher-ranks", o.teacher_ranks, "teacher ranks a node, one a GPU [1]")->option_text("N");
    sub->add_option("--teacher-time", o.teacher_time, "time limit of the teacher job [--time]")->option_text("TIME");
    sub->add_option("--teacher-mem", o.teacher_mem, "--mem of the teacher job, a node's [[slurm] memory x --teacher-ranks]")
        ->option_text("SIZE");
    sub->add_option("--teacher-augment", o.teacher_augment, "the teacher's own augmentations, crop and/or flip, e.g. crop,flip "
                                                            "(nas-distill teacher --augment) [none]")
        ->option_text("LIST")
        ->delimiter(',');
  }
  submit->add_flag("--wait", o.wait, "return when the jobs have ended (exit 1 when a local run failed)");
  for (auto* sub : {status, cancel}) sub->add_flag("--all", o.all, "every submission, not only the latest");
  for (auto* sub : {plan, submit, status, cancel}) {
    nas::add_subcommand_options(*sub, common);
  }
  return nas::run_tool(app, common, argc, argv, [&] {
    o.db = nas::require_db(common);
    o.format = common.parsed_format();
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    o.bin_dir = ec ? std::filesystem::absolute(argv[0]).parent_path().string() : exe.parent_path().string();
    if (plan->parsed()) return nas::app::run_slurm_plan(o, std::cout);
    if (submit->parsed()) return nas::app::run_slurm_submit(o, std::cout);
    if (status->parsed()) return nas::app::run_slurm_status(o, std::cout);
    return nas::app::run_slurm_cancel(o, std::cout);
  });
}
