// mimaas_test: the MIMaaS client against the loopback test server -- login, quota, boards,
// validation, the request life cycle, results as metrics, lost answers never paid twice, a
// server that dies mid-poll, random faults -- and the fit check and log parsing without one
#include <doctest/doctest.h>

#include "../support.h"
#include "test_server.h"
#include "nas/core/sha256.h"
#include "nas/measure/mimaas.h"

#include <zlib.h>

#include <future>
#include <map>
#include <string>
#include <thread>

using namespace nas;
using namespace nas::measure;
using nas::test::TestServer;

namespace {

const std::string kToken = "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface";

// Bytes that look like a TFLite flatbuffer ("TFL3" at offset 4), distinct per seed.
std::string make_model(size_t size, unsigned seed) {
  std::string m("\x1c\0\0\0TFL3", 8);
  uint32_t x = seed * 2654435761u + 1;
  while (m.size() < size) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    m += char(x & 0xff);
  }
  return m;
}

std::string name_of(const std::string& model) { return sha256_hex(model).substr(0, 16) + ".tflite"; }

nlohmann::json rule(const std::string& method, const std::string& path, const std::string& kind, int count) {
  return {{"method", method}, {"path", path}, {"kind", kind}, {"count", count}};
}

std::optional<double> metric(const Metrics& ms, const std::string& name, const std::string& unit) {
  for (const auto& m : ms)
    if (m.name == name) {
      CHECK(m.unit == unit);
      return m.value;
    }
  FAIL("no metric " << name);
  return std::nullopt;
}

