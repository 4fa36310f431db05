// render: fills a batch-script template's {{NAME}} placeholders
#pragma once
#include <map>
#include <string>

namespace nas::slurm {

// Returns `text` with every {{NAME}} replaced by vars[NAME] (NAME: capitals, digits and '_').
// Throws ConfigError naming `source`, the line and the placeholder when a placeholder has no
// value or a "{{" is not closed; unused variables are fine. Nothing else in the text changes.
std::string render(const std::string& text, const std::map<std::string, std::string>& vars,
                   const std::string& source);

} // namespace nas::slurm
