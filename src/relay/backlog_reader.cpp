#include "sluice/relay/backlog_reader.hpp"

#include <spdlog/spdlog.h>

namespace sluice::relay {
namespace asio = boost::asio;
using namespace std::chrono_literals;

backlog_reader::backlog_reader(std::chrono::milliseconds interval,
                               std::chrono::milliseconds statement_timeout, relay_store& store,
                               schema_latch& schema, relay_metrics& metrics)
    : interval_(interval),
      statement_timeout_(statement_timeout),
      store_(store),
      schema_(schema),
      metrics_(metrics) {}

void backlog_reader::stop() {
  stopping_ = true;
  stop_.notify_all();
}

asio::awaitable<void> backlog_reader::run() {
  co_await schema_.wait();
  while (!stopping_) {
    const backlog_result b = co_await store_.backlog(clock::now() + statement_timeout_);
    if (!b.ec) {
      metrics_.backlog.set(static_cast<double>(b.rows));
      metrics_.backlog_age.set(b.oldest_age_seconds.value_or(0.0));
    } else if (error_log_.allow(clock::now(), 60s)) {
      spdlog::warn("relay: cannot measure the backlog error=\"{}\"", b.error_text);
    }
    if (stopping_)
      break;
    co_await stop_.wait_until(clock::now() + interval_);
  }
}

}  // namespace sluice::relay
