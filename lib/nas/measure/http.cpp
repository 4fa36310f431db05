// http: one libcurl easy handle per call (thread-safe without locks), retries around it
#include "nas/measure/http.h"
#include "nas/core/log.h"
#include "nas/core/signals.h"
#include "nas/core/text.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

namespace nas::measure {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

using Easy = std::unique_ptr<CURL, void (*)(CURL*)>;
using Slist = std::unique_ptr<curl_slist, void (*)(curl_slist*)>;
using Mime = std::unique_ptr<curl_mime, void (*)(curl_mime*)>;
using Url = std::unique_ptr<CURLU, void (*)(CURLU*)>;

// Why a try failed, as much as the retry loop and the final message need.
struct Failure {
  enum Kind { transport, http_status, malformed } kind = transport;
  long status = 0;
  std::string detail;                  // scrubbed
  bool retryable = false;
  bool reached = true;                 // the server may have acted on the request
  std::optional<double> retry_after;
};

size_t on_body(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

size_t on_header(char* p, size_t size, size_t n, void* out) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(out);
  const std::string line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();                  // a new answer begins (after a 100 Continue)
  } else if (auto colon = line.find(':'); colon != std::string::npos) {
    (*headers)[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return size * n;
}

int on_progress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) { return stop_requested() ? 1 : 0; }

bool loopback(const std::string& host) {
  return host == "localhost" || host == "[::1]" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string url_part(CURLU* u, CURLUPart part) {
  char* p = nullptr;
  if (curl_url_get(u, part, &p, 0) != CURLUE_OK || !p) return "";
  std::string s(p);
  curl_free(p);
  return s;
}

void check_base_url(const std::string& url) {
  Url u(curl_url(), curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    throw UsageError("measurement service URL '" + url + "' is not a URL");
  if (!url_part(u.get(), CURLUPART_USER).empty() || !url_part(u.get(), CURLUPART_PASSWORD).empty())
    throw UsageError("the measurement service URL must not hold credentials (user:password@): the token goes "
                     "in a header");
  const std::string scheme = lower(url_part(u.get(), CURLUPART_SCHEME));
  const std::string host = url_part(u.get(), CURLUPART_HOST);
  if (scheme == "https") return;
  if (scheme == "http" && loopback(host)) return;
  if (scheme == "http")
    throw UsageError("measurement service URL '" + url + "': plain http:// is allowed only to a loopback host, "
                     "use https://");
  throw UsageError("measurement service URL '" + url + "': scheme '" + scheme + "' is not https");
}

bool header_safe(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

bool transport_retryable(CURLcode code) {
  switch (code) {
  case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT:
  case CURLE_PARTIAL_FILE: case CURLE_GOT_NOTHING: case CURLE_SEND_ERROR: case CURLE_RECV_ERROR:
  case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_BAD_CONTENT_ENCODING:
    return true;
  default:
    return false;
  }
}

double uniform01() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// Sleeps `seconds`, waking every 50 ms to honour a stop signal.
void pause(double seconds, const std::string& endpoint) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (stop_requested()) throw Interrupted(endpoint);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    std::this_thread::sleep_for(std::clamp(left, std::chrono::milliseconds(1), std::chrono::milliseconds(50)));
  }
}

std::string attempts_note(int n) { return n > 1 ? " (after " + std::to_string(n) + " attempts)" : ""; }

} // namespace

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

double backoff_delay(int retry, const HttpOptions& opts, double unit) {
  const double ceiling = std::min(opts.backoff_max_s, std::ldexp(opts.backoff_s, std::clamp(retry - 1, 0, 60)));
  return std::max(0.0, unit * ceiling);
}

std::optional<double> parse_retry_after(const std::string& value, double now_unix) {
  const std::string v = trim(value);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); }))
    return v.size() > 9 ? 1e9 : std::stod(v);
  const time_t t = curl_getdate(v.c_str(), nullptr);
  if (t == -1) return std::nullopt;
  return std::max(0.0, double(t) - now_unix);
}

std::string url_escape(const std::string& text) {
  global_init();
  char* p = curl_escape(text.data(), int(text.size()));
  if (!p) throw nas::Error("cannot escape a URL part (out of memory)");
  std::string s(p);
  curl_free(p);
  return s;
}

std::string server_message(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    for (const char* key : {"message", "error", "detail"})
      if (j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
    return "";
  }
  std::string line = first_line(trim(body));
  if (line.empty() || line[0] == '<') return "";      // an HTML page says nothing useful
  return line.size() > 200 ? line.substr(0, 200) + "..." : line;
}

