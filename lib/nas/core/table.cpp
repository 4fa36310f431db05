// table: aligned text, TSV, CSV and JSON output of rows
#include "nas/core/table.h"
#include "nas/core/error.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace nas {

Format parse_format(const std::string& s) {
  if (s == "table") return Format::table;
  if (s == "tsv") return Format::tsv;
  if (s == "csv") return Format::csv;
  if (s == "json") return Format::json;
  throw UsageError("--format: unknown format '" + s + "' (expected table, tsv, csv or json)");
}

void Table::add(std::vector<nlohmann::json> row) {
  row.resize(columns_.size());
  rows_.push_back(std::move(row));
}

std::string cell_text(const nlohmann::json& v, bool exact) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d)) return std::isnan(d) ? "nan" : (d > 0 ? "inf" : "-inf");
    char buf[40];
    // for people 6 significant digits; for scripts the shortest text that reads back exactly
    for (int p = 6; p <= 17; ++p) {
      std::snprintf(buf, sizeof buf, "%.*g", p, d);
      if (!exact || std::strtod(buf, nullptr) == d) break;
    }
    return buf;
  }
  return v.dump();
}

static std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

static std::string tsv_clean(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

nlohmann::json Table::to_json() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& r : rows_) {
    nlohmann::json o = nlohmann::json::object();
    for (size_t i = 0; i < columns_.size(); ++i) o[columns_[i]] = r[i];
    arr.push_back(std::move(o));
  }
  return arr;
}

void Table::write(std::ostream& out, Format f) const {
  switch (f) {
  case Format::json:
    out << to_json().dump(2) << "\n";
    return;
  case Format::tsv:
  case Format::csv: {
    const char* sep = f == Format::tsv ? "\t" : ",";
    auto cell = [&](const std::string& s) { return f == Format::tsv ? tsv_clean(s) : csv_quote(s); };
    for (size_t i = 0; i < columns_.size(); ++i) out << (i ? sep : "") << cell(columns_[i]);
    out << "\n";
    for (const auto& r : rows_) {
      for (size_t i = 0; i < r.size(); ++i) out << (i ? sep : "") << cell(cell_text(r[i], true));
      out << "\n";
    }
    return;
  }
  case Format::table: {
    std::vector<size_t> w(columns_.size());
    std::vector<bool> numeric(columns_.size(), true);
    for (size_t i = 0; i < columns_.size(); ++i) w[i] = columns_[i].size();
    std::vector<std::vector<std::string>> text;
    for (const auto& r : rows_) {
      std::vector<std::string> t;
      for (size_t i = 0; i < r.size(); ++i) {
        t.push_back(tsv_clean(cell_text(r[i], false)));
        w[i] = std::max(w[i], t.back().size());
        if (!r[i].is_number() && !r[i].is_null()) numeric[i] = false;
      }
      text.push_back(std::move(t));
    }
    auto line = [&](const std::vector<std::string>& cells) {
      std::string s;
      for (size_t i = 0; i < cells.size(); ++i) {
        std::string pad(w[i] - cells[i].size(), ' ');
        if (i) s += "  ";
        s += numeric[i] ? pad + cells[i] : cells[i] + (i + 1 < cells.size() ? pad : "");
      }
      out << s << "\n";
    };
    line(columns_);
    for (const auto& t : text) line(t);
    return;
  }
  }
}

} // namespace nas
