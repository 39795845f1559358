#include "sluice/relay/loop_group.hpp"

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;

loop_group::loop_group(asio::any_io_executor executor) : executor_(std::move(executor)) {}

void loop_group::spawn(std::string name, asio::awaitable<void> loop,
                       std::shared_ptr<void> keep_alive) {
  ++running_;
  ++by_name_[name];
  asio::co_spawn(
      executor_, std::move(loop),
      [this, name = std::move(name), keep_alive = std::move(keep_alive)](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            spdlog::error("relay: {} loop ended by exception what={}", name, ex.what());
          }
        }
        ended(name);
      });
}

void loop_group::ended(const std::string& name) {
  --running_;
  if (const auto it = by_name_.find(name); it != by_name_.end() && --it->second == 0)
    by_name_.erase(it);
  ended_.notify_all();
}

std::size_t loop_group::running(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? 0 : it->second;
}

asio::awaitable<bool> loop_group::wait(clock::time_point deadline, std::string_view name) {
  const auto busy = [&] { return name.empty() ? running_ != 0 : running(name) != 0; };
  while (busy() && clock::now() < deadline)
    co_await ended_.wait_until(deadline);
  co_return !busy();
}

}  // namespace sluice::relay
