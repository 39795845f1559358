#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace sluice::test {

struct http_result {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  nlohmann::json json() const { return nlohmann::json::parse(body); }
  std::string header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A blocking HTTP/1.1 client on one keep-alive connection to 127.0.0.1:port.
class http_connection {
 public:
  explicit http_connection(std::uint16_t port);
  ~http_connection();
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  http_result request(const std::string& method, const std::string& target,
                      const std::string& body = {},
                      const std::map<std::string, std::string>& headers = {});
  // True when the server has closed the connection (a read returns EOF within `wait`).
  bool closed_by_peer(std::chrono::milliseconds wait);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// One request on a fresh connection.
http_result http_call(std::uint16_t port, const std::string& method, const std::string& target,
                      const std::string& body = {},
                      const std::map<std::string, std::string>& headers = {});

// Raw bytes over one connection, for requests sent in pieces or never finished.
class raw_connection {
 public:
  explicit raw_connection(std::uint16_t port);
  ~raw_connection();
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  void send(const std::string& bytes);
  // Whatever the server sends until it closes the connection or `wait` passes.
  std::string receive(std::chrono::milliseconds wait);
  // True when the server closed the connection within `wait` (what it sent before is dropped).
  bool closed_by_peer(std::chrono::milliseconds wait);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  bool closed_ = false;
};

// True when something accepts TCP connections on 127.0.0.1:port.
bool accepts_connections(std::uint16_t port);

// Writes raw bytes and returns whatever the server sends until it closes or `wait` passes.
std::string send_raw(std::uint16_t port, const std::string& bytes,
                     std::chrono::milliseconds wait = std::chrono::seconds(5));

}  // namespace sluice::test
