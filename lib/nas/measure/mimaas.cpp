// mimaas: MIMaaS's endpoints on HttpClient; answers read field by field into typed structs
#include "nas/measure/mimaas.h"
#include "nas/measure/reply.h"
#include "nas/core/error.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <regex>

namespace nas::measure {
namespace {

const char* const kStatuses[] = {"pending", "processing", "done", "error"};

std::string kb(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f KB", bytes / 1024.0);
  return buf;
}

std::optional<int64_t> kb_to_bytes(const std::optional<double>& kb) {
  if (!kb) return std::nullopt;
  return int64_t(std::llround(*kb * 1024.0));
}

std::optional<double> scaled(std::optional<double> v, double factor) {
  if (v) *v *= factor;
  return v;
}

// The platform's result: rom_usage and ram_usage in bytes, duration_avg_s, avg_power_uW,
// avg_energy_uJ (per inference). A null value is an unknown metric, a missing one an error.
Metrics result_metrics(const Reply& r) {
  return {
      {"rom_bytes", r.num_or_null("rom_usage"), "bytes"},
      {"firmware_ram_bytes", r.num_or_null("ram_usage"), "bytes"},
      {"latency_ms", scaled(r.num_or_null("duration_avg_s"), 1000.0), "ms"},
      {"power_mw", scaled(r.num_or_null("avg_power_uW"), 1e-3), "mW"},
      {"energy_uj", r.num_or_null("avg_energy_uJ"), "uJ"},
  };
}

std::vector<std::string> texts(const nlohmann::json& list) {
  std::vector<std::string> out;
  for (const auto& e : list) {
    if (e.is_string()) out.push_back(e.get<std::string>());
    else if (e.is_object() && e.contains("message") && e["message"].is_string()) out.push_back(e["message"].get<std::string>());
    else out.push_back(e.dump());
  }
  return out;
}

bool safe_filename(const std::string& name) {
  return !name.empty() && name.size() <= 200 && name[0] != '.' &&
         std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '_' || c == '-'; });
}

// Is request id `a` newer than `b`? Numerically when both are numbers.
bool newer(const std::string& a, const std::string& b) {
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() < 19 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
  };
  if (digits(a) && digits(b)) return std::stoll(a) > std::stoll(b);
  return true;   // otherwise the later one in the server's list
}

std::string request_path(const std::string& id) { return "/requests/" + url_escape(id); }

} // namespace

MimaasClient::MimaasClient(HttpOptions opts, std::string token) : http_(std::move(opts), std::move(token)) {}

std::string MimaasClient::login(const HttpOptions& opts, const std::string& username, const std::string& password) {
  HttpClient client(opts);
  HttpRequest req;
  req.method = "POST";
  req.path = "/login";
  req.json_body = nlohmann::json{{"username", username}, {"password", password}}.dump();
  req.secrets = {password};
  const HttpResponse resp = client.send(req);
  const std::string token = Reply(resp.json, "POST /login").str("api_token");
  if (token.empty() || !std::all_of(token.begin(), token.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; }))
    throw ProtocolError("POST /login", resp.status, "api_token",
                        "POST /login: field 'api_token' is empty or holds characters a header cannot carry");
  return token;
}

Me MimaasClient::me() const {
  const HttpResponse resp = http_.get("/me");
  const Reply r(resp.json, "GET /me");
  return Me{r.str("username"), r.integer("available_runs"), r.opt_str("plan").value_or("")};
}

