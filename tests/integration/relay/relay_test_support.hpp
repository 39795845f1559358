#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::relay::test {

// SLUICE_TEST_AMQP_URL (the shared broker); fails the test when unset. For a proxy or a
// private broker in front of the same credentials, sluice::test::url_with_port changes its port.
std::string amqp_url();

// A sluice queue name no other run uses.
std::string unique_queue(const std::string& prefix);

// Installs node's amqplib 0.10 once (sluice::test::ensure_npm_package) and returns the
// node_modules directory it is in.
std::string ensure_amqplib();

// amqp_consumer.js as a child process; see the script for the config fields. The constructor
// returns once the consumer printed "ready" (throws after `ready_timeout`).
class node_consumer {
 public:
  node_consumer(const std::string& amqp_url, const nlohmann::json& config,
                std::chrono::seconds ready_timeout = std::chrono::seconds(30));
  ~node_consumer();
  node_consumer(const node_consumer&) = delete;
  node_consumer& operator=(const node_consumer&) = delete;

  // Waits for the "done" line (the script's own expect/idle/timeout rules end it) and returns
  // every line printed, parsed. Throws on an "error" line or when `timeout` passes.
  std::vector<nlohmann::json> finish(std::chrono::seconds timeout);

 private:
  void read_loop(int fd);

  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<nlohmann::json> lines_;
  std::string stderr_path_;
  bool ready_ = false;
  bool done_ = false;
  bool eof_ = false;
};

// The "done" line among `lines`.
const nlohmann::json& done_line(const std::vector<nlohmann::json>& lines);

// Removes the RabbitMQ queue and exchange named sluice.<queue> (whichever exists) with an
// independent client; errors are ignored (cleanup).
void delete_rabbitmq_objects(const std::string& amqp_url, const std::string& sluice_queue);

// Counts messages of RabbitMQ queue sluice.<queue> by message_id with rabbitmq-c's blocking
// client, consuming until `expected` distinct ids arrived or none came for `idle`.
struct consumed {
  std::map<std::string, int> by_id;
  std::size_t received = 0;
  std::size_t duplicates() const { return received - by_id.size(); }
};
consumed consume_ids(const std::string& amqp_url, const std::string& sluice_queue,
                     std::size_t expected, std::chrono::milliseconds idle);

// One value from /metrics (the first series of that name); nullopt when absent.
std::optional<double> metric(std::uint16_t port, const std::string& name);

// Polls `predicate` every 50 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout);

// Pushes `count` items to `queue` in requests of `batch` items over one keep-alive
// connection; returns the ids sluice answered (throws on a non-201 answer).
std::vector<std::string> push_items(std::uint16_t port, const std::string& queue, int count,
                                    int batch, const std::string& partition = "p0");

// Pushers on their own threads, each pushing batches to `queue` until stopped, with `pause`
// between requests (a steady load, not a flood, keeps the tests short); counts the answers by
// status code and keeps the acknowledged ids. Retries after errors.
class push_load {
 public:
  push_load(std::vector<std::uint16_t> ports, std::string queue, int threads_per_port, int batch,
            std::chrono::milliseconds pause = std::chrono::milliseconds(0));
  ~push_load();
  void stop();
  std::size_t acked() const;
  std::map<int, std::size_t> statuses() const;
  std::vector<std::string> ids() const;

 private:
  void run(std::uint16_t port, int k);

  std::string queue_;
  int batch_;
  std::chrono::milliseconds pause_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mutex_;
  std::vector<std::string> ids_;
  std::map<int, std::size_t> statuses_;
};

}  // namespace sluice::relay::test
