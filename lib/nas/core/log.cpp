// log: messages to stderr; one write per line so that concurrent threads do not interleave
#include "nas/core/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

namespace nas::log {
namespace {
std::string g_program = "minnow";
Level g_level = Level::normal;
std::mutex g_mutex;
std::vector<std::string> g_live;        // the live block, one entry a slot
size_t g_live_drawn = 0;                // lines of it now on the screen
std::chrono::steady_clock::time_point g_live_at;

// With g_mutex held: the text that erases the drawn live block (cursor to its first line).
std::string erase_live() {
  std::string s;
  for (size_t i = 0; i < g_live_drawn; ++i) s += "\x1b[1A\x1b[2K";
  g_live_drawn = 0;
  return s;
}

std::string draw_live() {
  std::string s;
  for (const auto& l : g_live) s += l + "\n";
  g_live_drawn = g_live.size();
  return s;
}

void emit(const char* kind, const std::string& msg) {
  std::string line = g_program + ": ";
  if (kind) line += std::string(kind) + ": ";
  line += msg + "\n";
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_live_drawn) line = erase_live() + line + draw_live();
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

bool live_enabled() {
  static const bool tty = ::isatty(2) == 1;
  return tty && g_level >= Level::normal;
}

void live(int slot, const std::string& text) {
  if (!live_enabled() || slot < 0) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_live.size() <= size_t(slot)) g_live.resize(size_t(slot) + 1);
  g_live[size_t(slot)] = g_program + ": " + text;
  auto now = std::chrono::steady_clock::now();
  if (g_live_drawn == g_live.size() && now - g_live_at < std::chrono::milliseconds(100)) return;
  g_live_at = now;
  std::string s = erase_live() + draw_live();
  std::fwrite(s.data(), 1, s.size(), stderr);
  std::fflush(stderr);
}

void live_clear() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string s = erase_live();
  g_live.clear();
  std::fwrite(s.data(), 1, s.size(), stderr);
  std::fflush(stderr);
}

} // namespace nas::log
