// http_test: the libcurl client against the loopback test server -- retries, their limits, the
// typed errors, TLS verification, and the token kept out of every message
#include <doctest/doctest.h>

#include "../support.h"
#include "test_server.h"
#include "nas/core/sha256.h"
#include "nas/core/signals.h"
#include "nas/measure/http.h"

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

using namespace nas;
using namespace nas::measure;
using nas::test::TestServer;

namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

HttpOptions at(const std::string& url) {
  HttpOptions o;
  o.base_url = url;
  return o;
}

nlohmann::json rule(const std::string& method, const std::string& path, const std::string& kind, int count) {
  return {{"method", method}, {"path", path}, {"kind", kind}, {"count", count}};
}

HttpRequest submission(const std::string& model) {
  HttpRequest r;
  r.method = "POST";
  r.path = "/requests/";
  r.form = {{"network", model, "m.tflite"}, {"board", "nrf5340dk", ""}, {"quantize", "false", ""}};
  r.idempotent = false;
  return r;
}

} // namespace

TEST_CASE("base URLs: https anywhere, plain http only to loopback, no credentials, a header-safe token") {
  CHECK_NOTHROW(HttpClient(at("https://www.mimaas.forschung.fau.de/api")));
  CHECK_NOTHROW(HttpClient(at("http://127.0.0.1:9")));
  CHECK_NOTHROW(HttpClient(at("http://localhost:9/api/")));
  CHECK_NOTHROW(HttpClient(at("http://[::1]:9")));
  CHECK_THROWS_WITH_AS(HttpClient(at("http://example.org/api")),
                       "measurement service URL 'http://example.org/api': plain http:// is allowed only to a "
                       "loopback host, use https://",
                       UsageError);
  CHECK_THROWS_AS(HttpClient(at("ftp://127.0.0.1/")), UsageError);
  CHECK_THROWS_AS(HttpClient(at("not a url")), UsageError);
  try {
    HttpClient c(at("https://alice:hunter2@example.org/"));
    FAIL("credentials in the URL accepted");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
  }
  try {
    HttpClient c(at("https://example.org"), "abc\r\nX-Evil: 1");
    FAIL("a token that would inject a header accepted");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find("X-Evil") == std::string::npos);
    CHECK(e.code() == Exit::usage);
  }
}

TEST_CASE("backoff_delay: full jitter under a doubling ceiling, capped") {
  HttpOptions o;
  o.backoff_s = 0.5;
  o.backoff_max_s = 3;
  CHECK(backoff_delay(1, o, 0.0) == 0.0);
  CHECK(backoff_delay(1, o, 0.5) == doctest::Approx(0.25));
  CHECK(backoff_delay(2, o, 0.5) == doctest::Approx(0.5));
  CHECK(backoff_delay(3, o, 0.5) == doctest::Approx(1.0));
  CHECK(backoff_delay(4, o, 0.5) == doctest::Approx(1.5));     // ceiling 4 capped at 3
  CHECK(backoff_delay(200, o, 0.999) == doctest::Approx(2.997));
}

TEST_CASE("parse_retry_after: seconds or an HTTP date, distance from now") {
  CHECK(parse_retry_after("7", 0) == 7.0);
  CHECK(parse_retry_after(" 0 ", 0) == 0.0);
  const double date = 1445412480;   // Wed, 21 Oct 2015 07:28:00 GMT
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", date - 30) == doctest::Approx(30));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", date + 30) == 0.0);   // past: no wait
  CHECK_FALSE(parse_retry_after("soon", 0).has_value());
  CHECK_FALSE(parse_retry_after("", 0).has_value());
}

