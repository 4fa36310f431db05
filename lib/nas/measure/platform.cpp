// platform: MIMaaS and the generic protocol behind Platform; nas-measure's boards, status and
// login subcommands
#include "nas/measure/platform.h"

#include "nas/core/error.h"
#include "nas/core/file.h"
#include "nas/core/log.h"
#include "nas/core/table.h"
#include "nas/core/text.h"
#include "nas/measure/generic.h"
#include "nas/measure/mimaas.h"
#include "nas/measure/remote.h"
#include "nas/measure/token.h"
#include "nas/store/db.h"
#include "nas/store/measurements.h"
#include "nas/store/open.h"

#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace nas::measure {

HttpOptions http_options(const config::MeasureConfig& m) {
  HttpOptions h;
  const char* env = std::getenv("MIMAAS_API_URL");
  h.base_url = !m.url.empty() ? m.url : (env && *env && m.backend == "mimaas") ? env : kMimaasUrl;
  if (m.backend == "http" && m.url.empty()) throw UsageError("--url: the http backend needs the service's URL");
  h.timeout_s = m.timeout_s;
  h.backoff_s = m.backoff_s;
  h.connect_timeout_s = std::min(15.0, m.timeout_s);
  return h;
}

std::string upload_name(const std::string& sha256) { return sha256 + ".tflite"; }

namespace {

class Mimaas : public Platform {
public:
  explicit Mimaas(const config::MeasureConfig& m) : m_(m), client_(http_options(m), load_token(m.token_file)) {}

  std::string refuse(const std::string& bytes, const std::string& filename) override {
    std::string why = why_not_fit(board(), int64_t(bytes.size()), m_.firmware_overhead_bytes, std::nullopt);
    if (!why.empty()) return why;
    Validation v = client_.validate(bytes, filename, m_.board);
    if (v.valid) return "";
    return v.errors.empty() ? "the platform's validation failed" : join(v.errors, "; ");
  }

  std::string submit(const std::string& bytes, const std::string& filename) override {
    return client_.submit(bytes, filename, m_.board, m_.quantize, m_.build_mode);
  }

  std::optional<std::string> find(const std::string& filename) override {
    auto r = client_.find_request(filename, m_.board, m_.quantize);
    return r ? std::optional<std::string>(r->id) : std::nullopt;
  }

  State poll(const std::string& id) override {
    RequestState r = client_.get(id);
    State s{r.status, std::nullopt, r.error_message, r.metrics, r.raw};
    if (r.queue_position) s.queue_position = *r.queue_position;
    return s;
  }

  Metrics artifacts(const std::string& id, bool done, const std::string& folder, nlohmann::json& raw) override {
    Metrics out;
    for (const char* name : done ? std::vector<const char*>{"uart_log", "ram_report", "rom_report", "power_summary"}
                                 : std::vector<const char*>{"error_log"}) {
      std::optional<std::string> bytes;
      try {
        bytes = client_.artifact(id, name);
      } catch (const HttpError& e) {
        log::warning("request " + id + ": artifact " + name + ": " + e.what());
      }
      if (!bytes) continue;
      const std::string text = gunzip_if_compressed(*bytes);
      fs::create_directories(folder);
      const std::string path = (fs::path(folder) / (std::string(name) + "-" + id + ".txt")).string();
      write_file_atomic(path, text);
      raw["artifacts"][name] = path;
      if (std::string(name) == "uart_log") out.push_back(arena_metric(parse_arena_used(text)));
    }
    if (done && !raw.contains("artifacts")) out.push_back(arena_metric(std::nullopt));
    return out;
  }

private:
  const Board& board() {
    if (boards_.empty()) boards_ = client_.boards();
    for (const auto& b : boards_)
      if (b.board_type == m_.board) return b;
    std::vector<std::string> types;
    for (const auto& b : boards_)
      if (std::find(types.begin(), types.end(), b.board_type) == types.end()) types.push_back(b.board_type);
    throw UsageError("--board: the platform has no board type '" + m_.board + "'" + suggestion_suffix(m_.board, types) +
                     " (it has " + quoted_list(types) + ")");
  }
  const config::MeasureConfig& m_;
  MimaasClient client_;
  std::vector<Board> boards_;
};

class Generic : public Platform {
public:
  explicit Generic(const config::MeasureConfig& m) : m_(m), client_(http_options(m), token()) {}

