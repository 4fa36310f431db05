// generic: the `http` backend's protocol (generic.h) on HttpClient
#include "nas/measure/generic.h"
#include "nas/measure/reply.h"
#include "nas/core/error.h"

#include <algorithm>

namespace nas::measure {
namespace {

HttpOptions with_bearer(HttpOptions o) {
  if (o.auth_scheme.empty()) o.auth_scheme = "Bearer";
  return o;
}

const char* const kStatuses[] = {"queued", "running", "done", "error"};

Metrics read_results(const Reply& r) {
  Metrics out;
  const auto& list = r.array("results");
  for (size_t i = 0; i < list.size(); ++i) {
    const Reply m(list[i], r.endpoint(), "results[" + std::to_string(i) + "].");
    std::string name = m.str("metric");
    if (name.empty()) throw m.bad("metric", "is empty");
    out.push_back({std::move(name), m.num_or_null("value"), m.opt_str("unit").value_or("")});
  }
  return out;
}

} // namespace

GenericClient::GenericClient(HttpOptions opts, std::string token)
    : http_(with_bearer(std::move(opts)), std::move(token)) {}

std::string GenericClient::submit(const std::string& model_bytes, const std::string& filename,
                                  const std::string& target, const nlohmann::json& options,
                                  const std::string& key) const {
  if (key.empty()) throw UsageError("a generic http measurement needs an idempotency key");
  if (target.empty()) throw UsageError("a generic http measurement needs a target");
  if (!options.is_object()) throw UsageError("the options of a generic http measurement must be a JSON object");
  HttpRequest req;
  req.method = "POST";
  req.path = "/jobs";
  req.form = {{"model", model_bytes, filename.empty() ? "model.bin" : filename},
              {"target", target, ""},
              {"options", options.dump(), ""},
              {"key", key, ""}};
  req.idempotent = true;          // the key makes a repeat harmless (the protocol says so)
  const HttpResponse resp = http_.send(req);
  return Reply(resp.json, "POST /jobs").id("id");
}

JobState GenericClient::get(const std::string& id) const {
  const std::string endpoint = "GET /jobs/" + url_escape(id);
  const HttpResponse resp = http_.get("/jobs/" + url_escape(id));
  const Reply r(resp.json, endpoint);
  JobState s;
  s.id = r.id("id");
  s.status = r.str("status");
  if (std::find(std::begin(kStatuses), std::end(kStatuses), s.status) == std::end(kStatuses))
    throw r.bad("status", "is '" + s.status + "', not queued, running, done or error");
  s.message = r.opt_str("message").value_or("");
  if (s.status == "done") s.metrics = read_results(r);
  s.raw = resp.body;
  return s;
}

void GenericClient::cancel(const std::string& id) const { http_.del("/jobs/" + url_escape(id)); }

} // namespace nas::measure
