#pragma once

// Shared by the e2e_* delivery tests: the real sluice binary (workers and ingress roles) on a
// database of its own and the shared RabbitMQ, HTTP targets on a loop thread of the test that
// record every request they get, and the API calls the tests make (subscriptions, pushes, the
// DLQ, /metrics).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sluice/core/async_event.hpp"
#include "sluice/http/message.hpp"
#include "sluice/http/router.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/loop_thread.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::delivery::e2e {

using clock = std::chrono::steady_clock;
using json = nlohmann::json;
using sluice::test::http_result;
using sluice::test::sluice_process;

// Conditions outside this process (a target's records, an API answer, a metric), checked every
// `poll` until `limit` has passed.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit,
                std::chrono::milliseconds poll = std::chrono::milliseconds(10));

// A name no other test of this run (or of a concurrent one on the same broker) uses.
std::string unique_name(const std::string& prefix);

// One request as a target saw it, and what it answered.
struct hit {
  clock::time_point at;  // when the request had arrived (whole)
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int status = 0;

  std::string header(std::string_view name) const;  // case-insensitive; "" when absent
  bool has_header(std::string_view name) const;
  int attempt() const;  // X-Sluice-Attempt, 0 when absent
};

// An HTTP target on the test's loop thread (sluice's own HTTP server): every request is
// recorded, then held for `delay` (set_delay) and while hanging, then answered by the responder,
// called under the
// target's lock with the request and its 0-based arrival index (default: 200 "ok"). The
// destructor waits for the last handler, so none resumes into a destroyed target.
class hook_target {
 public:
  using responder = std::function<http::response(const http::request&, std::size_t index)>;

  explicit hook_target(sluice::test::loop_thread& loop, responder respond = {});
  ~hook_target();
  hook_target(const hook_target&) = delete;
  hook_target& operator=(const hook_target&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/hook") const;

  void set_responder(responder respond);
  void set_delay(std::chrono::milliseconds d) { delay_ms_ = d.count(); }
  // While hanging, requests are held unanswered (after their delay) until hang(false) or the
  // destructor.
  void hang(bool on);
  int in_flight() const { return in_flight_; }

  std::vector<hit> hits() const;
  std::size_t count() const;
  // Requests answered with a 2xx, per Idempotency-Key (the target's deduplication).
  std::map<std::string, int> successes_by_key() const;
  // Every request per Idempotency-Key, in arrival order.
  std::map<std::string, std::vector<hit>> by_key() const;
  int max_in_flight() const { return max_in_flight_; }

 private:
  sluice::test::loop_thread& loop_;
  mutable std::mutex mutex_;
  responder respond_;
  std::vector<hit> hits_;
  std::atomic<long> delay_ms_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  metrics::registry metrics_;
  http::router routes_;
  std::unique_ptr<http::server> server_;
  std::uint16_t port_ = 0;
  int running_ = 0;       // loop thread only
  bool hanging_ = false;  // loop thread only
  async_event idle_;
  async_event released_;
};

// The value of one series of the binary's /metrics (exact name with labels), `fallback` when
// absent.
double metric(std::uint16_t port, const std::string& series, double fallback = 0);

// A fixture with a database of its own, a directory for file buffers and a loop thread for
// targets. Queues it named with queue() are deleted from RabbitMQ afterwards.
class delivery_e2e : public ::testing::Test {
 protected:
  ~delivery_e2e() override;

  sluice::test::loop_thread loop_;
  sluice::test::scoped_database db_;
  sluice::test::temp_dir dir_;

  // A queue name of this test.
  std::string queue(const std::string& prefix);
  // A RabbitMQ queue (e.g. a broadcast subscription's sluice.<queue>~<name>) to delete afterwards.
  void delete_afterwards(const std::string& amqp_queue) { amqp_queues_.push_back(amqp_queue); }

  // The environment of one instance: this test's database, the shared RabbitMQ, roles ingress
  // and workers, a buffer directory of its own per `instance`.
  sluice_process::env_map env(sluice_process::env_map extra = {},
                              const std::string& instance = "a");

  // PUT the subscription (a 503 right after the start, schema not migrated yet, is retried)
  // and wait until `s` consumes it. These helpers throw when that fails, which fails the test
  // and ends it (an ASSERT in a helper would only end the helper).
  void put_subscription(const sluice_process& s, const std::string& queue, const std::string& name,
                        const json& body);
  static void wait_consuming(const sluice_process& s, const std::string& queue,
                             const std::string& name);
  static json get_subscription(const sluice_process& s, const std::string& queue,
                               const std::string& name);

  // Pushes the items (each an object with at least queue and payload) in requests of `batch`;
  // returns the ids in order. Throws on any answer but 201 with "stored" or "buffered".
  static std::vector<std::string> push(const sluice_process& s, const std::vector<json>& items,
                                       std::size_t batch = 500);
  // One push request with this exact body text (payload bytes chosen by the test).
  static std::vector<std::string> push_raw(const sluice_process& s, const std::string& body);

  // GET /api/v1/dlq?<query>, every page.
  static std::vector<json> dlq(const sluice_process& s, const std::string& query);

  // Rows of sluice_delivery_retries of this test's database.
  std::size_t retry_rows();

 private:
  std::vector<std::string> queues_;
  std::vector<std::string> amqp_queues_;
};

}  // namespace sluice::delivery::e2e
