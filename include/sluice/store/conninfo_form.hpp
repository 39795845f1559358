#pragma once

#include <string_view>

namespace sluice::store {

// How libpq reads DATABASE_URL, which sluice passes as the dbname keyword with expand_dbname:
// only a value with `=` or a postgresql:// or postgres:// prefix is a connection string (libpq's
// own test); anything else is a database name. Header-only, so the config module can check and
// display the setting the same way without linking the store.
inline bool is_connection_string(std::string_view value) {
  return value.find('=') != std::string_view::npos || value.rfind("postgresql://", 0) == 0 ||
         value.rfind("postgres://", 0) == 0;
}

}  // namespace sluice::store
