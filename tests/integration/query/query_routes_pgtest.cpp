// The query routes in process, with the caller a token would give them (authentication itself
// is the server's): their route options, a message of a queue the caller's prefixes do not
// cover answered as missing, and the queue list limited to the covered queues.
#include <chrono>
#include <memory>

#include "sluice/api/query_routes.hpp"
#include "sluice/http/caller.hpp"
#include "sluice/store/migrations.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice_test/pg.hpp"

namespace sluice::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using json = nlohmann::json;

template <typename T>
T run(asio::io_context& io, asio::awaitable<T> work) {
  auto future = asio::co_spawn(io, std::move(work), asio::use_future);
  io.restart();
  io.run();
  return future.get();
}

class query_routes : public ::testing::Test {
 protected:
  scoped_database db_;
  asio::io_context io_;
  std::unique_ptr<store::pg_pool> pool_;
  http::router routes_;

  void SetUp() override {
    store::pool_options o;
    o.connection.conninfo = db_.url();
    o.max_connections = 2;
    pool_ = std::make_unique<store::pg_pool>(io_.get_executor(), o);
    const auto migrated = run(io_, store::apply_migrations(*pool_, store::clock::now() + 10s));
    ASSERT_FALSE(migrated.ec) << migrated.message;
    api::add_query_routes(routes_, *pool_, {100, 1000}, 5s);
    pg_session pg(db_.url());
    pg.query(
        "INSERT INTO sluice_messages (id, queue, partition, payload, created_at) VALUES "
        "('01890a5d-ac96-774b-bcce-b302099a8001', 'orders.eu', 'p', '{}', now()), "
        "('01890a5d-ac96-774b-bcce-b302099a8002', 'orders.us', 'p', '{}', now()), "
        "('01890a5d-ac96-774b-bcce-b302099a8003', 'invoices', 'p', '{}', now())");
  }

  void TearDown() override {
    pool_->shutdown();
    io_.restart();
    io_.run_for(1s);
  }

  http::response get(const std::string& target, std::shared_ptr<const http::caller> caller) {
    http::request req;
    req.method = "GET";
    req.target = target;
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    req.query = q == std::string::npos ? "" : target.substr(q + 1);
    req.caller = std::move(caller);
    const auto m = routes_.find(req);
    EXPECT_EQ(m.outcome, http::router::match::kind::found) << target;
    if (m.outcome != http::router::match::kind::found)
      return {};
    return run(io_, (*m.target)(req));
  }
};

std::shared_ptr<const http::caller> reader(std::vector<std::string> prefixes) {
  auto c = std::make_shared<http::caller>();
  c->name = "reader";
  c->read = true;
  c->prefixes = std::move(prefixes);
  return c;
}

TEST_F(query_routes, need_read_and_name_their_queue) {
  int found = 0;
  for (const auto& r : routes_.list()) {
    ++found;
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.options->required, http::access::read) << r.pattern;
    const bool names_queue = r.pattern.find("{queue}") != std::string::npos;
    EXPECT_EQ(r.options->resource_param, names_queue ? "queue" : "") << r.pattern;
  }
  EXPECT_EQ(found, 4);
}

TEST_F(query_routes, a_message_of_an_uncovered_queue_is_not_found) {
  const auto orders = reader({"orders."});
  EXPECT_EQ(get("/api/v1/messages/01890a5d-ac96-774b-bcce-b302099a8001", orders).status, 200);
  const auto other = get("/api/v1/messages/01890a5d-ac96-774b-bcce-b302099a8003", orders);
  EXPECT_EQ(other.status, 404);
  // The same answer as an id that does not exist: nothing tells the two apart.
  const auto missing = get("/api/v1/messages/01890a5d-ac96-774b-bcce-b302099a8fff", orders);
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(other.body)["error"]["code"], json::parse(missing.body)["error"]["code"]);
  EXPECT_EQ(get("/api/v1/messages/01890a5d-ac96-774b-bcce-b302099a8003", reader({})).status, 200);
  EXPECT_EQ(get("/api/v1/messages/01890a5d-ac96-774b-bcce-b302099a8003", nullptr).status, 200);
}

TEST_F(query_routes, the_queue_list_holds_only_covered_queues) {
  const auto body = json::parse(get("/api/v1/queues?limit=1", reader({"orders.", "x"})).body);
  ASSERT_EQ(body["items"].size(), 1u);
  EXPECT_EQ(body["items"][0]["queue"], "orders.eu");
  const auto next =
      json::parse(get("/api/v1/queues?limit=1&cursor=" + body["next"].get<std::string>(),
                      reader({"orders.", "x"}))
                      .body);
  ASSERT_EQ(next["items"].size(), 1u);
  EXPECT_EQ(next["items"][0]["queue"], "orders.us");
  EXPECT_TRUE(next["next"].is_null()) << "a full page of covered queues, none after it";
  EXPECT_EQ(json::parse(get("/api/v1/queues", nullptr).body)["items"].size(), 3u);
}

TEST_F(query_routes, names_are_escaped_as_json) {
  pg_session pg(db_.url());
  pg.query(
      "INSERT INTO sluice_messages (id, queue, partition, trace_id, payload, created_at) "
      "VALUES ('01890a5d-ac96-774b-bcce-b302099a8010', 'odd', E'a\"b\\\\c\\nd\\x01é', "
      "E'\\t', '[]', now())");
  const auto r = get("/api/v1/queues/odd/messages", nullptr);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = json::parse(r.body);
  EXPECT_EQ(body["items"][0]["partition"], "a\"b\\c\nd\x01é");
  EXPECT_EQ(body["items"][0]["traceId"], "\t");
  const auto partitions = json::parse(get("/api/v1/queues/odd/partitions", nullptr).body);
  EXPECT_EQ(partitions["items"][0], "a\"b\\c\nd\x01é");
}

}  // namespace
}  // namespace sluice::test