TEST_CASE("each error status has its typed error and message") {
  CHECK(server_message(R"({"message": "runs left: 0"})") == "runs left: 0");
  CHECK(server_message(R"({"error": "bad board"})") == "bad board");
  CHECK(server_message("<html><body>502</body></html>") == "");
  CHECK(server_message("upstream down\nmore text") == "upstream down");
  CHECK_THROWS_WITH_AS(throw_status_error("GET /me", 401, "invalid token"),
                       "GET /me: authentication failed (401): invalid token", AuthError);
  CHECK_THROWS_WITH_AS(throw_status_error("POST /requests/", 403, "You have No Available Runs left"),
                       "POST /requests/: quota exhausted (403): You have No Available Runs left", QuotaExhausted);
  CHECK_THROWS_AS(throw_status_error("GET /me", 403, "forbidden"), AuthError);
  try {
    throw_status_error("GET /requests/9", 404, "", " (after 1 attempts)");
  } catch (const AuthError&) {
    FAIL("404 is not an authentication error");
  } catch (const HttpError& e) {
    CHECK(std::string(e.what()) == "GET /requests/9: not found (404) (after 1 attempts)");
    CHECK(e.status() == 404);
    CHECK_FALSE(e.service_fault());
  }
  try {
    throw_status_error("GET /me", 503, "maintenance");
  } catch (const HttpError& e) {
    CHECK(e.service_fault());
    CHECK(e.code() == Exit::failure);
  }
  try {
    throw_status_error("GET /me", 401, "");
  } catch (const AuthError& e) {
    CHECK(e.code() == Exit::usage);      // log in again: a setting, like a usage error
  }
}

TEST_CASE("500 then success is retried; 5xx on every try ends in an HttpError after max_attempts") {
  TestServer server({"--token", kToken});
  HttpClient client(server.options(), kToken);
  server.faults({{"rules", {rule("GET", "/me", "500", 2)}}});
  CHECK(client.get("/me").json["available_runs"] == 1000);
  CHECK(server.seen("GET /me") == 3);
  CHECK(server.stats()["faults"]["500"] == 2);

  server.reset_counters();
  server.faults({{"rules", {rule("GET", "/me", "503", -1)}}});
  try {
    client.get("/me");
    FAIL("a server failing every try succeeded");
  } catch (const HttpError& e) {
    CHECK(e.status() == 503);
    CHECK(e.service_fault());
    CHECK(std::string(e.what()) == "GET /me: server error (503): service unavailable (after 4 attempts)");
  }
  CHECK(server.seen("GET /me") == 4);
}

TEST_CASE("429 waits for Retry-After, capped at backoff_max_s") {
  TestServer server({"--token", kToken});
  HttpOptions o = server.options();
  o.backoff_s = 0.01;               // jitter alone would retry at once
  o.backoff_max_s = 5;
  HttpClient client(o, kToken);
  nlohmann::json r = rule("GET", "/me", "429", 1);
  r["retry_after"] = "1";
  server.faults({{"rules", {r}}});
  auto t0 = std::chrono::steady_clock::now();
  CHECK(client.get("/me").status == 200);
  CHECK(seconds_since(t0) >= 0.95);
  CHECK(server.seen("GET /me") == 2);

  o.backoff_max_s = 0.2;            // a server asking for an hour gets the cap
  HttpClient capped(o, kToken);
  r["retry_after"] = "3600";
  server.faults({{"rules", {r}}});
  t0 = std::chrono::steady_clock::now();
  CHECK(capped.get("/me").status == 200);
  CHECK(seconds_since(t0) < 2.0);
}

TEST_CASE("answers slower than the timeout are retried; a server that never answers in time is Unreachable") {
  TestServer server({"--token", kToken, "--slow-s", "3"});
  HttpClient client(server.options(0.5), kToken);
  server.faults({{"rules", {rule("GET", "/me", "slow", 1)}}});
  auto t0 = std::chrono::steady_clock::now();
  CHECK(client.get("/me").status == 200);
  CHECK(seconds_since(t0) < 2.5);              // did not wait for the slow answer
  CHECK(server.seen("GET /me") == 2);

  server.reset_counters();
  server.faults({{"rules", {rule("GET", "/me", "slow", -1)}}});
  t0 = std::chrono::steady_clock::now();
  try {
    client.get("/me");
    FAIL("no answer in time, yet success");
  } catch (const Unreachable& e) {
    const std::string what = e.what();
    CHECK(what.find("GET /me: no answer from '" + server.url() + "'") == 0);
    CHECK(what.find("timed out") != std::string::npos);
    CHECK(what.find("(after 4 attempts)") != std::string::npos);
    CHECK(e.status() == 0);
    CHECK(e.service_fault());
  }
  CHECK(seconds_since(t0) < 4 * 0.5 + 3 * 0.2 + 1.5);
  CHECK(server.seen("GET /me") == 4);
}