std::vector<Board> MimaasClient::boards() const {
  const HttpResponse resp = http_.get("/boards");
  const Reply top(resp.json, "GET /boards");
  std::vector<Board> out;
  const auto& list = top.array("boards");
  for (size_t i = 0; i < list.size(); ++i) {
    const Reply r(list[i], "GET /boards", "boards[" + std::to_string(i) + "].");
    Board b;
    b.name = r.str("name");
    b.variant = r.opt_str("variant").value_or("");
    b.board_type = r.str("board_type");
    if (auto spec = r.opt_object("specifications")) {
      b.flash_size = kb_to_bytes(spec->opt_num("flash_size")).value_or(0);
      b.ram_size = kb_to_bytes(spec->opt_num("ram_size")).value_or(0);
      b.max_arena_bytes = kb_to_bytes(spec->opt_num("max_available_tensor_arena_size")).value_or(0);
      b.voltage_mv = int(spec->opt_int("voltage").value_or(0));
    }
    b.status = "unknown";
    if (auto u = r.opt_object("utilization")) {
      b.status = u->opt_str("status").value_or("unknown");
      b.queued_requests = int(u->opt_int("queued_requests").value_or(0));
      b.processing_requests = int(u->opt_int("processing_requests").value_or(0));
      b.online_instances = int(u->opt_int("online_instances").value_or(0));
    }
    out.push_back(std::move(b));
  }
  return out;
}

Validation MimaasClient::validate(const std::string& model_bytes, const std::string& filename,
                                  const std::string& board) const {
  HttpRequest req;
  req.method = "POST";
  req.path = "/validate";
  req.form = {{"network", model_bytes, filename.empty() ? "model.tflite" : filename}, {"board", board, ""}};
  const HttpResponse resp = http_.send(req);
  const Reply r(resp.json, "POST /validate");
  Validation v;
  v.valid = r.boolean("valid");
  if (r.json().contains("errors") && !r.json()["errors"].is_null()) v.errors = texts(r.array("errors"));
  if (r.json().contains("warnings") && !r.json()["warnings"].is_null()) v.warnings = texts(r.array("warnings"));
  return v;
}

std::string MimaasClient::submit(const std::string& model_bytes, const std::string& filename,
                                 const std::string& board, bool quantize, const std::string& build_mode) const {
  if (!safe_filename(filename))
    throw UsageError("model file name '" + filename + "' for MIMaaS: use letters, digits, '.', '_' and '-' only");
  if (build_mode != "pristine" && build_mode != "fast")
    throw UsageError("MIMaaS build mode '" + build_mode + "': expected 'pristine' or 'fast'");
  HttpRequest req;
  req.method = "POST";
  req.path = "/requests/";
  req.form = {{"network", model_bytes, filename},
              {"board", board, ""},
              {"quantize", quantize ? "true" : "false", ""},
              {"build_mode", build_mode, ""}};
  req.idempotent = false;
  req.reconcile = [&]() -> std::optional<HttpResponse> {
    auto found = find_request(filename, board, quantize);
    if (!found) return std::nullopt;
    HttpResponse r;
    r.status = 200;
    r.body = found->raw;
    r.json = nlohmann::json::parse(found->raw);
    return r;
  };
  const HttpResponse resp = http_.send(req);
  return Reply(resp.json, "POST /requests/").id("id");
}

RequestState MimaasClient::parse_request(const nlohmann::json& j, const std::string& endpoint,
                                         const std::string& raw) const {
  const Reply r(j, endpoint);
  RequestState s;
  s.id = r.id("id");
  s.status = r.str("status");
  if (std::find(std::begin(kStatuses), std::end(kStatuses), s.status) == std::end(kStatuses))
    throw r.bad("status", "is '" + s.status + "', not pending, processing, done or error");
  s.board = r.opt_str("board").value_or("");
  s.quantize = r.json().contains("quantize") && !r.json()["quantize"].is_null() && r.boolean("quantize");
  s.filename = r.opt_str("filename").value_or("");
  if (s.status == "pending") {
    auto small = [](std::optional<int64_t> v) { return v ? std::optional<int>(int(*v)) : std::nullopt; };
    s.queue_position = small(r.opt_int("queue_position"));
    s.boards_busy = small(r.opt_int("boards_busy"));
    s.boards_online = small(r.opt_int("boards_online"));
  }
  if (s.status == "error") s.error_message = r.opt_str("error_message").value_or("");
  if (s.status == "done") s.metrics = result_metrics(r.object("result"));
  s.raw = raw;
  return s;
}