void throw_status_error(const std::string& endpoint, long status, const std::string& message,
                        const std::string& note) {
  auto text = [&](const std::string& what) {
    return endpoint + ": " + what + " (" + std::to_string(status) + ")" + (message.empty() ? "" : ": " + message) +
           note;
  };
  if (status == 401) throw AuthError(endpoint, status, text("authentication failed"));
  if (status == 403) {
    if (lower(message).find("no available runs") != std::string::npos)
      throw QuotaExhausted(endpoint, text("quota exhausted"));
    throw AuthError(endpoint, status, text("access refused"));
  }
  const bool service = status >= 500 || status == 429;
  const char* what = status >= 500 ? "server error" : status == 429 ? "too many requests"
                   : status == 404 ? "not found" : "request refused";
  throw HttpError(endpoint, status, text(what), service);
}

HttpClient::HttpClient(HttpOptions opts, std::string token) : opts_(std::move(opts)), token_(std::move(token)) {
  global_init();
  while (!opts_.base_url.empty() && opts_.base_url.back() == '/') opts_.base_url.pop_back();
  check_base_url(opts_.base_url);
  if (!header_safe(token_) || !header_safe(opts_.auth_scheme))
    throw UsageError("the API token holds characters an HTTP header cannot carry (spaces or control characters)");
  if (opts_.max_attempts < 1) throw UsageError("max_attempts must be at least 1");
}

std::string HttpClient::scrub(std::string text, const std::vector<std::string>& extra) const {
  auto replace = [&](const std::string& secret, const std::string& with) {
    if (secret.empty()) return;
    for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + with.size()))
      text.replace(at, secret.size(), with);
  };
  replace(token_, "<token>");
  for (const auto& s : extra) replace(s, "<secret>");
  return text;
}

