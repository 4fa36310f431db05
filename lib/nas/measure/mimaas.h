// mimaas: the client of MIMaaS, FAU's platform that runs TFLite models on microcontroller boards
//
// The protocol follows the public client (ankilab/mimaas-api; ../shared/REFERENCES.md):
// POST /login, GET /me, GET /boards, POST /validate, POST /requests/ (multipart `network`,
// `board`, `quantize`, `build_mode`), GET /requests/{id}, GET /requests/?board=,
// GET /requests/{id}/artifacts/{name}, DELETE /requests/{id}; `Authorization: TOKEN` (raw).
// Every call is single-shot apart from the retries of HttpClient: polling is the caller's, who
// records the request id before polling so that a killed process resumes instead of paying
// again. A submission whose answer is lost (time-out, reset, 5xx) is looked up by its file name
// before it is sent again: pass a name unique to the model (its sha256), so that the lookup
// finds the request the lost answer created and no run is spent twice.
#pragma once
#include "nas/measure/http.h"
#include "nas/measure/metric.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nas::measure {

inline constexpr const char* kMimaasUrl = "https://www.mimaas.forschung.fau.de/api";
// The firmware's share of the flash in the platform's precheck ("plus firmware overhead
// (277.6 KB)", seen for the nrf5340dk). Other boards may differ: a caller that knows better says so.
inline constexpr int64_t kFirmwareOverheadBytes = 284262;

struct Me {
  std::string username;
  int64_t available_runs = 0;        // the quota: runs left
  std::string plan;
};

// A physical board; submissions name its board_type, whose boards share one queue.
struct Board {
  std::string name;                  // "nrf5340dk_3"
  std::string variant;
  std::string board_type;            // "nrf5340dk"
  int64_t flash_size = 0;            // bytes (the server's KB x 1024); 0 when not reported
  int64_t ram_size = 0;              // bytes; 0 when not reported
  int64_t max_arena_bytes = 0;       // max_available_tensor_arena_size in bytes; 0 when not reported
  int voltage_mv = 0;
  std::string status;                // idle | busy | offline | unknown (this board)
  int queued_requests = 0;           // of its board type
  int processing_requests = 0;       // of its board type
  int online_instances = 0;          // boards of its type online
};

struct Validation {
  bool valid = false;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

struct RequestState {
  std::string id;
  std::string status;                     // pending | processing | done | error
  std::string board;
  bool quantize = false;
  std::string filename;                   // as the server recorded it
  std::optional<int> queue_position;      // 1 = next; only while pending
  std::optional<int> boards_busy;         // only while pending
  std::optional<int> boards_online;       // only while pending
  std::string error_message;              // when error: the server's reason (precheck, flash_failed, ...)
  Metrics metrics;                        // when done: rom_bytes, firmware_ram_bytes, latency_ms, power_mw,
                                          // energy_uj (arena_bytes comes from the UART log: arena_metric)
  std::string raw;                        // the answer's JSON text, for the measurement's raw record
  bool terminal() const { return status == "done" || status == "error"; }
};

class MimaasClient {
public:
  // opts.base_url: kMimaasUrl, MIMAAS_API_URL, or a test server. `token`: load_token(). Throws
  // UsageError as HttpClient does.
  MimaasClient(HttpOptions opts, std::string token);

  // POST /login: the API token of `username`. Throws AuthError for wrong credentials; neither the
  // password nor the token appears in any message.
  static std::string login(const HttpOptions& opts, const std::string& username, const std::string& password);

  Me me() const;                          // GET /me
  std::vector<Board> boards() const;      // GET /boards (every physical board)
  // POST /validate: checks `model_bytes` for `board` (a board type) without spending a run.
  Validation validate(const std::string& model_bytes, const std::string& filename, const std::string& board) const;
  // POST /requests/: spends one run; returns the request id. `filename` (letters, digits, '.',
  // '_', '-'; UsageError otherwise) should be unique to the model: a lost answer is recovered by
  // looking the request up under it (find_request). `build_mode`: "pristine" or "fast".
  // Throws QuotaExhausted when no run is left, HttpError 400 for a refused model or board.
  std::string submit(const std::string& model_bytes, const std::string& filename, const std::string& board,
                     bool quantize, const std::string& build_mode = "pristine") const;
  // GET /requests/{id}: its state now (one call). ProtocolError for an answer without the fields
  // its status needs (a done request without its results, an unknown status).
  RequestState get(const std::string& id) const;
  // GET /requests/?board=: this account's requests on a board type ("" for all).
  std::vector<RequestState> requests(const std::string& board = "") const;
  // The newest request of this account named `filename` on `board` with this quantize setting.
  std::optional<RequestState> find_request(const std::string& filename, const std::string& board,
                                           bool quantize) const;
  // GET /requests/{id}/artifacts/{name} (ram_report, rom_report, power_summary, power_samples,
  // model, error_log, all, ...): the bytes, or nullopt on 404 (not ready, or none of that name).
  std::optional<std::string> artifact(const std::string& id, const std::string& name) const;
  // DELETE /requests/{id}.
  void cancel(const std::string& id) const;

  const HttpClient& http() const { return http_; }

private:
  RequestState parse_request(const nlohmann::json& j, const std::string& endpoint, const std::string& raw) const;
  HttpClient http_;
};

// Why a model cannot run on `board`, or "" when it fits: the model plus the firmware overhead
// against the board's flash, and the tensor arena (when known) against its largest arena; both
// reasons joined by "; " when both fail.
// Checks whose board figure is 0 (not reported) are skipped. Nothing is sent.
std::string why_not_fit(const Board& board, int64_t model_bytes, int64_t firmware_overhead,
                        std::optional<int64_t> arena_bytes);
inline bool fits(const Board& board, int64_t model_bytes, int64_t firmware_overhead,
                 std::optional<int64_t> arena_bytes) {
  return why_not_fit(board, model_bytes, firmware_overhead, arena_bytes).empty();
}

// The tensor arena the model used, in bytes, from a run's UART log: the last line naming
// arena_used (also "arena used", "arena_used_bytes") followed by a number, optionally with a unit
// B, bytes, KB, kB, KiB (x 1024). nullopt when the log has no such line. A gzip-compressed log
// (newer servers) is decompressed first.
std::optional<int64_t> parse_arena_used(const std::string& uart_log);
// {"arena_bytes", value, "bytes"}: the model's tensor arena (not firmware_ram_bytes, the
// firmware's static RAM).
Metric arena_metric(std::optional<int64_t> arena_bytes);

// `bytes` decompressed when they are gzip (magic 1f 8b), else unchanged. Throws nas::Error for a
// corrupt gzip stream.
std::string gunzip_if_compressed(const std::string& bytes);

// Seconds to wait before poll `attempt` (0 for the first) of a request: base_s x 1.5^attempt,
// capped at max_s. The official client polls every 5 s.
double poll_delay(int attempt, double base_s = 5, double max_s = 60);

} // namespace nas::measure
