// nb201: NAS-Bench-201 architecture strings (|op~0|+|op~0|op~1|+|op~0|op~1|op~2|)
#include "nas/core/error.h"
#include "nas/core/text.h"
#include "nas/space/genome.h"

#include <algorithm>

namespace nas::space {

const std::vector<std::string>& nb201_ops() {
  static const std::vector<std::string> ops = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"};
  return ops;
}

// Edge e goes from node kSrc[e] into node kDst[e].
static const int kSrc[6] = {0, 0, 1, 0, 1, 2};

std::string nb201_arch_string(const Nb201Genome& g) {
  std::string s = "|" + g.ops[0] + "~0|+|" + g.ops[1] + "~0|" + g.ops[2] + "~1|+|" + g.ops[3] + "~0|" + g.ops[4] +
                  "~1|" + g.ops[5] + "~2|";
  return s;
}

Nb201Genome parse_nb201_arch(const std::string& s) {
  auto bad = [&](const std::string& why) -> UsageError {
    return UsageError("bad architecture string '" + s + "': " + why +
                      " (expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|)");
  };
  // Split into node groups by "+", each group "|op~i|op~j|".
  std::vector<std::string> groups;
  size_t start = 0;
  while (true) {
    size_t p = s.find('+', start);
    groups.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  if (groups.size() != 3) throw bad("expected 3 node groups separated by '+', found " + std::to_string(groups.size()));
  Nb201Genome g;
  int edge = 0;
  for (size_t node = 0; node < 3; ++node) {
    const std::string& grp = groups[node];
    if (grp.size() < 2 || grp.front() != '|' || grp.back() != '|')
      throw bad("node group " + std::to_string(node + 1) + " must start and end with '|'");
    std::vector<std::string> items;
    size_t a = 1;
    while (a < grp.size()) {
      size_t b = grp.find('|', a);
      items.push_back(grp.substr(a, b - a));
      a = b + 1;
    }
    if (items.size() != node + 1)
      throw bad("node " + std::to_string(node + 1) + " needs " + std::to_string(node + 1) + " inputs, found " +
                std::to_string(items.size()));
    for (size_t i = 0; i < items.size(); ++i) {
      size_t t = items[i].find('~');
      if (t == std::string::npos) throw bad("'" + items[i] + "' has no '~INPUT'");
      std::string op = items[i].substr(0, t), src = items[i].substr(t + 1);
      const auto& ops = nb201_ops();
      if (std::find(ops.begin(), ops.end(), op) == ops.end())
        throw bad("unknown operation '" + op + "'" + suggestion_suffix(op, ops));
      if (src != std::to_string(kSrc[edge]))
        throw bad("'" + items[i] + "' should read from node " + std::to_string(kSrc[edge]));
      g.ops[size_t(edge)] = op;
      ++edge;
    }
  }
  return g;
}

} // namespace nas::space