TEST_CASE("truncated bodies, dropped connections and malformed JSON are retried; JSON that never parses is a ProtocolError") {
  TestServer server({"--token", kToken});
  HttpClient client(server.options(), kToken);
  for (const char* kind : {"truncate", "drop", "malformed", "garbage"}) {
    CAPTURE(kind);
    server.reset_counters();
    server.faults({{"rules", {rule("GET", "/me", kind, 1)}}});
    CHECK(client.get("/me").json["username"] == "user1");
    CHECK(server.seen("GET /me") == 2);
  }
  server.faults({{"rules", {rule("GET", "/me", "malformed", -1)}}});
  try {
    client.get("/me");
    FAIL("malformed JSON accepted");
  } catch (const ProtocolError& e) {
    CHECK(std::string(e.what()).find("GET /me: the answer is not JSON") == 0);
    CHECK(e.field() == "");
  }
  server.faults({{"rules", {rule("GET", "/me", "truncate", -1)}}});
  CHECK_THROWS_AS(client.get("/me"), Unreachable);
}

TEST_CASE("401 and 403 are not retried, and the token never shows in the message") {
  TestServer server({"--token", kToken});
  HttpClient client(server.options(), kToken);
  nlohmann::json echo = rule("GET", "/me", "401", 1);
  echo["message"] = "token '{authorization}' is not valid";   // a server that quotes what it got
  server.faults({{"rules", {echo}}});
  try {
    client.get("/me");
    FAIL("401 accepted");
  } catch (const AuthError& e) {
    const std::string what = e.what();
    CHECK(what == "GET /me: authentication failed (401): token '<token>' is not valid");
    CHECK(what.find(kToken) == std::string::npos);
  }
  CHECK(server.seen("GET /me") == 1);
  server.faults({{"rules", {rule("GET", "/me", "403_quota", 1), rule("GET", "/boards", "403", 1)}}});
  CHECK_THROWS_AS(client.get("/me"), QuotaExhausted);
  CHECK_THROWS_AS(client.get("/boards"), AuthError);
  CHECK(server.seen("GET /me") == 2);
  CHECK(server.seen("GET /boards") == 1);

  HttpRequest missing;                           // 404 is an error, unless accepted
  missing.path = "/requests/999";
  CHECK_THROWS_AS(client.send(missing), HttpError);
  missing.accept = {404};
  CHECK(client.send(missing).status == 404);
  CHECK(server.seen("GET /requests/{id}") == 2);  // neither retried
}

TEST_CASE("the Authorization header holds the raw token, without a scheme") {
  TestServer server({"--token", kToken});
  CHECK(HttpClient(server.options(), kToken).get("/me").status == 200);
  HttpOptions bearer = server.options();
  bearer.auth_scheme = "Bearer";
  CHECK_THROWS_AS(HttpClient(bearer, kToken).get("/me"), AuthError);
  CHECK_THROWS_AS(HttpClient(server.options()).get("/me"), AuthError);       // no token, no header
}

TEST_CASE("connection refused: retried, then Unreachable") {
  int port;
  {
    TestServer gone({});
    port = gone.port();
  }
  HttpOptions o = at("http://127.0.0.1:" + std::to_string(port));
  o.max_attempts = 3;
  o.backoff_s = 0.05;
  o.backoff_max_s = 0.1;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    HttpClient(o, kToken).get("/me");
    FAIL("a closed port answered");
  } catch (const Unreachable& e) {
    CHECK(std::string(e.what()).find("(after 3 attempts)") != std::string::npos);
    CHECK(e.endpoint() == "GET /me");
  }
  CHECK(seconds_since(t0) < 2.0);
}

