// errors: what a measurement service's client throws (MIMaaS, the generic `http` backend)
#pragma once
#include "nas/core/error.h"

#include <string>

namespace nas::measure {

// A call to a measurement service failed. endpoint() is "METHOD /path" ("GET /requests/12");
// status() the HTTP status of the last answer, 0 when none came. service_fault() is true when
// the service, not the request, is at fault (unreachable, 5xx or 429 after every retry, an
// answer that is not the protocol): the same call may succeed later, and a measurement that
// fails with it is not the trial's fault. Messages never hold the API token or a password.
// Exit 1 unless a subclass says otherwise.
class HttpError : public nas::Error {
public:
  HttpError(std::string endpoint, long status, const std::string& message, bool service_fault,
            Exit code = Exit::failure)
      : nas::Error(message, code), endpoint_(std::move(endpoint)), status_(status),
        service_fault_(service_fault) {}
  const std::string& endpoint() const { return endpoint_; }
  long status() const { return status_; }
  bool service_fault() const { return service_fault_; }
private:
  std::string endpoint_;
  long status_;
  bool service_fault_;
};

// The service refused the credentials: 401, or a 403 that is not about the quota; also a
// login that failed. The user must log in again or fix the token: exit 2, like a bad setting.
class AuthError : public HttpError {
public:
  AuthError(std::string endpoint, long status, const std::string& message)
      : HttpError(std::move(endpoint), status, message, false, Exit::usage) {}
};

// 403 whose message says "no available runs": the account's quota is spent. Nothing more may
// be submitted until it is raised; requests already submitted still run. Exit 1.
class QuotaExhausted : public HttpError {
public:
  QuotaExhausted(std::string endpoint, const std::string& message)
      : HttpError(std::move(endpoint), 403, message, false) {}
};

// No answer after every attempt: connection refused or reset, time-outs, truncated bodies, TLS
// failures (a certificate that does not verify is never retried). status() is 0.
class Unreachable : public HttpError {
public:
  Unreachable(std::string endpoint, const std::string& message)
      : HttpError(std::move(endpoint), 0, message, true) {}
};

// An answer that is not the protocol: JSON that does not parse, a field missing or of the wrong
// type. field() names the field ("" when the body as a whole is bad).
class ProtocolError : public HttpError {
public:
  ProtocolError(std::string endpoint, long status, std::string field, const std::string& message)
      : HttpError(std::move(endpoint), status, message, true), field_(std::move(field)) {}
  const std::string& field() const { return field_; }
private:
  std::string field_;
};

// A stop signal (nas::request_stop, SIGTERM, Slurm's warning) ended a call or the wait before
// a retry. Nothing is known of a call it cut short.
class Interrupted : public HttpError {
public:
  explicit Interrupted(std::string endpoint)
      : HttpError(endpoint, 0, endpoint + ": interrupted by a stop signal", true) {}
};

} // namespace nas::measure