namespace {

// The headers and body of `req` on `e`; returns what must live until the transfer ends.
std::pair<Slist, Mime> set_request(CURL* e, const HttpRequest& req, const std::string& auth) {
  Slist headers(nullptr, curl_slist_free_all);
  Mime mime(nullptr, curl_mime_free);
  auto add = [&](const std::string& h) {
    curl_slist* l = curl_slist_append(headers.get(), h.c_str());
    if (!l) throw nas::Error("cannot build an HTTP request (out of memory)");
    headers.release();
    headers.reset(l);
  };
  add(req.expect_json ? "Accept: application/json" : "Accept: */*");
  add("Expect:");                                  // no 100-continue round trip for uploads
  if (!auth.empty()) add("Authorization: " + auth);
  if (!req.form.empty()) {
    mime.reset(curl_mime_init(e));
    for (const auto& f : req.form) {
      curl_mimepart* part = curl_mime_addpart(mime.get());
      curl_mime_name(part, f.name.c_str());
      curl_mime_data(part, f.value.data(), f.value.size());
      if (!f.filename.empty()) {
        curl_mime_filename(part, f.filename.c_str());
        curl_mime_type(part, f.content_type.c_str());
      }
    }
    curl_easy_setopt(e, CURLOPT_MIMEPOST, mime.get());
  } else if (req.method == "POST" || req.method == "PATCH") {
    if (!req.json_body.empty()) add("Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.json_body.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(req.json_body.size()));
  } else if (req.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  }
  if (req.method != "GET" && req.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
  return {std::move(headers), std::move(mime)};
}

void set_transport(CURL* e, const HttpOptions& o) {
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, long(std::ceil(o.timeout_s * 1000)));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, long(std::ceil(o.connect_timeout_s * 1000)));
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (o.ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, o.ca_file->c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, long(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "minnow-nas-measure");
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
}

} // namespace

// One try: the answer, or why it failed. Throws the errors that are never retried.
static std::pair<std::optional<HttpResponse>, Failure> try_once(const HttpClient& c, const HttpRequest& req,
                                                                 const std::string& endpoint,
                                                                 const std::string& auth) {
  Easy e(curl_easy_init(), curl_easy_cleanup);
  if (!e) throw nas::Error("cannot start a libcurl transfer (out of memory)");
  HttpResponse resp;
  char errbuf[CURL_ERROR_SIZE] = {0};
  set_transport(e.get(), c.options());
  const std::string url = c.options().base_url + req.path;
  curl_easy_setopt(e.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(e.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e.get(), CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(e.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e.get(), CURLOPT_HEADERDATA, &resp.headers);
  auto keep = set_request(e.get(), req, auth);
  const CURLcode code = curl_easy_perform(e.get());
  long sent = 0;
  curl_easy_getinfo(e.get(), CURLINFO_REQUEST_SIZE, &sent);
  curl_easy_getinfo(e.get(), CURLINFO_RESPONSE_CODE, &resp.status);
  Failure f;
  if (code == CURLE_ABORTED_BY_CALLBACK && stop_requested()) throw Interrupted(endpoint);
  if (code != CURLE_OK) {
    f.detail = c.scrub(lower(errbuf[0] ? errbuf : curl_easy_strerror(code)), req.secrets);
    f.retryable = transport_retryable(code);
    f.reached = sent > 0;
    return {std::nullopt, f};
  }
  const bool ok = resp.status >= 200 && resp.status < 300;
  if (ok && req.expect_json) {
    try {
      resp.json = nlohmann::json::parse(resp.body);
    } catch (const nlohmann::json::parse_error& err) {   // its text may quote the body: not used
      f.kind = Failure::malformed;
      f.status = resp.status;
      f.detail = "the answer is not JSON (" + std::to_string(resp.body.size()) + " bytes, bad at byte " +
                 std::to_string(err.byte) + ")";
      f.retryable = true;
      return {std::nullopt, f};
    }
  }
  if (ok || std::find(req.accept.begin(), req.accept.end(), resp.status) != req.accept.end())
    return {std::move(resp), f};
  const std::string message = c.scrub(server_message(resp.body), req.secrets);
  if (resp.status != 429 && resp.status < 500) throw_status_error(endpoint, resp.status, message);
  f.kind = Failure::http_status;
  f.status = resp.status;
  f.detail = message;
  f.retryable = true;
  f.reached = resp.status != 429;
  if (auto ra = resp.headers.find("retry-after"); ra != resp.headers.end())
    f.retry_after = parse_retry_after(ra->second, now_unix());
  return {std::nullopt, f};
}

[[noreturn]] static void throw_failure(const Failure& f, const std::string& endpoint, const std::string& base, int sends,
                               const std::string& extra) {
  const std::string note = attempts_note(sends) + extra;
  if (f.kind == Failure::http_status) throw_status_error(endpoint, f.status, f.detail, note);
  if (f.kind == Failure::malformed) throw ProtocolError(endpoint, f.status, "", endpoint + ": " + f.detail + note);
  throw Unreachable(endpoint, endpoint + ": no answer from '" + base + "': " + f.detail + note);
}

HttpResponse HttpClient::send(const HttpRequest& req) const {
  const std::string endpoint = req.method + " " + req.path;
  const std::string auth = token_.empty() ? "" : (opts_.auth_scheme.empty() ? "" : opts_.auth_scheme + " ") + token_;
  Failure last;
  bool must_reconcile = false;
  int sends = 0;
  for (int n = 1;; ++n) {
    if (n > 1) {
      const double wait = last.retry_after ? std::min(*last.retry_after, opts_.backoff_max_s)
                                           : backoff_delay(n - 1, opts_, uniform01());
      log::verbose(scrub(endpoint + ": " + (last.detail.empty() ? "failed" : last.detail) + "; try " +
                         std::to_string(n) + " of " + std::to_string(opts_.max_attempts) + " in " +
                         format_number(std::round(wait * 1000) / 1000) + " s", req.secrets));
      pause(wait, endpoint);
    }
    if (must_reconcile) {
      try {
        if (auto found = req.reconcile()) return *found;
        must_reconcile = false;
      } catch (const Interrupted&) {
        throw;
      } catch (const HttpError& e) {
        if (!e.service_fault()) throw;
        if (n >= opts_.max_attempts)      // the caller must look again before sending it anew
          throw Unreachable(endpoint, endpoint + ": the answer was lost and whether the server acted on it is "
                                      "unknown" + attempts_note(n) + "; the last look-up: " + e.what());
        last = Failure{Failure::transport, 0, "looking up whether the last try arrived failed", true, true, {}};
        continue;
      }
    }
    ++sends;
    auto [resp, f] = try_once(*this, req, endpoint, auth);
    if (resp) return std::move(*resp);
    last = f;
    if (!last.retryable || n >= opts_.max_attempts) throw_failure(last, endpoint, opts_.base_url, sends, "");
    if (!req.idempotent && last.reached) {
      if (!req.reconcile)
        throw_failure(last, endpoint, opts_.base_url, sends, " (not sent again: the server may have acted on it)");
      must_reconcile = true;
    }
  }
}

HttpResponse HttpClient::get(const std::string& path) const {
  HttpRequest r;
  r.path = path;
  return send(r);
}

HttpResponse HttpClient::post_json(const std::string& path, const std::string& json) const {
  HttpRequest r;
  r.method = "POST";
  r.path = path;
  r.json_body = json;
  return send(r);
}

HttpResponse HttpClient::patch_json(const std::string& path, const std::string& json) const {
  HttpRequest r;
  r.method = "PATCH";
  r.path = path;
  r.json_body = json;
  return send(r);
}

HttpResponse HttpClient::del(const std::string& path) const {
  HttpRequest r;
  r.method = "DELETE";
  r.path = path;
  r.expect_json = false;            // an empty 204 is a fine answer
  return send(r);
}

} // namespace nas::measure
