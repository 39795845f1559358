#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "sluice/store/errc.hpp"

namespace sluice::store {

// The outcome of one statement: rows as text (NULL = nullopt) and the command tag, or an error.
struct pg_result {
  std::error_code ec;
  std::string sqlstate;  // five characters when the server reported the error
  std::string message;   // the server's or libpq's error text
  std::string command_status;
  std::uint64_t affected_rows = 0;
  std::vector<std::vector<std::optional<std::string>>> rows;

  failure_kind failure() const noexcept { return classify(ec, sqlstate); }
};

// The outcome of a pipeline: one result per statement, in order. `ec` and friends describe the
// first failure; statements after a failed one carry errc::pipeline_aborted.
struct pg_pipeline_result {
  std::error_code ec;
  std::optional<std::size_t> failed_index;  // the statement the server rejected, if one did
  std::string sqlstate;
  std::string message;
  std::vector<pg_result> results;

  failure_kind failure() const noexcept { return classify(ec, sqlstate); }
};

// A statement's outcome without its rows, as the stores of the API's tables hand it to their
// callers: ec (a store::errc), the server's SQLSTATE and text, for the HTTP layer's 503-or-500
// choice. `message` falls back to the error code's text when the server said nothing.
struct statement_status {
  std::error_code ec;
  std::string sqlstate;
  std::string message;

  explicit operator bool() const { return static_cast<bool>(ec); }
};

inline statement_status status_of(const pg_result& r) {
  return {r.ec, r.sqlstate, r.message.empty() && r.ec ? r.ec.message() : r.message};
}

}  // namespace sluice::store
