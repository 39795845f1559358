#pragma once

#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "sluice/store/pg_connection.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::store {

// One schema version. Versions only ever get appended; an applied one is never edited.
struct migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// All migrations, in version order.
std::span<const migration> migrations();

struct migration_result {
  std::error_code ec;
  std::string message;
  std::vector<int> applied;  // versions this call applied (empty when already current)
  int schema_version = 0;    // highest version present afterwards
};

// Applies the missing migrations in one transaction under a transaction-scoped advisory lock,
// so instances starting together against one database apply each version exactly once.
boost::asio::awaitable<migration_result> apply_migrations(pg_connection& conn,
                                                          clock::time_point deadline);
boost::asio::awaitable<migration_result> apply_migrations(pg_pool& pool,
                                                          clock::time_point deadline);

}  // namespace sluice::store
