#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "sluice/delivery/subscription.hpp"
#include "sluice/store/pg_connection.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

// The outcome of a statement on sluice_subscriptions: ec (a store::errc) and the server's text.
// sqlstate "42P01": the table does not exist yet (migrations not run).
using subscription_status = store::statement_status;

struct subscription_put_result {
  subscription_status status;
  bool created = false;
  // Set instead of storing: the queue is in queue mode and has another subscription (its name).
  std::optional<std::string> conflict_with;
  // Set instead of storing: "ordering":"partition" on a queue in queue mode.
  bool ordering_needs_broadcast = false;
  std::optional<subscription> stored;
};

struct subscription_change_result {
  subscription_status status;
  bool found = false;
};

// The outcome of switch_to_queue_mode: refused (nothing written) while the queue has two or
// more subscriptions, or one with ordering "partition".
struct queue_mode_switch_result {
  subscription_status status;
  bool switched = false;
  std::vector<std::string> subscriptions;  // the queue's, by name, when refused
  std::optional<std::string> ordered;      // the one with ordering "partition", when refused so
};

struct subscription_list_result {
  subscription_status status;
  std::vector<subscription> items;   // sorted by (queue, name)
  std::vector<std::string> skipped;  // rows that did not parse: logged and left out
};

// Subscriptions in PostgreSQL (migration 6: sluice_subscriptions). Every write fires the
// table's trigger, which NOTIFYs 'sluice_subscriptions' with "<queue>/<name>"
// (subscription_follower listens). One round trip per call.
class subscription_store {
 public:
  explicit subscription_store(store::pg_pool& pool);

  // Upserts the spec (the pause state is kept). `queue_mode_single`: the queue is in queue mode,
  // so another subscription name on it is a conflict, and so is ordering "partition" (checked in
  // the same transaction, under a per-queue advisory lock, so two instances cannot both add
  // one). The queue's row in sluice_queues, when it has one, is re-read under that lock and wins
  // over `queue_mode_single`, which then only stands for the default mode (DELIVERY_MODE): a
  // concurrent switch_to_queue_mode cannot slip between the caller's read and the write.
  boost::asio::awaitable<subscription_put_result> put(const subscription& s, bool queue_mode_single,
                                                      store::clock::time_point deadline);
  // Sets sluice_queues' mode of `queue` to 'queue' unless its subscriptions forbid it, under the
  // same per-queue lock as put (PUT /api/v1/queues/{queue} {"mode":"queue"}; relay::queue_modes
  // owns the table and its cache, so the caller also tells it).
  boost::asio::awaitable<queue_mode_switch_result> switch_to_queue_mode(
      std::string_view queue, store::clock::time_point deadline);
  boost::asio::awaitable<subscription_change_result> remove(std::string_view queue,
                                                            std::string_view name,
                                                            store::clock::time_point deadline);
  // Pauses (a 410 from the target, reason "gone: <status line excerpt>") or resumes one.
  boost::asio::awaitable<subscription_change_result> set_paused(std::string_view queue,
                                                                std::string_view name, bool paused,
                                                                std::string reason,
                                                                store::clock::time_point deadline);

  boost::asio::awaitable<std::tuple<subscription_status, std::optional<subscription>>> load(
      std::string_view queue, std::string_view name, store::clock::time_point deadline);
  // Every subscription, or those of one queue.
  boost::asio::awaitable<subscription_list_result> load_all(std::optional<std::string> queue,
                                                            store::clock::time_point deadline);

  // The same reads on a connection of the caller's (the follower's LISTEN connection).
  static boost::asio::awaitable<std::tuple<subscription_status, std::optional<subscription>>> load(
      store::pg_connection& conn, std::string_view queue, std::string_view name,
      store::clock::time_point deadline);
  static boost::asio::awaitable<subscription_list_result> load_all(
      store::pg_connection& conn, store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
};

}  // namespace sluice::delivery
