#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"
#include "sluice/store/message_store.hpp"
#include "sluice/store/migrations.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <gtest/gtest.h>

#include "store_test_support.hpp"

// message_store::insert_batch against COPY of the same rows into the same table, in one run.
// SLUICE_BENCH_ROWS sets the rows per measurement (default 50000).
namespace sluice::store {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr std::size_t in_flight = 8;

std::size_t bench_rows() {
  const char* v = std::getenv("SLUICE_BENCH_ROWS");
  return v ? std::stoul(v) : 50'000;
}

std::vector<message> make_rows(std::size_t n) {
  uuid_v7_generator ids;
  std::vector<message> rows;
  rows.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    message m;
    m.id = ids.next();
    m.created_ms = 1'700'000'000'000 + static_cast<std::int64_t>(i);
    m.queue = "orders-" + std::to_string(i % 4);
    m.partition = "p" + std::to_string(i % 16);
    m.namespace_ = "shop";
    m.transaction_id = "txn-" + std::to_string(i);
    // ~200 bytes of JSON, the size the target is set for.
    m.payload =
        R"({"orderId":)" + std::to_string(100000 + i) +
        R"(,"customer":{"id":"c-4711","name":"Ada Lovelace","email":"ada@example.com"},)"
        R"("items":[{"sku":"A-1","qty":2,"price":9.99},{"sku":"B-7","qty":1,"price":24.5}],)"
        R"("currency":"EUR","note":"leave at the door"})";
    rows.push_back(std::move(m));
  }
  return rows;
}

std::string copy_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string copy_timestamp(std::int64_t unix_ms) {
  const std::time_t secs = unix_ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

// COPY of all rows in one statement over a blocking libpq connection: the ceiling.
double copy_rows_per_second(const std::string& conninfo, const std::vector<message>& rows) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  const auto start = std::chrono::steady_clock::now();
  PGresult* res = PQexec(conn.get(),
                         "COPY sluice_messages (id, queue, partition, namespace, task, trace_id, "
                         "transaction_id, payload, created_at) FROM STDIN");
  EXPECT_EQ(PQresultStatus(res), PGRES_COPY_IN) << PQerrorMessage(conn.get());
  PQclear(res);
  std::string chunk;
  const auto opt = [](const std::optional<std::string>& v) {
    return v ? copy_escaped(*v) : std::string("\\N");
  };
  for (const message& m : rows) {
    chunk += m.id.to_string() + '\t' + copy_escaped(m.queue) + '\t' + copy_escaped(m.partition) +
             '\t' + opt(m.namespace_) + '\t' + opt(m.task) + '\t' + opt(m.trace_id) + '\t' +
             opt(m.transaction_id) + '\t' + copy_escaped(m.payload) + '\t' +
             copy_timestamp(m.created_ms) + '\n';
    if (chunk.size() > 64 * 1024) {
      PQputCopyData(conn.get(), chunk.data(), static_cast<int>(chunk.size()));
      chunk.clear();
    }
  }
  PQputCopyData(conn.get(), chunk.data(), static_cast<int>(chunk.size()));
  PQputCopyEnd(conn.get(), nullptr);
  res = PQgetResult(conn.get());
  EXPECT_EQ(PQresultStatus(res), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  PQclear(res);
  while ((res = PQgetResult(conn.get())))
    PQclear(res);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  return static_cast<double>(rows.size()) / took.count();
}

double insert_rows_per_second(asio::io_context& io, message_store& store,
                              const std::vector<message>& rows, std::size_t batch_size,
                              std::size_t workers) {
  std::vector<std::vector<message>> batches;
  for (std::size_t i = 0; i < rows.size(); i += batch_size) {
    batches.emplace_back(
        rows.begin() + static_cast<std::ptrdiff_t>(i),
        rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), i + batch_size)));
  }
  std::size_t next = 0, stored = 0, failed = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t w = 0; w < workers; ++w) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          while (next < batches.size()) {
            const auto& batch = batches[next++];
            const insert_result r = co_await store.insert_batch(batch, test::in(30s));
            if (r.ec) {
              ++failed;
              ADD_FAILURE() << r.ec.message() << ": " << r.message;
              continue;
            }
            for (const insert_outcome& o : r.items)
              stored += o.status == insert_status::stored;
          }
        },
        asio::detached);
  }
  io.restart();
  io.run();
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(failed, 0u);
  EXPECT_EQ(stored, rows.size());
  return static_cast<double>(stored) / took.count();
}

TEST(insert_bench, insert_batch_against_copy) {
  test::scratch_database db;
  asio::io_context io;
  pool_options o;
  o.connection.conninfo = db.conninfo();
  o.max_connections = in_flight;
  pg_pool pool(io.get_executor(), o);
  const migration_result m = test::run(io, apply_migrations(pool, test::in(10s)));
  ASSERT_FALSE(m.ec) << m.message;

  const std::size_t n = bench_rows();
  const std::vector<message> rows = make_rows(n);
  const auto truncate = [&] { db.query("TRUNCATE sluice_messages, sluice_relay_outbox"); };

  // Best of two COPY runs, so a cold cache does not flatter the others.
  double copy_rate = 0;
  for (int i = 0; i < 2; ++i) {
    truncate();
    copy_rate = std::max(copy_rate, copy_rows_per_second(db.conninfo(), rows));
  }
  std::printf("rows per run: %zu, payload %zu bytes, %zu in flight\n", n, rows[0].payload.size(),
              in_flight);
  std::printf("%-16s %6s %8s %12s %9s\n", "method", "batch", "flight", "rows/s", "vs COPY");
  std::printf("%-16s %6s %8s %12.0f %8.0f%%\n", "COPY", "all", "1", copy_rate, 100.0);

  struct config {
    insert_strategy strategy;
    std::size_t batch;
    std::size_t workers;
  };
  const std::vector<config> configs{
      {insert_strategy::unnest, 1, in_flight},   {insert_strategy::pipelined_rows, 1, in_flight},
      {insert_strategy::unnest, 10, in_flight},  {insert_strategy::pipelined_rows, 10, in_flight},
      {insert_strategy::unnest, 100, 1},         {insert_strategy::pipelined_rows, 100, 1},
      {insert_strategy::unnest, 100, in_flight}, {insert_strategy::pipelined_rows, 100, in_flight},
      {insert_strategy::unnest, 500, in_flight}, {insert_strategy::pipelined_rows, 500, in_flight},
  };
  for (const config& c : configs) {
    // Single-row commits are slow; fewer rows keep the run short.
    const std::vector<message> subset(
        rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(
                                         c.batch == 1 ? std::min<std::size_t>(n, 5000) : n));
    truncate();
    message_store store(pool, message_store_options{c.strategy});
    const double rate = insert_rows_per_second(io, store, subset, c.batch, c.workers);
    std::printf("%-16s %6zu %8zu %12.0f %8.0f%%\n",
                c.strategy == insert_strategy::unnest ? "unnest" : "pipelined_rows", c.batch,
                c.workers, rate, 100.0 * rate / copy_rate);
  }
  std::fflush(stdout);
}

}  // namespace
}  // namespace sluice::store
