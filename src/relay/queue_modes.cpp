#include "sluice/relay/queue_modes.hpp"

namespace sluice::relay {
namespace asio = boost::asio;

namespace {
constexpr std::string_view select_all_sql = "SELECT queue, mode FROM sluice_queues";
constexpr std::string_view select_one_sql = "SELECT mode FROM sluice_queues WHERE queue = $1";
constexpr std::string_view upsert_sql = R"sql(
INSERT INTO sluice_queues (queue, mode) VALUES ($1, $2)
ON CONFLICT (queue) DO UPDATE SET mode = excluded.mode, updated_at = now())sql";
}  // namespace

queue_modes::queue_modes(store::pg_pool& pool, queue_mode default_mode)
    : pool_(pool), default_mode_(default_mode) {}

queue_mode queue_modes::mode_of(std::string_view queue) const {
  const auto it = cache_.find(queue);
  return it == cache_.end() ? default_mode_ : it->second;
}

asio::awaitable<std::error_code> queue_modes::refresh(store::clock::time_point deadline) {
  const store::pg_statement s{.sql = select_all_sql, .name = "sluice_queue_modes_all"};
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return r.ec;
  std::map<std::string, queue_mode, std::less<>> fresh;
  for (const auto& row : r.rows) {
    if (row.size() != 2 || !row[0] || !row[1])
      continue;
    if (const auto mode = parse_queue_mode(*row[1]))
      fresh.emplace(*row[0], *mode);
  }
  cache_ = std::move(fresh);
  loaded_ = true;
  co_return std::error_code{};
}

asio::awaitable<std::tuple<std::error_code, queue_setting>> queue_modes::get(
    std::string queue, store::clock::time_point deadline) {
  queue_setting out;
  out.mode = default_mode_;
  store::pg_statement s{.sql = select_one_sql, .name = "sluice_queue_mode_get"};
  s.params.add_text_bytes(queue);
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return std::tuple{r.ec, out};
  if (!r.rows.empty() && !r.rows[0].empty() && r.rows[0][0]) {
    if (const auto mode = parse_queue_mode(*r.rows[0][0])) {
      out.mode = *mode;
      out.configured = true;
    }
  }
  co_return std::tuple{std::error_code{}, out};
}

asio::awaitable<std::error_code> queue_modes::set(std::string queue, queue_mode mode,
                                                  store::clock::time_point deadline) {
  store::pg_statement s{.sql = upsert_sql, .name = "sluice_queue_mode_set"};
  s.params.add_text_bytes(queue);
  s.params.add_text_bytes(to_string(mode));
  const store::pg_result r = co_await pool_.execute(s, deadline);
  if (r.ec)
    co_return r.ec;
  cache_.insert_or_assign(std::move(queue), mode);
  co_return std::error_code{};
}

}  // namespace sluice::relay
