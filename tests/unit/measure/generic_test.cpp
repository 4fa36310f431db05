// generic_test: the generic `http` backend's protocol (generic.h, nas-measure-http.7) against the
// loopback test server: a job's life, idempotent submissions, faults, errors, authentication
#include <doctest/doctest.h>

#include "test_server.h"
#include "nas/core/sha256.h"
#include "nas/measure/generic.h"

#include <string>

using namespace nas;
using namespace nas::measure;
using nas::test::TestServer;

namespace {

const std::string kToken = "c0ffee00c0ffee00c0ffee00c0ffee00";

nlohmann::json rule(const std::string& method, const std::string& path, const std::string& kind, int count) {
  return {{"method", method}, {"path", path}, {"kind", kind}, {"count", count}};
}

const Metric* find(const Metrics& ms, const std::string& name) {
  for (const auto& m : ms)
    if (m.name == name) return &m;
  return nullptr;
}

} // namespace

TEST_CASE("generic http: a job goes queued, running, done, with its results as metrics") {
  TestServer server({"--token", kToken});
  GenericClient client(server.options(), kToken);
  const std::string model(5000, 'm');
  const std::string id = client.submit(model, "m.tflite", "rpi4-cpu", {{"threads", 1}}, "key-1");
  CHECK(client.get(id).status == "queued");
  CHECK(client.get(id).status == "running");
  const JobState s = client.get(id);
  REQUIRE(s.status == "done");
  CHECK(s.terminal());
  REQUIRE(s.metrics.size() == 4);
  const Metric* rom = find(s.metrics, "rom_bytes");
  REQUIRE(rom);
  CHECK(rom->value == 284262.0 + 5000);
  CHECK(rom->unit == "bytes");
  REQUIRE(find(s.metrics, "latency_ms"));
  CHECK(find(s.metrics, "latency_ms")->value > 0.0);
  REQUIRE(find(s.metrics, "power_mw"));
  CHECK_FALSE(find(s.metrics, "power_mw")->value.has_value());   // null: not measured
  CHECK(nlohmann::json::parse(s.raw)["id"] == id);
}

TEST_CASE("generic http: the key makes a submission safe to repeat; lost answers are retried") {
  TestServer server({"--token", kToken});
  GenericClient client(server.options(), kToken);
  const std::string model(3000, 'k');
  const std::string a = client.submit(model, "m.onnx", "rpi4-cpu", nlohmann::json::object(), "same-key");
  const std::string b = client.submit(model, "m.onnx", "rpi4-cpu", nlohmann::json::object(), "same-key");
  CHECK(a == b);
  CHECK(server.stats()["job_submissions"][sha256_hex(model)] == 1);
  int n = 0;
  for (const char* kind : {"truncate", "drop", "500_after", "malformed"}) {
    CAPTURE(kind);
    const std::string other = model + std::to_string(++n);
    server.faults({{"rules", {rule("POST", "/jobs", kind, 1)}}});
    client.submit(other, "m.onnx", "rpi4-cpu", nlohmann::json::object(), "key-" + std::to_string(n));
    CHECK(server.stats()["job_submissions"][sha256_hex(other)] == 1);
  }
  CHECK(server.seen("POST /jobs") == 2 + 4 * 2);
}

TEST_CASE("generic http: a failed job keeps its message; unknown jobs, bad answers and bad input are typed errors") {
  TestServer server({"--token", kToken, "--polls-pending", "0", "--polls-processing", "0"});
  GenericClient client(server.options(), kToken);
  const std::string id = client.submit("model", "m.tflite", "broken", nlohmann::json::object(), "k");
  const JobState s = client.get(id);
  CHECK(s.status == "error");
  CHECK(s.message == "target 'broken' failed: device not responding");
  CHECK(s.metrics.empty());
  client.cancel(id);
  try {
    client.get(id);
    FAIL("a cancelled job was found");
  } catch (const HttpError& e) {
    CHECK(e.status() == 404);
    CHECK(std::string(e.what()) == "GET /jobs/" + id + ": not found (404): no such job");
  }
  const std::string ok = client.submit("model2", "m.tflite", "rpi4-cpu", nlohmann::json::object(), "k2");
  server.faults({{"rules", {{{"method", "GET"}, {"path", "/jobs/" + ok}, {"kind", "custom"}, {"count", 1},
                             {"status", 200}, {"body", R"({"id": "x", "status": "done", "results": [{"value": 1}]})"}}}}});
  CHECK_THROWS_WITH_AS(client.get(ok), ("GET /jobs/" + ok + ": field 'results[0].metric' is missing").c_str(),
                       ProtocolError);
  CHECK_THROWS_AS(client.submit("m", "m.tflite", "rpi4-cpu", nlohmann::json::object(), ""), UsageError);
  CHECK_THROWS_AS(client.submit("m", "m.tflite", "", nlohmann::json::object(), "k"), UsageError);
  CHECK_THROWS_AS(client.submit("m", "m.tflite", "t", nlohmann::json::array(), "k"), UsageError);
}

TEST_CASE("generic http: the token goes as a Bearer token") {
  TestServer server({"--token", kToken});
  CHECK_THROWS_AS(GenericClient(server.options(), "").submit("m", "m", "t", nlohmann::json::object(), "k"),
                  AuthError);
  CHECK_THROWS_AS(GenericClient(server.options(), "wrong").submit("m", "m", "t", nlohmann::json::object(), "k"),
                  AuthError);
  CHECK_NOTHROW(GenericClient(server.options(), kToken).submit("m", "m", "t", nlohmann::json::object(), "k"));
}
