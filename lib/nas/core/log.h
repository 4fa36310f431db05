// log: messages to stderr in the tools' common style ("nas-x: warning: ...")
#pragma once
#include <string>

namespace nas::log {

enum class Level { quiet = 0, normal = 1, verbose = 2, debug = 3 };

// Set once by the tool's main: the program name used as prefix, and the level.
void init(const std::string& program, Level level);
const std::string& program();
Level level();

void error(const std::string& msg);   // always printed
void warning(const std::string& msg); // unless quiet
void info(const std::string& msg);    // unless quiet
void verbose(const std::string& msg); // with -v
void debug(const std::string& msg);   // with -vv

// Live status lines (progress) on a TTY: line `slot` now reads `text`. The block of live lines
// stays below the log messages, redrawn at most 10 times a second; messages printed meanwhile
// appear above it. Does nothing when stderr is not a TTY or the level is quiet: callers then
// print plain periodic info() lines instead (live_enabled() says which).
bool live_enabled();
void live(int slot, const std::string& text);
// Removes the live block (at the end of the work).
void live_clear();

} // namespace nas::log
