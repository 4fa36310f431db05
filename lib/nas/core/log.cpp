// log: messages to stderr; one write per line so that concurrent threads do not interleave
#include "nas/core/log.h"

#include <cstdio>
#include <mutex>

namespace nas::log {
namespace {
std::string g_program = "minnow";
Level g_level = Level::normal;
std::mutex g_mutex;

void emit(const char* kind, const std::string& msg) {
  std::string line = g_program + ": ";
  if (kind) line += std::string(kind) + ": ";
  line += msg + "\n";
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}
} // namespace

void init(const std::string& program, Level level) { g_program = program; g_level = level; }
const std::string& program() { return g_program; }
Level level() { return g_level; }

void error(const std::string& msg) { emit("error", msg); }
void warning(const std::string& msg) { if (g_level >= Level::normal) emit("warning", msg); }
void info(const std::string& msg) { if (g_level >= Level::normal) emit(nullptr, msg); }
void verbose(const std::string& msg) { if (g_level >= Level::verbose) emit(nullptr, msg); }
void debug(const std::string& msg) { if (g_level >= Level::debug) emit("debug", msg); }

} // namespace nas::log