RequestState MimaasClient::get(const std::string& id) const {
  const std::string path = request_path(id);
  const HttpResponse resp = http_.get(path);
  return parse_request(resp.json, "GET " + path, resp.body);
}

std::vector<RequestState> MimaasClient::requests(const std::string& board) const {
  const std::string path = board.empty() ? "/requests/" : "/requests/?board=" + url_escape(board);
  const HttpResponse resp = http_.get(path);
  if (!resp.json.is_array())
    throw ProtocolError("GET " + path, resp.status, "", "GET " + path + ": the answer is not a JSON array");
  std::vector<RequestState> out;
  for (const auto& e : resp.json) out.push_back(parse_request(e, "GET " + path, e.dump()));
  return out;
}

std::optional<RequestState> MimaasClient::find_request(const std::string& filename, const std::string& board,
                                                       bool quantize) const {
  std::optional<RequestState> best;
  for (auto& s : requests(board)) {
    if (s.filename != filename || s.quantize != quantize || (!board.empty() && s.board != board)) continue;
    if (!best || newer(s.id, best->id)) best = std::move(s);
  }
  return best;
}

std::optional<std::string> MimaasClient::artifact(const std::string& id, const std::string& name) const {
  HttpRequest req;
  req.path = request_path(id) + "/artifacts/" + url_escape(name);
  req.expect_json = false;
  req.accept = {404};
  HttpResponse resp = http_.send(req);
  if (resp.status == 404) return std::nullopt;
  return std::move(resp.body);
}

void MimaasClient::cancel(const std::string& id) const { http_.del(request_path(id)); }

std::string why_not_fit(const Board& board, int64_t model_bytes, int64_t firmware_overhead,
                        std::optional<int64_t> arena_bytes) {
  const std::string name = board.board_type.empty() ? board.name : board.board_type;
  std::string why;
  if (board.flash_size > 0 && model_bytes + firmware_overhead > board.flash_size)
    why = "model file (" + kb(double(model_bytes)) + ") plus firmware overhead (" + kb(double(firmware_overhead)) +
          ") exceeds the flash of '" + name + "' (" + kb(double(board.flash_size)) + ")";
  if (arena_bytes && board.max_arena_bytes > 0 && *arena_bytes > board.max_arena_bytes)
    why += (why.empty() ? "" : "; ") + std::string("tensor arena (") + kb(double(*arena_bytes)) +
           ") exceeds the largest arena of '" + name + "' (" + kb(double(board.max_arena_bytes)) + ")";
  return why;
}

std::string gunzip_if_compressed(const std::string& bytes) {
  if (bytes.size() < 2 || (unsigned char)bytes[0] != 0x1f || (unsigned char)bytes[1] != 0x8b) return bytes;
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw nas::Error("cannot start zlib (out of memory)");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = uInt(bytes.size());
  std::string out;
  char buf[1 << 15];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof buf - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) throw nas::Error("a gzip-compressed log is corrupt or cut short");
  return out;
}

std::optional<int64_t> parse_arena_used(const std::string& uart_log) {
  static const std::regex re(R"(arena[ _]used(?:_bytes)?\s*[:=]?\s*(\d{1,15})(?:\s*(kib|kb|bytes|b)\b)?)",
                             std::regex::icase);
  const std::string text = gunzip_if_compressed(uart_log);
  std::optional<int64_t> last;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    int64_t v = std::stoll((*it)[1].str());
    const std::string unit = (*it)[2].str();
    if (!unit.empty() && (unit[0] == 'k' || unit[0] == 'K')) v *= 1024;
    last = v;
  }
  return last;
}

Metric arena_metric(std::optional<int64_t> arena_bytes) {
  return {"arena_bytes", arena_bytes ? std::optional<double>(double(*arena_bytes)) : std::nullopt, "bytes"};
}

double poll_delay(int attempt, double base_s, double max_s) {
  return std::min(max_s, base_s * std::pow(1.5, std::clamp(attempt, 0, 100)));
}

} // namespace nas::measure
