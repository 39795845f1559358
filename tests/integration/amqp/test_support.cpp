#include "test_support.hpp"

#include <atomic>
#include <cstdlib>
#include <exception>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::amqp::test {

connection_options options_for(const url& u, std::chrono::seconds rpc_timeout) {
  connection_options o;
  o.server = u;
  o.connect_timeout = std::chrono::seconds(5);
  o.rpc_timeout = rpc_timeout;
  return o;
}

namespace asio = boost::asio;

url broker_url() {
  const char* text = std::getenv("SLUICE_TEST_AMQP_URL");
  if (text == nullptr || *text == '\0') {
    ADD_FAILURE() << "SLUICE_TEST_AMQP_URL is not set (e.g. amqp://guest:guest@127.0.0.1:55672/)";
    return url{};
  }
  std::string error;
  auto parsed = url::parse(text, &error);
  if (!parsed) {
    ADD_FAILURE() << "SLUICE_TEST_AMQP_URL is not a valid amqp:// URL: " << error;
    return url{};
  }
  return *parsed;
}

std::string unique_name(std::string_view prefix) {
  static std::atomic<int> counter{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::string(prefix) + "." + std::to_string(::getpid()) + "." +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) + "." +
         std::to_string(counter++);
}

void run(const std::function<asio::awaitable<void>(asio::io_context&)>& body,
         std::chrono::seconds limit) {
  asio::io_context io;
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io, body(io), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    if (io.run_one_until(deadline) == 0 && io.stopped()) {
      break;
    }
  }
  if (!done) {
    ADD_FAILURE() << "test body did not finish within " << limit.count() << "s";
    return;
  }
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "test body threw: " << e.what();
    }
  }
  // Whatever the body left behind (close handshakes, linger timers) gets a moment to end.
  io.run_for(std::chrono::seconds(5));
  if (!io.stopped()) {
    ADD_FAILURE() << "work still pending 5s after the test body: a connection was left open";
  }
}

asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace sluice::amqp::test
