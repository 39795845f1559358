#pragma once

#include <string_view>
#include <system_error>

namespace sluice::store {

// Expected failures of the store. A statement the server rejected is `query_failed`; its
// SQLSTATE travels next to the error_code (pg_result::sqlstate) because an error_code cannot
// carry it.
enum class errc {
  connection_failed = 1,  // could not connect (refused, auth, DNS, connect timeout, backoff)
  connection_lost,        // the connection broke during an operation
  timeout,                // the operation's deadline passed; the connection was closed
  query_failed,           // the server answered a statement with an error (see SQLSTATE)
  pipeline_aborted,       // skipped: an earlier statement of the same pipeline failed
  pool_exhausted,         // too many callers already waiting for a connection
  shut_down,              // the pool is closed or the operation was cancelled
  duplicate_unresolved,   // a conflicting row was reported but could not be read back
};

const std::error_category& store_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), store_category()};
}

// What a caller holding data should do after a failed store operation.
enum class failure_kind {
  none,         // no error
  unavailable,  // PostgreSQL cannot take the data now: fail over to the file buffer, retry later
  rejected,     // PostgreSQL refused this data itself (bad encoding, out of range...): quarantine
  overloaded,   // too many callers waiting for a connection: shed load (HTTP 503)
};

// Only SQLSTATE classes that blame the data are `rejected`; everything else a statement can
// fail with (syntax, missing table, permissions, disk full, statement timeout, admin shutdown)
// is a server-side condition that may be fixed without changing the data, so such data is
// kept (buffered) rather than quarantined.
failure_kind classify(std::error_code ec, std::string_view sqlstate = {}) noexcept;

// A statement that ran out of time (the caller's deadline, statement_timeout, lock_timeout) or
// lost a deadlock: the server may be perfectly healthy and only this statement stuck, on a lock
// say. Callers tell the two apart with a probe on another connection.
bool is_slow_statement(std::error_code ec, std::string_view sqlstate = {}) noexcept;

inline bool is_unavailable(std::error_code ec, std::string_view sqlstate = {}) noexcept {
  return classify(ec, sqlstate) == failure_kind::unavailable;
}

inline bool is_rejected(std::error_code ec, std::string_view sqlstate) noexcept {
  return classify(ec, sqlstate) == failure_kind::rejected;
}

}  // namespace sluice::store

template <>
struct std::is_error_code_enum<sluice::store::errc> : std::true_type {};
