#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "sluice/delivery/dead_letter.hpp"
#include "sluice/store/migrations.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "sluice_test/pg.hpp"

namespace sluice::delivery::test {

template <typename T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> work) {
  auto future = boost::asio::co_spawn(io, std::move(work), boost::asio::use_future);
  io.restart();
  io.run();
  return future.get();
}

inline store::clock::time_point in(std::chrono::milliseconds d) {
  return store::clock::now() + d;
}

// A database of its own with the migrations applied, and a pool on the test's io_context.
struct dlq_database {
  sluice::test::scoped_database db;
  boost::asio::io_context io;
  std::unique_ptr<store::pg_pool> pool;

  explicit dlq_database(std::size_t connections = 4);
  sluice::test::pg_session session() const { return sluice::test::pg_session(db.url()); }
};

// A dead letter of message `id` (a v7 id made from `n`), queue/subscription as given, with a
// payload that names n.
dead_letter make_dead_letter(int n, const std::string& queue, const std::string& subscription);
uuid id_of(int n);

// A (paused) subscription queue/name, so that its dead letters can be re-driven: a re-drive
// into a subscription that does not exist is refused (the message would be lost).
void subscribe(sluice::test::pg_session& s, const std::string& queue, const std::string& name);

// Sets dead_at of every row to base + its message number * step (rows made by
// make_dead_letter), so tests control the listing order.
void spread_dead_at(sluice::test::pg_session& s, std::chrono::milliseconds step);

}  // namespace sluice::delivery::test
