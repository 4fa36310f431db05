// reply: typed reads of a JSON answer, with the field's place in every error
#include "nas/measure/reply.h"

#include <cmath>

namespace nas::measure {

Reply::Reply(const nlohmann::json& obj, std::string endpoint, std::string where)
    : obj_(&obj), endpoint_(std::move(endpoint)), where_(std::move(where)) {
  if (!obj.is_object()) {
    const std::string what = where_.empty() ? "the answer" : "field '" + where_.substr(0, where_.size() - 1) + "'";
    throw ProtocolError(endpoint_, 200, where_, endpoint_ + ": " + what + " is not a JSON object");
  }
}

ProtocolError Reply::bad(const std::string& key, const std::string& problem) const {
  return ProtocolError(endpoint_, 200, where_ + key, endpoint_ + ": field '" + where_ + key + "' " + problem);
}

const nlohmann::json& Reply::at(const std::string& key) const {
  auto it = obj_->find(key);
  if (it == obj_->end()) throw bad(key, "is missing");
  return *it;
}

std::string Reply::str(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_string()) throw bad(key, "is not a string");
  return v.get<std::string>();
}

std::optional<std::string> Reply::opt_str(const std::string& key) const {
  if (!obj_->contains(key) || (*obj_)[key].is_null()) return std::nullopt;
  return str(key);
}

std::string Reply::id(const std::string& key) const {
  const auto& v = at(key);
  if (v.is_string() && !v.get<std::string>().empty()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  throw bad(key, "is not an id (a string or an integer)");
}

double Reply::num(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_number()) throw bad(key, "is not a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) throw bad(key, "is not finite");
  return d;
}

std::optional<double> Reply::num_or_null(const std::string& key) const {
  if (at(key).is_null()) return std::nullopt;
  return num(key);
}

std::optional<double> Reply::opt_num(const std::string& key) const {
  if (!obj_->contains(key) || (*obj_)[key].is_null()) return std::nullopt;
  return num(key);
}

int64_t Reply::integer(const std::string& key) const {
  const double d = num(key);
  if (d != std::floor(d) || std::fabs(d) > 9e15) throw bad(key, "is not an integer");
  return int64_t(d);
}

std::optional<int64_t> Reply::opt_int(const std::string& key) const {
  if (!obj_->contains(key) || (*obj_)[key].is_null()) return std::nullopt;
  return integer(key);
}

bool Reply::boolean(const std::string& key) const {
  const auto& v = at(key);
  if (v.is_boolean()) return v.get<bool>();
  if (v == "true") return true;
  if (v == "false") return false;
  throw bad(key, "is not true or false");
}

Reply Reply::object(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_object()) throw bad(key, "is not a JSON object");
  return Reply(v, endpoint_, where_ + key + ".");
}

std::optional<Reply> Reply::opt_object(const std::string& key) const {
  if (!obj_->contains(key) || (*obj_)[key].is_null()) return std::nullopt;
  return object(key);
}

const nlohmann::json& Reply::array(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_array()) throw bad(key, "is not an array");
  return v;
}

} // namespace nas::measure
