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

} // namespace nas::log
