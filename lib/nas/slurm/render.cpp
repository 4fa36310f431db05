// render: the template placeholders
#include "nas/slurm/render.h"
#include "nas/core/error.h"

#include <algorithm>

namespace nas::slurm {

std::string render(const std::string& text, const std::map<std::string, std::string>& vars,
                   const std::string& source) {
  std::string out;
  out.reserve(text.size() * 2);
  size_t at = 0;
  auto line_of = [&](size_t pos) { return 1 + int(std::count(text.begin(), text.begin() + long(pos), '\n')); };
  while (true) {
    size_t open = text.find("{{", at);
    if (open == std::string::npos) break;
    size_t close = text.find("}}", open + 2);
    size_t eol = text.find('\n', open);
    if (close == std::string::npos || (eol != std::string::npos && close > eol))
      throw ConfigError(source, line_of(open), int(open - text.rfind('\n', open)), "", "unclosed '{{' in the template");
    std::string name = text.substr(open + 2, close - open - 2);
    auto it = vars.find(name);
    if (it == vars.end())
      throw ConfigError(source, line_of(open), int(open - text.rfind('\n', open)), name,
                        "unknown placeholder '{{" + name + "}}' (see the list in the template's header)");
    out.append(text, at, open - at);
    out += it->second;
    at = close + 2;
  }
  out.append(text, at, std::string::npos);
  return out;
}

} // namespace nas::slurm
