#include "sluice/query/cursor_key.hpp"

namespace sluice::query {
namespace asio = boost::asio;

namespace {

constexpr std::string_view key_sql = R"sql(
SELECT encode(key, 'hex') FROM sluice_keys WHERE name = 'query_cursor')sql";

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_digit(hex[i]);
    const int lo = hex_digit(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

}  // namespace

asio::awaitable<std::pair<store::statement_status, std::string>> cursor_key::get(
    store::clock::time_point deadline) {
  if (key_)
    co_return std::pair{store::statement_status{}, *key_};
  store::pg_statement s{.sql = key_sql};
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::pair{store::status_of(r), std::string()};
  const auto key = r.rows.size() == 1 && r.rows[0].size() == 1 && r.rows[0][0]
                       ? from_hex(*r.rows[0][0])
                       : std::nullopt;
  if (!key || key->size() < 16) {
    store::statement_status failed;
    failed.ec = store::errc::query_failed;
    failed.message = "sluice_keys has no usable 'query_cursor' key";
    co_return std::pair{failed, std::string()};
  }
  key_ = *key;
  co_return std::pair{store::statement_status{}, *key_};
}

}  // namespace sluice::query
