#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/types.h>

#include "sluice/amqp/url.hpp"

namespace sluice::amqp::test {

// A RabbitMQ node of the test's own (default amqp port 29772, dist 29773: below the kernel's
// ephemeral range, so no other test's client or proxy can take them while it is down; node
// amqptest@localhost), for scenarios that stop, pause or alarm the broker. Runs as the
// rabbitmq user (RabbitMQ refuses root), so the test must run as root. Its data directory
// survives stop()/start() so durable queues and persisted messages outlive a restart.
// The epmd daemon the node registers with is shared with other nodes and is left running.
class private_broker {
 public:
  explicit private_broker(std::uint16_t port = 29772, std::uint16_t dist_port = 29773,
                          std::string node = "amqptest@localhost");
  ~private_broker();
  private_broker(const private_broker&) = delete;
  private_broker& operator=(const private_broker&) = delete;

  // A TLS listener (amqps) on `port` besides the plain one, with this certificate and key and
  // no client certificate asked for. Call before start(); the files must be readable by the
  // rabbitmq user.
  struct tls_listener {
    std::uint16_t port = 0;
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
  };
  void enable_tls(tls_listener tls);

  // Throws std::runtime_error when the node does not accept AMQP logins within `timeout`.
  void start(std::chrono::seconds timeout = std::chrono::seconds(90));
  // SIGTERM, then SIGKILL after `timeout`; returns once the node's process is gone.
  void stop(std::chrono::seconds timeout = std::chrono::seconds(30));
  void pause();   // SIGSTOP: the TCP connections stay up but nothing answers
  void resume();  // SIGCONT
  // rabbitmqctl -n <node> <args>; returns its exit status.
  int ctl(const std::string& args) const;

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  url broker_url() const;

 private:
  pid_t read_pid_file(std::chrono::seconds timeout) const;

  std::uint16_t port_;
  std::uint16_t dist_port_;
  std::string node_;
  std::string dir_;
  std::string config_file_;  // rabbitmq.conf when enable_tls() was called
  pid_t launcher_ = -1;      // the su process we forked
  pid_t pid_ = -1;           // beam.smp of the node
};

}  // namespace sluice::amqp::test
