// genome: one candidate architecture of a search-space family, its canonical JSON form and
// stable hash. Two genomes are the same candidate exactly when their canonical forms are equal.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nas::space {

// One stage of the `cnn` family: `depth` blocks of one type; the first block has the stride.
struct CnnStage {
  std::string block;          // conv | dwsep | mbconv | residual
  int64_t depth = 1;
  int64_t width = 16;         // output channels
  int64_t kernel = 3;
  int64_t stride = 1;
  int64_t expansion = 1;      // mbconv only (1 for the others, left out of the canonical form)
  std::string activation;     // relu | relu6 | hswish | silu
  bool operator==(const CnnStage& o) const;
};

struct CnnGenome {
  int64_t stem_width = 16, stem_kernel = 3, stem_stride = 1;
  std::string stem_activation = "relu";
  std::vector<CnnStage> stages;
  int64_t head_width = 0;     // 0: global pooling then the classifier; else a hidden layer first
  bool operator==(const CnnGenome& o) const;
};

// NAS-Bench-201 cell: the operation on each of the 6 edges, in the order of the architecture
// string |1<-0|+|2<-0|2<-1|+|3<-0|3<-1|3<-2|.
struct Nb201Genome {
  std::array<std::string, 6> ops;
  bool operator==(const Nb201Genome& o) const { return ops == o.ops; }
};

struct Genome {
  std::string family;         // cnn | nb201
  CnnGenome cnn;
  Nb201Genome nb201;
  bool operator==(const Genome& o) const;
};

// The canonical JSON object (sorted keys, no fields that do not apply).
nlohmann::json to_json(const Genome& g);
// Its compact text: what the database stores and hashes.
std::string canonical(const Genome& g);
// sha256 hex of canonical(g).
std::string genome_hash(const Genome& g);

// Parses a genome from JSON text (any key order, canonical or not). Throws UsageError naming
// the problem (unknown family, missing field, bad value) -- it checks structure, not
// membership of a search space.
Genome genome_from_json(const std::string& text);
Genome genome_from_value(const nlohmann::json& j);

// A short human-readable summary: the NB201 architecture string, or a compact stage list
// ("stem16k3s1 mbconv6:24x2k3s2 dwsep:32x1k5s1 head0").
std::string summary(const Genome& g);

// NB201 architecture strings.
std::string nb201_arch_string(const Nb201Genome& g);
// Throws UsageError quoting the string and saying what is wrong.
Nb201Genome parse_nb201_arch(const std::string& s);

// A network named on a command line for a study of `family`: the first non-blank line of the
// JSON genome file `file`, or else the NAS-Bench-201 string `arch`. UsageError naming the option
// (`file_option`, `arch_option`) for an unreadable, empty or malformed file or string, and for a
// network of another family than the study's (`study` names it in the message).
struct NamedGenome {
  std::string file, arch;                 // one of the two, the other empty
  std::string file_option, arch_option;   // how the command line calls them ("--genome")
};
Genome read_named_genome(const NamedGenome& n, const std::string& family, const std::string& study);

// The five NB201 operations, in the benchmark's order.
const std::vector<std::string>& nb201_ops();

} // namespace nas::space
