#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sluice/http/message.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::api {

struct check_result {
  bool ok = false;
  std::string detail;  // shown to operators: why it failed, or a short state
};

// The dependencies /health/ready reports on. Each module registers a check that answers from
// state it already tracks, or with a bounded probe: a readiness probe must never hang.
class readiness {
 public:
  using check = std::function<boost::asio::awaitable<check_result>()>;
  void add(std::string name, check c);

  // 200 when every check passes, else 503; the body lists every check.
  boost::asio::awaitable<http::response> report() const;

 private:
  std::vector<std::pair<std::string, check>> checks_;
};

}  // namespace sluice::api
