#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include "sluice/amqp/channel.hpp"
#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/error.hpp"
#include "sluice/amqp/publisher.hpp"
#include "sluice/core/async_event.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::amqp {

struct client_options {
  connection_options connection;
  publisher_options publisher;
  bool enable_publisher = true;
  // Reconnect backoff: doubles after every failed attempt up to the cap, and each wait is
  // jittered to between half and all of it, so many instances do not reconnect in lockstep.
  std::chrono::milliseconds reconnect_initial_delay{500};
  std::chrono::milliseconds reconnect_max_delay{30000};
  // A connection lost sooner than this after it came up is retried with the backoff above
  // (growing), not at once: a broker that drops us on every attempt gets no reconnect storm.
  std::chrono::milliseconds stable_after{5000};
  // While connected, how often a failed publisher channel or consumer is retried.
  std::chrono::milliseconds resource_retry_interval{1000};
  // stop(): bound for closing the connection politely.
  std::chrono::milliseconds stop_timeout{5000};
};

// A consumer the client keeps alive: on every connection it gets its own channel with
// basic.qos(prefetch) and basic.consume. Deliveries of a lost connection cannot be acked any
// more (their delivery's ack() says so); the broker redelivers them with redelivered=true.
struct consumer_spec {
  std::string queue;
  std::uint16_t prefetch = 100;
  consume_options options;
  delivery_handler on_delivery;
};

enum class client_state { stopped, connecting, connected, blocked, reconnecting };
const char* to_string(client_state state);

struct client_stats {
  std::uint64_t connects = 0;           // connections set up, the first one included
  std::uint64_t reconnects = 0;         // connections set up after a lost one
  std::uint64_t connection_losses = 0;  // established connections that died
  std::uint64_t connect_failures = 0;   // attempts that failed (TCP, handshake, topology)
  std::uint64_t consumer_restarts = 0;
};

// Declares exchanges/queues/bindings on a fresh connection, before anything publishes or
// consumes. Runs again after every reconnect, so it must be idempotent (declares are).
using topology_callback = std::function<boost::asio::awaitable<std::error_code>(channel&)>;

// The reconnect supervisor: keeps one connection up, re-runs the topology, re-attaches the
// publisher (which re-sends what was unconfirmed) and restarts consumers. The application
// reads state() for readiness, stats() and publisher()->stats() for metrics.
class client : public std::enable_shared_from_this<client> {
 public:
  using clock = std::chrono::steady_clock;

  static std::shared_ptr<client> create(boost::asio::any_io_executor executor,
                                        client_options options);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Call before start().
  void set_topology(topology_callback topology) { topology_ = std::move(topology); }
  void on_state_change(std::function<void(client_state)> listener);
  // May be called before or after start(); started on the current connection within
  // resource_retry_interval.
  void add_consumer(consumer_spec spec);

  void start();
  // Closes the connection (bounded by stop_timeout) and fails whatever is still unconfirmed
  // with errc::shutting_down. Call publisher()->wait_idle() first to drain.
  boost::asio::awaitable<void> stop();
  // True once connected (or connected but blocked); false at the deadline or after stop().
  boost::asio::awaitable<bool> wait_connected(clock::time_point deadline);
  // A channel on the current connection, for callers with needs of their own.
  boost::asio::awaitable<std::tuple<std::error_code, std::shared_ptr<channel>>> open_channel();

  client_state state() const { return state_; }
  bool ready() const { return state_ == client_state::connected; }
  const std::shared_ptr<publisher>& get_publisher() const { return publisher_; }
  const client_stats& stats() const { return stats_; }
  // Why the last connection or attempt ended, with the broker's text when it said something.
  const close_reason& last_error() const { return last_error_; }
  std::shared_ptr<connection> current_connection() const { return connection_; }
  const client_options& options() const { return options_; }

 private:
  struct consumer_slot {
    consumer_spec spec;
    std::shared_ptr<channel> live;
    bool ended = false;
    bool started_once = false;
  };

  client(boost::asio::any_io_executor executor, client_options options);

  boost::asio::awaitable<void> run();
  boost::asio::awaitable<std::error_code> setup(const std::shared_ptr<connection>& conn);
  boost::asio::awaitable<void> serve(const std::shared_ptr<connection>& conn);
  boost::asio::awaitable<std::error_code> attach_publisher(const std::shared_ptr<connection>& conn);
  boost::asio::awaitable<void> start_consumers(const std::shared_ptr<connection>& conn);
  std::chrono::milliseconds jittered(std::chrono::milliseconds delay);
  // Logs `why` with the last error, waits jittered(delay) (or until stop()), doubles delay up to
  // reconnect_max_delay.
  boost::asio::awaitable<void> back_off(std::chrono::milliseconds& delay, const char* why);
  void set_state(client_state s);

  boost::asio::any_io_executor executor_;
  client_options options_;
  topology_callback topology_;
  std::shared_ptr<publisher> publisher_;
  std::shared_ptr<connection> connection_;
  std::vector<std::shared_ptr<consumer_slot>> consumers_;
  std::vector<std::function<void(client_state)>> state_listeners_;
  client_state state_ = client_state::stopped;
  client_stats stats_;
  close_reason last_error_;
  bool started_ = false;
  bool stopping_ = false;
  bool running_ = false;
  std::minstd_rand rng_;
  async_event event_;
};

}  // namespace sluice::amqp
