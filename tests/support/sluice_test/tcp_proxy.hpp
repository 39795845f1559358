#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::test {

// A TCP proxy on 127.0.0.1 in front of a real server, for chaos tests: `cut()` drops every
// connection and refuses new ones (accepted and closed at once), `pause()` keeps connections
// open but stops moving bytes (a hung server), `drop_after(d)` forwards but resets each new
// connection `d` after it was accepted (a server that drops its clients), `restore()` goes
// back to plain forwarding.
class tcp_proxy {
 public:
  tcp_proxy(std::string target_host, std::uint16_t target_port);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  std::uint16_t port() const { return port_; }
  void cut();
  void pause();
  void drop_after(std::chrono::milliseconds lifetime);
  void restore();

 private:
  enum class mode { forward, cut, pause };
  void accept_loop();
  void pump(int client, int server);

  std::string target_host_;
  std::uint16_t target_port_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<mode> mode_{mode::forward};
  std::atomic<std::int64_t> lifetime_ms_{0};  // 0 = connections live as long as their ends
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> generation_{0};  // bumped by cut(): pumps of older generations close
  std::mutex threads_mutex_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

// The port of a postgresql://host:port/... URL, and the URL with another port.
std::uint16_t url_port(const std::string& url);
std::string url_with_port(const std::string& url, std::uint16_t port);

}  // namespace sluice::test
