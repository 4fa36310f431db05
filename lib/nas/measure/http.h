// http: a small libcurl client for the measurement services: JSON and multipart calls with
// time-outs, retries with capped exponential backoff and full jitter, typed errors
//
// Retries. 429, 5xx and transport failures (connection refused or reset, time-outs, bodies cut
// short, a 2xx whose JSON does not parse) are retried up to max_attempts in all; before retry n
// the client waits a uniform random time in [0, min(backoff_max_s, backoff_s * 2^(n-1))] (full
// jitter), or what the answer's Retry-After asks (seconds or an HTTP date), capped at
// backoff_max_s. Other 4xx are never retried. A request that is not idempotent (a submission)
// is sent again only when the failure proves the server did not act on it (nothing was sent,
// or 429); otherwise its `reconcile` function is asked first whether the server did act (the
// MIMaaS client looks for its request by file name) and, without one, the failure is thrown.
//
// Security. TLS peer and host verification are always on (there is no switch); plain http://
// is accepted only for loopback hosts (tests). Redirects are not followed. The token travels in
// the Authorization header only and is replaced by "<token>" in every message, like any other
// secret the request names. A stop signal (nas::stop_requested) aborts a transfer or a wait.
#pragma once
#include "nas/measure/errors.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace nas::measure {

struct HttpOptions {
  std::string base_url;              // "https://host/api"; paths are appended to it
  double timeout_s = 120;            // whole transfer of each call (the official client's)
  double connect_timeout_s = 15;     // connection and TLS handshake of each call
  int max_attempts = 5;              // tries of one call, the first included (sends, and a
                                     // submission's look-ups of whether a lost send arrived)
  double backoff_s = 1;              // ceiling of the first retry's wait; doubles per retry
  double backoff_max_s = 60;         // cap of one wait, a Retry-After included
  std::optional<std::string> ca_file;   // PEM bundle to trust instead of the system's
  std::string auth_scheme;           // "" sends the raw token (MIMaaS); "Bearer" for the generic protocol
};

struct HttpResponse {
  long status = 0;
  std::string body;                          // bytes as received (after any Content-Encoding)
  std::map<std::string, std::string> headers;   // lower-case names: "retry-after", "content-type"
  nlohmann::json json;                       // the parsed body when the request expected JSON
  // The header's value, "" when absent; `name` in lower case.
  std::string header(const std::string& name) const;
};

// One part of a multipart/form-data body: a form field, or a file when `filename` is set.
struct FormPart {
  std::string name;
  std::string value;                 // the field's text or the file's bytes
  std::string filename;              // "" for a plain field
  std::string content_type = "application/octet-stream";   // of a file part
};

// Asked before a non-idempotent request is sent again after a failure that may have reached the
// server: the answer standing for the lost one when the server did act, else nullopt (send
// again). It may throw HttpError; a service_fault() one is retried like the request, and when
// the tries run out send() throws Unreachable saying that whether the server acted is unknown.
using Reconcile = std::function<std::optional<HttpResponse>()>;

struct HttpRequest {
  std::string method = "GET";        // GET, POST, PATCH, DELETE
  std::string path;                  // "/requests/12?x=y", appended to base_url; escaped by the caller
  std::string json_body;             // sent as application/json when set and `form` is empty
  std::vector<FormPart> form;        // sent as multipart/form-data when not empty
  bool idempotent = true;            // false: see Reconcile
  bool expect_json = true;           // a 2xx body must parse as JSON (into HttpResponse::json)
  std::vector<long> accept;          // non-2xx statuses returned instead of thrown (404 of an artifact)
  std::vector<std::string> secrets;  // scrubbed from messages besides the token (a password)
  Reconcile reconcile;
};

// Each call uses its own libcurl handle: one client may serve several threads at once.
class HttpClient {
public:
  // `token` goes into "Authorization: [auth_scheme ]token" ("" sends no header). Throws
  // UsageError for a base_url that is not https:// (or http:// to a loopback host), holds user
  // credentials, or for a token with characters a header cannot carry.
  HttpClient(HttpOptions opts, std::string token = {});

  // Sends `req` with the retries described above. Returns a 2xx answer (or one whose status is
  // in req.accept). Throws AuthError (401; 403 without "no available runs"), QuotaExhausted (403
  // with it), HttpError (other 4xx; 5xx or 429 after the last attempt), Unreachable (no answer
  // after the last attempt), ProtocolError (a 2xx body that never parsed as JSON), Interrupted.
  HttpResponse send(const HttpRequest& req) const;

  // send() of an idempotent request expecting JSON (del: any body). A POST that creates something (a submission)
  // is not idempotent: build its HttpRequest with idempotent = false and a reconcile function.
  HttpResponse get(const std::string& path) const;
  HttpResponse post_json(const std::string& path, const std::string& json) const;
  HttpResponse patch_json(const std::string& path, const std::string& json) const;
  HttpResponse del(const std::string& path) const;

  const HttpOptions& options() const { return opts_; }
  // `text` with the token and `extra` secrets replaced by "<token>" / "<secret>".
  std::string scrub(std::string text, const std::vector<std::string>& extra = {}) const;

private:
  HttpOptions opts_;
  std::string token_;
};

// The wait before retry `retry` (1 for the first retry) given a uniform `unit` in [0, 1):
// unit * min(backoff_max_s, backoff_s * 2^(retry-1)).
double backoff_delay(int retry, const HttpOptions& opts, double unit);

// Seconds to wait that a Retry-After value asks for, given the time now (Unix seconds):
// "120" -> 120, an HTTP date -> its distance from now (0 when past); nullopt when unreadable.
std::optional<double> parse_retry_after(const std::string& value, double now_unix);

// `text` percent-escaped for one path segment or query value.
std::string url_escape(const std::string& text);

// The server's explanation in an error answer: the JSON "message" (or "error") when the body is
// such an object, else the body's first line when it is short text, else "".
std::string server_message(const std::string& body);

// Throws what an answer of status `status` (not 2xx) means, as HttpClient::send does: AuthError,
// QuotaExhausted or HttpError, with the message "ENDPOINT: WHAT (STATUS)[: MESSAGE]".
// `message` is the server's explanation, already scrubbed of secrets.
// `note` is appended (" (after 5 attempts)").
[[noreturn]] void throw_status_error(const std::string& endpoint, long status, const std::string& message,
                                     const std::string& note = "");

} // namespace nas::measure
