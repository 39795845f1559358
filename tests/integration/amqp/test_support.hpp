#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/url.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace sluice::amqp::test {

// SLUICE_TEST_AMQP_URL, parsed. A missing or bad variable fails the test (never skips it).
url broker_url();

// A queue/exchange name no other run uses: prefix, pid, time and a counter.
std::string unique_name(std::string_view prefix);

// Runs `body` on a fresh io_context and fails the test if it does not finish within `limit`,
// or if coroutines are still running afterwards (a connection the test forgot to close).
void run(const std::function<boost::asio::awaitable<void>(boost::asio::io_context&)>& body,
         std::chrono::seconds limit = std::chrono::seconds(60));

// Connection options for a test broker: short deadlines so a broken broker fails a test fast.
connection_options options_for(const url& u,
                               std::chrono::seconds rpc_timeout = std::chrono::seconds(5));

// Sleeps on the loop without blocking it.
boost::asio::awaitable<void> sleep_for(std::chrono::steady_clock::duration d);

}  // namespace sluice::amqp::test

// ASSERT_* returns from the function, which a coroutine cannot do; these co_return instead.
#define CO_ASSERT_TRUE(cond)                             \
  if (!(cond)) {                                         \
    ADD_FAILURE() << "CO_ASSERT_TRUE(" #cond ") failed"; \
    co_return;                                           \
  }
#define CO_ASSERT_OK(ec)                                                          \
  if (const std::error_code co_assert_ec_ = (ec)) {                               \
    ADD_FAILURE() << "CO_ASSERT_OK(" #ec ") failed: " << co_assert_ec_.message(); \
    co_return;                                                                    \
  }
