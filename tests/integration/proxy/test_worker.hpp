#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sluice/amqp/delivery.hpp"
#include "sluice/rpc/rpc_message.hpp"
#include "sluice/services/service.hpp"

#include <boost/asio/io_context.hpp>

namespace sluice::proxy::test {

// Plays the workers' side for ingress tests, on a loop thread of its own with sluice's AMQP
// connection: declares the service's topology (as workers do), consumes one flavour queue and
// answers on the reply-to with rpc::encode_reply.
//   echo   status 200 (or X-Want-Status), the request body back, the method and target in
//          X-Echo-Method / X-Echo-Target, two Set-Cookie headers and a hop-by-hop Connection
//   hold   keeps the request unanswered until release_held()
//   error  error_code upstream_unavailable
class test_worker {
 public:
  enum class mode { echo, hold, error };

  test_worker(std::string amqp_url, services::service service, std::string flavour,
              mode m = mode::echo);
  ~test_worker();
  test_worker(const test_worker&) = delete;
  test_worker& operator=(const test_worker&) = delete;

  // Returns once consuming (throws after 20 s).
  void start();
  void stop();
  // Answers everything held (echo replies), on the worker's thread; returns once sent.
  void release_held();

  std::size_t received() const;
  std::vector<rpc::rpc_request> requests() const;
  // Until received() >= n or the timeout.
  bool wait_received(std::size_t n, std::chrono::milliseconds timeout) const;

 private:
  void on_delivery(const amqp::delivery& d);
  void reply(const rpc::rpc_request& request, const rpc::reply_address& to);

  std::string url_;
  services::service service_;
  std::string flavour_;
  mode mode_;
  boost::asio::io_context io_;
  std::thread thread_;
  struct state;
  std::shared_ptr<state> state_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<rpc::rpc_request> requests_;
  std::vector<std::pair<rpc::rpc_request, rpc::reply_address>> held_;
};

}  // namespace sluice::proxy::test
