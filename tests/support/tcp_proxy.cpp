#include "sluice_test/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <regex>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace sluice::test {

tcp_proxy::tcp_proxy(std::string target_host, std::uint16_t target_port)
    : target_host_(std::move(target_host)), target_port_(target_port) {
  // CLOEXEC: a sluice started later by the test must not inherit (and keep open) our sockets.
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener_, 128) != 0) {
    throw std::runtime_error("tcp_proxy: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

tcp_proxy::~tcp_proxy() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  ::close(listener_);
  acceptor_.join();
  std::lock_guard lock(threads_mutex_);
  for (auto& t : threads_)
    t.join();
}

void tcp_proxy::cut() {
  mode_ = mode::cut;
  ++generation_;
}
void tcp_proxy::pause() {
  mode_ = mode::pause;
}
void tcp_proxy::drop_after(std::chrono::milliseconds lifetime) {
  lifetime_ms_ = lifetime.count();
}
void tcp_proxy::restore() {
  lifetime_ms_ = 0;
  mode_ = mode::forward;
}

void tcp_proxy::accept_loop() {
  while (!stopping_) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0)
      continue;
    const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0)
      continue;
    if (mode_ == mode::cut) {
      ::close(client);
      continue;
    }
    const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(target_port_);
    ::inet_pton(AF_INET, target_host_.c_str(), &addr.sin_addr);
    if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(server);
      ::close(client);
      continue;
    }
    int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard lock(threads_mutex_);
    threads_.emplace_back([this, client, server] { pump(client, server); });
  }
}

void tcp_proxy::pump(int client, int server) {
  const std::uint64_t born = generation_;
  const std::int64_t lifetime_ms = lifetime_ms_;
  const auto dies_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(lifetime_ms);
  char buf[64 * 1024];
  while (!stopping_ && generation_ == born &&
         (lifetime_ms == 0 || std::chrono::steady_clock::now() < dies_at)) {
    if (mode_ == mode::pause) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    if (::poll(fds, 2, 20) <= 0)
      continue;
    bool closed = false;
    for (int i = 0; i < 2 && !closed; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        closed = true;
        break;
      }
      const int to = i == 0 ? server : client;
      for (ssize_t off = 0; off < n;) {
        const ssize_t w = ::write(to, buf + off, static_cast<std::size_t>(n - off));
        if (w <= 0) {
          closed = true;
          break;
        }
        off += w;
      }
    }
    if (closed)
      break;
  }
  // A cut must look like a vanished server, so reset rather than close politely.
  linger hard{1, 0};
  ::setsockopt(client, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  ::setsockopt(server, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  ::close(client);
  ::close(server);
}

std::uint16_t url_port(const std::string& url) {
  static const std::regex port_re(R"(://[^/:@]*(?::[^@/]*@)?[^/:]*:(\d+))");
  std::smatch m;
  if (!std::regex_search(url, m, port_re))
    throw std::runtime_error("no port in " + url);
  return static_cast<std::uint16_t>(std::stoi(m[1]));
}

std::string url_with_port(const std::string& url, std::uint16_t port) {
  const std::string old = ":" + std::to_string(url_port(url));
  const auto at = url.find('@');
  const auto pos = url.find(old, at == std::string::npos ? url.find("://") + 3 : at);
  return url.substr(0, pos) + ":" + std::to_string(port) + url.substr(pos + old.size());
}

}  // namespace sluice::test
