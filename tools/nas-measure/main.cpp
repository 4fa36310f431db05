// nas-measure: export trained trials' models and measure them on real hardware -- this node's
// CPU or GPU, or microcontroller boards of the MIMaaS platform -- into the study file
#include "nas/app/cli.h"
#include "nas/app/measure.h"

#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"Export the trained networks of a study's trials (TFLite float32 or int8, ONNX) and measure their\n"
               "latency, memory and energy: on this node (--backend local), on the microcontroller boards of\n"
               "MIMaaS (--backend mimaas) or on a service speaking the generic http protocol (--backend http).\n"
               "Every metric lands in the study file, where nas-pareto and the search's objectives use it.",
               "nas-measure"};
  nas::CommonOptions common;
  nas::app::MeasureFlags f;
  nas::add_common_options(app, common, true, true);
  nas::app::add_measure_options(app, f);
  app.require_subcommand(0, 1);
  auto* exp = app.add_subcommand("export", "write the model files of the trials (no measurement)");
  exp->add_option("--as", f.kinds, "tflite, tflite-int8 or onnx (repeat) [tflite-int8]")->option_text("KIND");
  nas::app::add_selection_options(*exp, f);
  nas::add_subcommand_options(*exp, common);
  auto* boards = app.add_subcommand("boards", "the platform's boards: memory, utilisation, queue");
  nas::add_subcommand_options(*boards, common);
  auto* status = app.add_subcommand("status", "the study's open requests and their queue positions, and the runs left");
  nas::add_subcommand_options(*status, common);
  auto* login = app.add_subcommand("login", "log in to MIMaaS (the password is read from the terminal) and save the token");
  login->add_option("--user", f.user, "the account's user name")->option_text("NAME")->required();
  nas::add_subcommand_options(*login, common, false);
  return nas::run_tool(app, common, argc, argv, [&] {
    if (exp->parsed()) return nas::app::run_measure_tool(nas::app::MeasureAction::export_files, f, common, std::cout);
    if (boards->parsed()) return nas::app::run_measure_tool(nas::app::MeasureAction::boards, f, common, std::cout);
    if (status->parsed()) return nas::app::run_measure_tool(nas::app::MeasureAction::status, f, common, std::cout);
    if (login->parsed()) return nas::app::run_measure_tool(nas::app::MeasureAction::login, f, common, std::cout);
    return nas::app::run_measure_tool(nas::app::MeasureAction::measure, f, common, std::cout);
  });
}