TEST_CASE("a submission that may have reached the server is not sent again blindly") {
  TestServer server({"--token", kToken});
  HttpClient client(server.options(), kToken);
  const std::string model = "xxxxTFL3 a model";
  server.faults({{"rules", {rule("POST", "/requests/", "500_after", 1)}}});
  try {
    client.send(submission(model));
    FAIL("a 500 answer accepted");
  } catch (const HttpError& e) {
    CHECK(e.status() == 500);
    CHECK(std::string(e.what()).find("not sent again: the server may have acted on it") != std::string::npos);
  }
  CHECK(server.seen("POST /requests/") == 1);
  CHECK(server.stats()["successful_submissions"] == 1);

  // 429 says the server did nothing: sent again
  server.faults({{"rules", {rule("POST", "/requests/", "429", 1)}}});
  CHECK(client.send(submission(model)).status == 201);
  CHECK(server.seen("POST /requests/") == 3);
  CHECK(server.stats()["successful_submissions"] == 2);

  // with a reconcile function, a lost answer is looked up instead
  int lookups = 0;
  HttpRequest r = submission(model);
  r.reconcile = [&]() -> std::optional<HttpResponse> {
    ++lookups;
    HttpResponse found;
    found.status = 200;
    found.json = {{"id", 42}};
    return found;
  };
  server.faults({{"rules", {rule("POST", "/requests/", "drop", 1)}}});
  CHECK(client.send(r).json["id"] == 42);
  CHECK(lookups == 1);
  CHECK(server.seen("POST /requests/") == 4);
}

TEST_CASE("multipart uploads arrive byte for byte") {
  TestServer server({"--token", kToken});
  HttpClient client(server.options(), kToken);
  std::string model = "xxxxTFL3";
  for (int i = 0; i < 70000; ++i) model += char(i * 7919 % 256);     // binary, NULs included
  const auto answer = client.send(submission(model));
  const auto rec = server.record(std::to_string(answer.json["id"].get<int>()));
  CHECK(rec["sha256"] == sha256_hex(model));
  CHECK(rec["size"] == model.size());
  CHECK(rec["filename"] == "m.tflite");
}

TEST_CASE("TLS: an untrusted certificate is refused at once; trusted through ca_file it works") {
  nas::test::TempDir dir;
  const std::string cert = dir.file("cert.pem"), key = dir.file("key.pem");
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout " + key + " -out " + cert +
                          " -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    MESSAGE("skipped: openssl cannot make a test certificate");
    return;
  }
  TestServer server({"--token", kToken, "--tls", cert, key});
  HttpOptions o = server.options();
  o.base_url = "https://127.0.0.1:" + std::to_string(server.port());
  const auto t0 = std::chrono::steady_clock::now();
  try {
    HttpClient(o, kToken).get("/me");
    FAIL("a self-signed certificate was trusted");
  } catch (const Unreachable& e) {
    const std::string what = e.what();
    CHECK(what.find("certificate") != std::string::npos);
    CHECK(what.find("attempts") == std::string::npos);     // not retried
  }
  CHECK(seconds_since(t0) < 1.5);
  o.ca_file = cert;
  CHECK(HttpClient(o, kToken).get("/me").json["username"] == "user1");
  HttpOptions plain = server.options();                      // http:// to a TLS server: no downgrade
  plain.max_attempts = 1;
  CHECK_THROWS_AS(HttpClient(plain, kToken).get("/me"), HttpError);
}

TEST_CASE("a stop signal ends a call in flight") {
  TestServer server({"--token", kToken, "--slow-s", "5"});
  HttpClient client(server.options(10), kToken);
  server.faults({{"rules", {rule("GET", "/me", "slow", -1)}}});
  std::thread stopper([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    nas::request_stop(15);
  });
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(client.get("/me"), Interrupted);
  stopper.join();
  nas::clear_stop();
  CHECK(seconds_since(t0) < 3.0);
}
