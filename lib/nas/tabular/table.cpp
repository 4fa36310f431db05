// table: reading a NAS-Bench-201 CSV export
#include "nas/tabular/table.h"
#include "nas/core/error.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

namespace nas::tabular {
namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  for (std::string cell; std::getline(ss, cell, ',');) out.push_back(cell);
  return out;
}

size_t column_of(const std::vector<std::string>& header, const std::string& name, const std::string& path) {
  const auto it = std::find(header.begin(), header.end(), name);
  if (it == header.end()) throw UsageError("table '" + path + "' has no column '" + name + "'");
  return size_t(it - header.begin());
}

} // namespace

Nb201Table Nb201Table::load(const std::string& path, const std::string& column) {
  std::ifstream in(path);
  if (!in) throw UsageError("cannot open table '" + path + "': no such file or unreadable");
  std::string line;
  if (!std::getline(in, line)) throw UsageError("table '" + path + "' is empty");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = split_csv(line);
  const size_t arch = column_of(header, "ArchitectureString", path), acc = column_of(header, column, path);
  Nb201Table t;
  t.column_ = column;
  for (int n = 2; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto cells = split_csv(line);
    if (cells.size() <= std::max(arch, acc))
      throw UsageError("table '" + path + "', line " + std::to_string(n) + ": " + std::to_string(cells.size()) +
                       " columns, the header names " + std::to_string(header.size()));
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(cells.at(acc), &used);
      if (used != cells.at(acc).size()) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw UsageError("table '" + path + "', line " + std::to_string(n) + ": no number in column '" + column + "'");
    }
    t.acc_[cells.at(arch)] = v;
    t.best_ = std::max(t.best_, v);
  }
  if (t.acc_.empty()) throw UsageError("table '" + path + "' holds no architecture");
  return t;
}

std::optional<double> Nb201Table::accuracy(const std::string& arch) const {
  const auto it = acc_.find(arch);
  return it == acc_.end() ? std::nullopt : std::optional<double>(it->second);
}

} // namespace nas::tabular
