// token: the measurement service's API token (environment or a private file) and the password
// prompt of `nas-measure login` -- never argv, never a log line
#pragma once
#include <string>

namespace nas::measure {

// ~/.mimaas/token (the official client's file), from $HOME.
std::string default_token_path();

// The API token: the environment variable `env` when set and not empty, else the first line of
// the file `path` (default_token_path() when empty), white space trimmed. Throws UsageError when
// there is none ("no MIMaaS API token: set MIMAAS_API_TOKEN or run 'nas-measure login' ..."),
// when the file is readable or writable by group or others (naming the file and its mode), is
// owned by another user, is empty, or the token holds white space or control characters; throws
// FileError when the file exists but cannot be read. The token never appears in a message.
std::string load_token(const std::string& path = "", const std::string& env = "MIMAAS_API_TOKEN");

// Writes `token` and a newline to `path` atomically, mode 0600 from the first byte; a missing
// parent folder is created with mode 0700 (an existing one is left as it is). Throws UsageError
// for an empty token or one with white space or control characters, FileError when it cannot
// write.
void save_token(const std::string& path, const std::string& token);

// Reads one line from the terminal `tty_fd` with echo off, after writing `prompt` to it; the
// terminal's settings are restored afterwards (also when reading fails). The line break is not
// part of the result. Throws UsageError when `tty_fd` is not a terminal, nas::Error when reading
// fails or the input ends before a line.
std::string read_password(int tty_fd, const std::string& prompt);

// read_password on the process's controlling terminal (/dev/tty), so that a password never comes
// from argv or a pipe by accident. Throws UsageError when there is no terminal.
std::string read_password_from_terminal(const std::string& prompt);

} // namespace nas::measure