std::string gzip(const std::string& text) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(text.size() + 128, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = uInt(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

} // namespace

TEST_CASE("login: the account's token; a wrong password is an AuthError naming neither password nor token") {
  TestServer server({"--user", "alice:s3cret-Pw!"});
  const std::string token = MimaasClient::login(server.options(), "alice", "s3cret-Pw!");
  CHECK(token == sha256_hex("token:alice"));
  CHECK(MimaasClient(server.options(), token).me().username == "alice");
  try {
    MimaasClient::login(server.options(), "alice", "wrong-password");
    FAIL("a wrong password logged in");
  } catch (const AuthError& e) {
    CHECK(std::string(e.what()) == "POST /login: authentication failed (401): invalid username or password");
    CHECK(e.code() == Exit::usage);
  }
  nlohmann::json echo = rule("POST", "/login", "401", 1);
  echo["message"] = "bad login {body}";            // a server that quotes the request
  server.faults({{"rules", {echo}}});
  try {
    MimaasClient::login(server.options(), "alice", "s3cret-Pw!");
    FAIL("a 401 logged in");
  } catch (const AuthError& e) {
    const std::string what = e.what();
    CHECK(what.find("s3cret-Pw!") == std::string::npos);
    CHECK(what.find("<secret>") != std::string::npos);
  }
  server.faults({{"rules", {{{"method", "POST"}, {"path", "/login"}, {"kind", "custom"}, {"count", 1},
                             {"status", 200}, {"body", R"({"token": "x"})"}}}}});
  CHECK_THROWS_WITH_AS(MimaasClient::login(server.options(), "alice", "s3cret-Pw!"),
                       "POST /login: field 'api_token' is missing", ProtocolError);
}

TEST_CASE("me and boards: the runs left, boards with sizes in bytes and their queues") {
  TestServer server({"--token", kToken, "--runs", "7"});
  MimaasClient client(server.options(), kToken);
  const Me me = client.me();
  CHECK(me.username == "user1");
  CHECK(me.available_runs == 7);
  CHECK(me.plan == "free");
  client.submit(make_model(1000, 1), "a.tflite", "nrf5340dk", false);
  const auto boards = client.boards();
  REQUIRE(boards.size() == 4);
  const Board& b = boards[0];
  CHECK(b.name == "nrf5340dk_1");
  CHECK(b.board_type == "nrf5340dk");
  CHECK(b.flash_size == 1024 * 1024);
  CHECK(b.ram_size == 448 * 1024);
  CHECK(b.max_arena_bytes == 300 * 1024);
  CHECK(b.voltage_mv == 3300);
  CHECK(b.status == "idle");
  CHECK(b.queued_requests == 1);
  CHECK(b.online_instances == 2);
  CHECK(boards[3].status == "offline");
  CHECK(client.me().available_runs == 6);
}

TEST_CASE("validate: reasons for a bad model, no run spent") {
  TestServer server({"--token", kToken, "--runs", "3"});
  MimaasClient client(server.options(), kToken);
  const Validation ok = client.validate(make_model(2000, 2), "m.tflite", "nrf5340dk");
  CHECK(ok.valid);
  CHECK(ok.errors.empty());
  const Validation bad = client.validate("not a model at all", "m.tflite", "nrf9999");
  CHECK_FALSE(bad.valid);
  REQUIRE(bad.errors.size() == 2);
  CHECK(bad.errors[0].find("TFL3") != std::string::npos);
  CHECK(bad.errors[1] == "unknown board 'nrf9999'");
  const Validation big = client.validate(make_model(900 * 1024, 3), "m.tflite", "nrf5340dk");
  CHECK_FALSE(big.valid);
  CHECK(big.errors.at(0).find("exceeds board flash (1024 KB)") != std::string::npos);
  CHECK(big.warnings.size() == 1);
  CHECK(client.me().available_runs == 3);
  CHECK(server.stats()["successful_submissions"] == 0);
}

TEST_CASE("a request goes pending, processing, done; its results become metrics") {
  TestServer server({"--token", kToken});
  MimaasClient client(server.options(), kToken);
  const std::string model = make_model(40000, 4);
  const std::string id = client.submit(model, name_of(model), "nrf5340dk", true);
  CHECK(client.artifact(id, "uart_log") == std::nullopt);     // not ready: 404
  RequestState s = client.get(id);
  CHECK(s.status == "pending");
  CHECK(s.queue_position == 1);
  CHECK(s.boards_online == 2);
  CHECK(s.quantize);
  CHECK(s.filename == name_of(model));
  CHECK_FALSE(s.terminal());
  s = client.get(id);
  CHECK(s.status == "processing");
  CHECK_FALSE(s.queue_position.has_value());
  s = client.get(id);
  REQUIRE(s.status == "done");
  CHECK(s.terminal());
  const auto rec = server.record(id);
  const auto& res = rec["result"];
  REQUIRE(s.metrics.size() == 5);
  CHECK(metric(s.metrics, "rom_bytes", "bytes") == res["rom_usage"].get<double>());
  CHECK(metric(s.metrics, "rom_bytes", "bytes") == 284262.0 + 40000);
  CHECK(metric(s.metrics, "firmware_ram_bytes", "bytes") == 374784.0);
  CHECK(*metric(s.metrics, "latency_ms", "ms") == doctest::Approx(res["duration_avg_s"].get<double>() * 1000));
  CHECK(*metric(s.metrics, "power_mw", "mW") == doctest::Approx(res["avg_power_uW"].get<double>() / 1000));
  CHECK(*metric(s.metrics, "energy_uj", "uJ") == doctest::Approx(res["avg_energy_uJ"].get<double>()));
  CHECK(nlohmann::json::parse(s.raw)["result"] == res);
  const auto log = client.artifact(id, "uart_log");
  REQUIRE(log);
  CHECK(parse_arena_used(*log) == rec["arena_used"].get<int64_t>());
  CHECK(client.artifact(id, "model") == model);
  CHECK(client.artifact(id, "error_log") == std::nullopt);
  CHECK(server.stats()["submissions"][sha256_hex(model)] == 1);
}

TEST_CASE("a request that ends in error keeps its message and its error log") {
  TestServer server({"--token", kToken, "--polls-pending", "0", "--polls-processing", "0"});
  MimaasClient client(server.options(), kToken);
  const std::string model = make_model(800 * 1024, 5);            // + 277.6 KB firmware > 1024 KB
  const std::string id = client.submit(model, name_of(model), "nrf5340dk", false);
  const RequestState s = client.get(id);
  REQUIRE(s.status == "error");
  CHECK(s.error_message ==
        "precheck: Model file (800.0 KB) plus firmware overhead (277.6 KB) exceeds board flash (1024 KB)");
  CHECK(s.metrics.empty());
  const auto log = client.artifact(id, "error_log");
  REQUIRE(log);
  CHECK(log->find(s.error_message) != std::string::npos);
  CHECK(client.artifact(id, "uart_log") == std::nullopt);
}

TEST_CASE("403 'no available runs' is QuotaExhausted, not retried") {
  TestServer server({"--token", kToken, "--runs", "1"});
  MimaasClient client(server.options(), kToken);
  client.submit(make_model(1000, 6), "a.tflite", "nrf5340dk", false);
  try {
    client.submit(make_model(1000, 7), "b.tflite", "nrf5340dk", false);
    FAIL("a run without quota");
  } catch (const QuotaExhausted& e) {
    CHECK(std::string(e.what()) == "POST /requests/: quota exhausted (403): You have no available runs left on your plan");
    CHECK_FALSE(e.service_fault());
  }
  CHECK(server.seen("POST /requests/") == 2);
  CHECK(server.stats()["successful_submissions"] == 1);
  CHECK(client.me().available_runs == 0);
}

TEST_CASE("a submission whose answer is lost is found by its name, never paid twice") {
  TestServer server({"--token", kToken, "--slow-s", "2"});
  MimaasClient client(server.options(0.5), kToken);
  unsigned seed = 100;
  for (const char* kind : {"slow", "truncate", "drop", "500_after", "malformed", "garbage", "500", "503"}) {
    CAPTURE(kind);
    const std::string model = make_model(3000, ++seed);
    server.faults({{"rules", {rule("POST", "/requests/", kind, 1)}}});
    const std::string id = client.submit(model, name_of(model), "nrf5340dk", false);
    CHECK(server.record(id)["sha256"] == sha256_hex(model));
    CHECK(server.stats()["submissions"][sha256_hex(model)] == 1);
  }
  CHECK(server.stats()["successful_submissions"] == 8);
  CHECK(server.seen("GET /requests/") >= 8);       // each lost answer was looked up
}

TEST_CASE("a lost submission whose look-up keeps failing is reported as unknown, never sent again") {
  TestServer server({"--token", kToken});
  MimaasClient client(server.options(), kToken);
  const std::string model = make_model(3000, 77);
  server.faults({{"rules", {rule("POST", "/requests/", "drop", 1), rule("GET", "/requests/", "500", -1)}}});
  try {
    client.submit(model, name_of(model), "nrf5340dk", false);
    FAIL("a submission with a lost answer and no look-up succeeded");
  } catch (const Unreachable& e) {
    const std::string what = e.what();
    CHECK(what.find("POST /requests/: the answer was lost and whether the server acted on it is unknown "
                    "(after 4 attempts); the last look-up: GET /requests/?board=nrf5340dk: server error (500)") == 0);
  }
  CHECK(server.seen("POST /requests/") == 1);
  CHECK(server.seen("GET /requests/") == 3 * 4);           // three look-ups, each tried 4 times
  CHECK(server.stats()["submissions"][sha256_hex(model)] == 1);
  server.clear_faults();
  const auto found = client.find_request(name_of(model), "nrf5340dk", false);   // what a caller does next
  REQUIRE(found);
  CHECK(server.record(found->id)["sha256"] == sha256_hex(model));
}

TEST_CASE("the server dies mid-poll and comes back with its state: polling resumes, nothing resubmitted") {
  nas::test::TempDir dir;
  TestServer server({"--token", kToken, "--state", dir.file("state.json"), "--polls-pending", "2"});
  HttpOptions o = server.options();
  o.max_attempts = 15;
  o.backoff_s = 0.1;
  o.backoff_max_s = 0.5;
  MimaasClient client(o, kToken);
  const std::string model = make_model(5000, 8);
  const std::string id = client.submit(model, name_of(model), "nrf5340dk", false);
  CHECK(client.get(id).status == "pending");
  // (1) the server exits while answering a poll; the poll is retried until it is back. The poll
  // runs on another thread: the server must be started by this one, whose end would kill it
  // (PR_SET_PDEATHSIG follows the thread that forked).
  server.faults({{"rules", {rule("GET", "/requests/" + id, "die", 1)}}});
  auto poll = std::async(std::launch::async, [&] { return client.get(id); });
  REQUIRE(server.wait_exit(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));   // refused meanwhile
  server.restart();
  CHECK(poll.get().status == "pending");       // the second of two pending polls: the state was kept
  // (2) killed between polls
  server.kill_now();
  poll = std::async(std::launch::async, [&] { return client.get(id); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server.restart();
  CHECK(poll.get().status == "processing");
  CHECK(client.get(id).status == "done");
  const auto stats = server.stats();
  CHECK(stats["successful_submissions"] == 1);
  CHECK(stats["by_endpoint"]["POST /requests/"] == 1);
  CHECK(stats["by_endpoint"]["GET /requests/{id}"] == 5);   // the one that died, counted before it did
}

TEST_CASE("answers without the fields their status needs are ProtocolErrors naming endpoint and field") {
  TestServer server({"--token", kToken});
  MimaasClient client(server.options(), kToken);
  const std::string id = client.submit(make_model(1000, 9), "m.tflite", "nrf5340dk", false);
  auto answer = [&](const std::string& body) {
    server.faults({{"rules", {{{"method", "GET"}, {"path", "/requests/" + id}, {"kind", "custom"}, {"count", 1},
                               {"status", 200}, {"body", body}}}}});
  };
  answer(R"({"id": 1, "status": "done", "result": null})");
  try {
    client.get(id);
    FAIL("done without results accepted");
  } catch (const ProtocolError& e) {
    CHECK(e.field() == "result");
    CHECK(std::string(e.what()) == "GET /requests/" + id + ": field 'result' is not a JSON object");
  }
  answer(R"({"id": 1, "status": "done", "result": {"ram_usage": 1}})");
  CHECK_THROWS_WITH_AS(client.get(id), ("GET /requests/" + id + ": field 'result.rom_usage' is missing").c_str(),
                       ProtocolError);
  answer(R"({"id": 1, "status": "finished"})");
  CHECK_THROWS_WITH_AS(client.get(id),
                       ("GET /requests/" + id + ": field 'status' is 'finished', not pending, processing, done or error")
                           .c_str(),
                       ProtocolError);
  answer(R"({"status": "pending"})");
  CHECK_THROWS_WITH_AS(client.get(id), ("GET /requests/" + id + ": field 'id' is missing").c_str(), ProtocolError);
  answer(R"([1, 2])");
  CHECK_THROWS_WITH_AS(client.get(id), ("GET /requests/" + id + ": the answer is not a JSON object").c_str(),
                       ProtocolError);
  CHECK(server.seen("GET /requests/{id}") == 5);     // none retried
  // a null metric is unknown, not an error
  answer(R"({"id": 1, "status": "done", "result": {"ram_usage": 1, "rom_usage": 2, "duration_avg_s": 0.5,
            "avg_power_uW": null, "avg_energy_uJ": 3}})");
  const RequestState s = client.get(id);
  CHECK_FALSE(metric(s.metrics, "power_mw", "mW").has_value());
  CHECK(metric(s.metrics, "latency_ms", "ms") == 500.0);
}

TEST_CASE("submit refuses a file name the lookup could not match, and an unknown build mode") {
  HttpOptions o;
  o.base_url = "http://127.0.0.1:9";
  MimaasClient client(o, kToken);
  CHECK_THROWS_AS(client.submit("x", "a b.tflite", "nrf5340dk", false), UsageError);
  CHECK_THROWS_AS(client.submit("x", "../x.tflite", "nrf5340dk", false), UsageError);
  CHECK_THROWS_AS(client.submit("x", "a.tflite", "nrf5340dk", false, "quick"), UsageError);
}

TEST_CASE("random faults (25%): every model measured, each submitted exactly once") {
  TestServer server({"--token", kToken, "--fault-rate", "0.25", "--seed", "7", "--slow-s", "1.5"});
  HttpOptions o = server.options(0.5);
  o.max_attempts = 12;
  MimaasClient client(o, kToken);
  std::map<std::string, std::string> ids;     // sha256 -> request id
  for (unsigned i = 0; i < 25; ++i) {
    const std::string model = make_model(2000 + 10 * i, 1000 + i);
    ids[sha256_hex(model)] = client.submit(model, name_of(model), "nrf52840dk", i % 2 == 0);
  }
  int done = 0;
  for (const auto& [sha, id] : ids) {
    for (int poll = 0; poll < 10; ++poll) {
      const RequestState s = client.get(id);
      if (s.terminal()) {
        CHECK(s.status == "done");
        CHECK(metric(s.metrics, "latency_ms", "ms").has_value());
        done += s.status == "done";
        break;
      }
    }
  }
  server.clear_faults();
  const auto stats = server.stats();
  CHECK(done == 25);
  CHECK(stats["successful_submissions"] == 25);
  for (const auto& [sha, id] : ids) CHECK(stats["submissions"][sha] == 1);
  CHECK(stats["faults"].size() >= 4);           // the faults did happen, of several kinds
}

TEST_CASE("why_not_fit explains flash and arena, without sending anything") {
  Board b;
  b.board_type = "nrf5340dk";
  b.flash_size = 1024 * 1024;
  b.max_arena_bytes = 300 * 1024;
  CHECK(why_not_fit(b, 500 * 1024, kFirmwareOverheadBytes, 200 * 1024) == "");
  CHECK(fits(b, 500 * 1024, kFirmwareOverheadBytes, std::nullopt));
  CHECK(why_not_fit(b, 747 * 1024 + 102, kFirmwareOverheadBytes, std::nullopt) ==
        "model file (747.1 KB) plus firmware overhead (277.6 KB) exceeds the flash of 'nrf5340dk' (1024.0 KB)");
  CHECK(why_not_fit(b, 1000, kFirmwareOverheadBytes, 301 * 1024) ==
        "tensor arena (301.0 KB) exceeds the largest arena of 'nrf5340dk' (300.0 KB)");
  CHECK_FALSE(fits(b, 900 * 1024, 0, 400 * 1024));
  CHECK(why_not_fit(b, 900 * 1024, kFirmwareOverheadBytes, 400 * 1024).find("; tensor arena") != std::string::npos);
  Board unknown;                                   // sizes not reported: nothing to check against
  CHECK(fits(unknown, int64_t(1) << 40, kFirmwareOverheadBytes, int64_t(1) << 40));
}

TEST_CASE("parse_arena_used reads the forms a UART log may take, gzip included") {
  CHECK(parse_arena_used("boot\narena_used: 123456 bytes\n") == 123456);
  CHECK(parse_arena_used("Arena used: 12 / 300 KB") == 12);
  CHECK(parse_arena_used("arena_used_bytes=4096") == 4096);
  CHECK(parse_arena_used("arena_used: 150 KB\n") == 150 * 1024);
  CHECK(parse_arena_used("arena_used: 1\n...\narena_used: 2048\n") == 2048);   // the last one
  CHECK(parse_arena_used("no arena line here\narena size 300") == std::nullopt);
  CHECK(parse_arena_used(gzip("log\narena_used: 777 bytes\n")) == 777);
  CHECK(gunzip_if_compressed("plain") == "plain");
  CHECK_THROWS_AS(gunzip_if_compressed(gzip("some text").substr(0, 12)), nas::Error);
  CHECK(arena_metric(5).name == "arena_bytes");
  CHECK(arena_metric(5).value == 5.0);
  CHECK_FALSE(arena_metric(std::nullopt).value.has_value());
}

TEST_CASE("poll_delay starts at 5 s, grows by half, and is capped") {
  CHECK(poll_delay(0) == 5.0);
  CHECK(poll_delay(1) == 7.5);
  CHECK(poll_delay(2) == 11.25);
  CHECK(poll_delay(50) == 60.0);
  CHECK(poll_delay(3, 0.1, 0.2) == 0.2);
}
