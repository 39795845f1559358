#include "sluice/relay/queue_mode_follower.hpp"

#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;
using namespace std::chrono_literals;

queue_mode_follower::queue_mode_follower(queue_modes& modes, std::chrono::milliseconds interval,
                                         std::chrono::milliseconds statement_timeout,
                                         schema_latch& schema)
    : modes_(modes), interval_(interval), statement_timeout_(statement_timeout), schema_(schema) {}

void queue_mode_follower::stop() {
  stopping_ = true;
  stop_.notify_all();
}

asio::awaitable<void> queue_mode_follower::run() {
  co_await schema_.wait();
  while (!stopping_) {
    const bool was_loaded = modes_.loaded();
    const auto ec = co_await modes_.refresh(clock::now() + statement_timeout_);
    if (ec && error_log_.allow(clock::now(), 60s)) {
      spdlog::warn("relay: cannot read queue modes error=\"{}\"{}", ec.message(),
                   was_loaded ? "" : "; publishing waits for them");
    }
    if (!was_loaded && modes_.loaded() && on_loaded_)
      on_loaded_();
    if (stopping_)
      break;
    co_await stop_.wait_until(clock::now() + (modes_.loaded() ? interval_ : 500ms));
  }
}

}  // namespace sluice::relay