  std::string refuse(const std::string&, const std::string&) override { return ""; }
  std::string submit(const std::string& bytes, const std::string& filename) override {
    // the idempotency key: what is measured (the model's sha256 is the file name) and how
    const std::string key = filename + ":" + m_.board + ":" + (m_.quantize ? "int8" : "fp32") + ":" + m_.build_mode;
    return client_.submit(bytes, filename, m_.board, {{"quantize", m_.quantize}}, key);
  }
  // The protocol's idempotency key makes a repeated upload return the first job: nothing to find.
  std::optional<std::string> find(const std::string&) override { return std::nullopt; }
  State poll(const std::string& id) override {
    JobState j = client_.get(id);
    const std::string status = j.status == "queued" ? "pending" : j.status == "running" ? "processing" : j.status;
    return State{status, std::nullopt, j.message, j.metrics, j.raw};
  }
  Metrics artifacts(const std::string&, bool, const std::string&, nlohmann::json&) override { return {}; }

private:
  static std::string token() {
    const char* t = std::getenv("NAS_MEASURE_TOKEN");
    return t ? t : "";
  }
  const config::MeasureConfig& m_;
  GenericClient client_;
};

} // namespace

std::unique_ptr<Platform> open_platform(const config::MeasureConfig& m) {
  if (m.board.empty()) throw UsageError("--board: name the board to measure on (nas-measure boards lists them)");
  if (m.backend == "mimaas") return std::make_unique<Mimaas>(m);
  if (m.backend == "http") return std::make_unique<Generic>(m);
  throw UsageError("--backend: '" + m.backend + "' is not a remote platform");
}

int run_boards(const config::MeasureConfig& m, Format format, std::ostream& out) {
  if (m.backend != "mimaas") throw UsageError("--backend: boards are listed for mimaas only");
  MimaasClient client(http_options(m), "");
  Table t({"board", "type", "flash_bytes", "ram_bytes", "max_arena_bytes", "status", "queued", "processing", "online"});
  for (const auto& b : client.boards())
    t.add({b.name, b.board_type, b.flash_size, b.ram_size, b.max_arena_bytes, b.status, b.queued_requests,
           b.processing_requests, b.online_instances});
  t.write(out, format);
  return 0;
}

int run_status(const std::string& db_path, const config::MeasureConfig& m, Format format, std::ostream& out) {
  store::OpenStudy opened = store::open_study(db_path, store::Access::read_write);
  auto open = store::open_requests(opened.db, "");
  Table t({"trial", "backend", "target", "request", "status", "queue_position", "note"});
  std::unique_ptr<Platform> p;
  for (auto& r : open) {
    std::string note;
    if (r.request_id && r.backend == m.backend) {
      try {
        if (!p) {
          config::MeasureConfig at = m;
          at.board = r.target;
          p = open_platform(at);
        }
        Platform::State s = p->poll(*r.request_id);
        r.status = s.status;
        r.queue_position = s.queue_position;
      } catch (const HttpError& e) {
        note = e.what();
      }
    } else if (!r.request_id) {
      note = "upload unanswered: the next nas-measure looks it up before sending again";
    }
    t.add({r.trial_id, r.backend, r.target, r.request_id.value_or(""), r.status,
           r.queue_position ? nlohmann::json(*r.queue_position) : nlohmann::json(nullptr), note});
  }
  t.write(out, format);
  if (m.backend == "mimaas" && std::getenv("MIMAAS_API_TOKEN") != nullptr) {
    Me me = MimaasClient(http_options(m), load_token(m.token_file)).me();
    log::info("MIMaaS account " + me.username + ": " + std::to_string(me.available_runs) + " runs left (" + me.plan + ")");
  }
  return 0;
}

int run_login(const config::MeasureConfig& m, const std::string& username, std::ostream& out) {
  const std::string password = read_password_from_terminal("MIMaaS password for " + username + ": ");
  const std::string token = MimaasClient::login(http_options(m), username, password);
  const std::string path = m.token_file.empty() ? default_token_path() : m.token_file;
  save_token(path, token);
  out << "logged in as " << username << "; token saved to " << path << " (mode 0600)\n";
  return 0;
}

} // namespace nas::measure
