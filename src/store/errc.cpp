#include "sluice/store/errc.hpp"

#include <string>

namespace sluice::store {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.store"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::connection_failed:
        return "could not connect to PostgreSQL";
      case errc::connection_lost:
        return "connection to PostgreSQL lost";
      case errc::timeout:
        return "PostgreSQL operation timed out";
      case errc::query_failed:
        return "PostgreSQL rejected the statement";
      case errc::pipeline_aborted:
        return "statement skipped after an earlier error in the pipeline";
      case errc::pool_exhausted:
        return "too many callers waiting for a PostgreSQL connection";
      case errc::shut_down:
        return "PostgreSQL pool shut down";
      case errc::duplicate_unresolved:
        return "conflicting row could not be read back";
    }
    return "unknown store error";
  }
};

bool data_sqlstate_class(std::string_view sqlstate) {
  if (sqlstate.size() != 5)
    return false;
  const std::string_view cls = sqlstate.substr(0, 2);
  // 22 data exception, 23 integrity constraint violation, 54 program limit exceeded (e.g. an
  // index row too large for a giant transactionId).
  return cls == "22" || cls == "23" || cls == "54";
}

}  // namespace

const std::error_category& store_category() noexcept {
  static const category instance;
  return instance;
}

failure_kind classify(std::error_code ec, std::string_view sqlstate) noexcept {
  if (!ec)
    return failure_kind::none;
  if (ec == errc::pool_exhausted)
    return failure_kind::overloaded;
  if (ec == errc::query_failed && data_sqlstate_class(sqlstate))
    return failure_kind::rejected;
  return failure_kind::unavailable;
}

bool is_slow_statement(std::error_code ec, std::string_view sqlstate) noexcept {
  if (ec == errc::timeout)
    return true;
  // query_canceled (statement_timeout), lock_not_available (lock_timeout), deadlock_detected.
  return ec == errc::query_failed &&
         (sqlstate == "57014" || sqlstate == "55P03" || sqlstate == "40P01");
}

}  // namespace sluice::store
