// table: the one place where data for stdout is formatted (aligned table, TSV, CSV, JSON)
#pragma once
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace nas {

enum class Format { table, tsv, csv, json };

// Parses "table|tsv|csv|json"; throws UsageError naming the option otherwise.
Format parse_format(const std::string& s);

// Rows of typed cells (JSON values: numbers stay numbers in JSON, null prints empty).
class Table {
public:
  explicit Table(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  void add(std::vector<nlohmann::json> row);
  size_t size() const { return rows_.size(); }
  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<std::vector<nlohmann::json>>& rows() const { return rows_; }
  // Writes the rows in the format. table: aligned columns with a header; tsv/csv: header line
  // then rows (CSV quoted per RFC 4180); json: an array of objects.
  void write(std::ostream& out, Format f) const;
  // The rows as a JSON array of objects keyed by column name (what write prints for json).
  nlohmann::json to_json() const;
private:
  std::vector<std::string> columns_;
  std::vector<std::vector<nlohmann::json>> rows_;
};

// Text of one cell: null empty, numbers without trailing zeros -- 6 significant digits for
// people (exact = false, the table format) or the shortest text that reads back as the same
// double (exact = true, TSV and CSV).
std::string cell_text(const nlohmann::json& v, bool exact);

} // namespace nas
