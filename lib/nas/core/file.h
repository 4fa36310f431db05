// file: whole-file reads and crash-safe writes (a crash leaves the old file or the new one)
#pragma once
#include <string>
#include <string_view>

namespace nas {

// errno as the words of an error message: ENOENT -> "no such file", otherwise strerror in lower
// case ("permission denied", "is a directory").
std::string errno_text(int err);

// The whole contents of `path`, bytes unchanged. Throws FileError ("cannot open 'PATH': no such
// file", "... permission denied", "cannot read 'PATH': ...") when it cannot be read.
std::string read_file(const std::string& path);

// Replaces `path` with `bytes` atomically: written to temp_path_for(path) with permissions `mode`
// (less the umask), then commit_temp_file. The directory must exist. Throws FileError naming
// `path`; the temporary file is removed on failure and `path` is left as it was.
void write_file_atomic(const std::string& path, std::string_view bytes, unsigned mode = 0644);

// A temporary name next to `target`, unique to this process and thread
// ("TARGET.PID-THREAD.tmp"): two writers of one file never share a temporary.
std::string temp_path_for(const std::string& target);

// Moves the finished file `tmp` over `target`: fsyncs it, renames it and fsyncs the directory,
// so that after a crash `target` holds the old contents or the new ones. Throws FileError naming
// `target` and removes `tmp` when the rename fails.
void commit_temp_file(const std::string& tmp, const std::string& target);

// Removes the temporaries of `target` (temp_path_for's names, any process) that nobody has
// written for `older_than_s` seconds: those of a writer killed mid-write. Returns how many.
// A missing folder has none; a temporary that cannot be removed throws FileError.
int remove_stale_temps(const std::string& target, double older_than_s);

} // namespace nas
