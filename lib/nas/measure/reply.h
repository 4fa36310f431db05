// reply: typed reads of a measurement service's JSON answer; a missing or mistyped field is a
// ProtocolError that names the endpoint and the field ("GET /requests/12: field 'result.rom_usage' ...")
#pragma once
#include "nas/measure/errors.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace nas::measure {

class Reply {
public:
  // `obj` must be a JSON object (else ProtocolError naming `where`, or "the answer"); it must
  // outlive the Reply. `where` prefixes field names in messages ("result.", "boards[2].").
  Reply(const nlohmann::json& obj, std::string endpoint, std::string where = "");

  std::string str(const std::string& key) const;                   // a string
  std::optional<std::string> opt_str(const std::string& key) const;   // absent or null: nullopt
  std::string id(const std::string& key) const;                    // a string or an integer, as text
  double num(const std::string& key) const;                         // a number
  std::optional<double> num_or_null(const std::string& key) const;    // present; null: nullopt
  std::optional<double> opt_num(const std::string& key) const;        // absent or null: nullopt
  int64_t integer(const std::string& key) const;                    // an integral number
  std::optional<int64_t> opt_int(const std::string& key) const;       // absent or null: nullopt
  bool boolean(const std::string& key) const;                       // true/false (or "true"/"false")
  Reply object(const std::string& key) const;                       // a nested object
  std::optional<Reply> opt_object(const std::string& key) const;     // absent or null: nullopt
  const nlohmann::json& array(const std::string& key) const;        // an array
  const nlohmann::json& json() const { return *obj_; }
  const std::string& endpoint() const { return endpoint_; }
  // A ProtocolError about field `key`: "ENDPOINT: field 'WHERE.KEY' PROBLEM".
  ProtocolError bad(const std::string& key, const std::string& problem) const;

private:
  const nlohmann::json& at(const std::string& key) const;   // present (null allowed)
  const nlohmann::json* obj_;
  std::string endpoint_;
  std::string where_;
};

} // namespace nas::measure
