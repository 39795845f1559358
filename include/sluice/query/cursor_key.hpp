#pragma once

#include <optional>
#include <string>

#include "sluice/store/pg_pool.hpp"
#include "sluice/store/pg_result.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::query {

// The key the query API signs its cursors with: sluice_keys 'query_cursor', made once by
// migration 8 in the database every instance shares. A setting would do the same only if the
// operator gave every instance the same value and never changed it; a key made per process
// would break every cursor at a restart and on every other instance. Read on first use and
// kept: the row never changes (deleting it and restarting the instances rotates the key, and
// invalidates the cursors in flight).
class cursor_key {
 public:
  explicit cursor_key(store::pg_pool& pool) : pool_(pool) {}

  // The key, or the failure that kept it from being read.
  boost::asio::awaitable<std::pair<store::statement_status, std::string>> get(
      store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
  std::optional<std::string> key_;
};

}  // namespace sluice::query
