// text: small string functions shared by the library (suggestions, joining, number formatting)
#pragma once
#include <string>
#include <vector>

namespace nas {

// The candidate closest to `word` by edit distance, or "" when none is close enough
// (distance at most a third of the word's length, at least 1...3).
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

// ", did you mean 'x'?" or "" -- for appending to an error message.
std::string suggestion_suffix(const std::string& word, const std::vector<std::string>& candidates);

std::string join(const std::vector<std::string>& parts, const std::string& sep);

// 'a', 'b', 'c' -- quoted list for messages.
std::string quoted_list(const std::vector<std::string>& parts);

// Human number: 1530000 -> "1.53M", 73306 -> "73.3k".
std::string human_count(double v);

// The shortest decimal text that reads back as the same double: 0.05 -> "0.05", 1e-06 -> "1e-06".
std::string format_number(double v);

// Seconds since the Unix epoch, with sub-second precision.
double now_unix();

// `s` with ASCII letters in lower case (other bytes unchanged; no locale).
std::string lower(std::string s);

// `s` without leading and trailing white space.
std::string trim(const std::string& s);

// `s` up to its first line break: a foreign library's message without what it appends on the
// lines after (LibTorch: "Exception raised from ..." and C++ stack frames, not for a user).
std::string first_line(const std::string& s);

// ISO-8601 UTC timestamp of a Unix time.
std::string iso_time(double unix_seconds);

} // namespace nas
