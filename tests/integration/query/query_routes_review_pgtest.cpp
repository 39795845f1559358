// Review: what GET /api/v1/messages/{id} shows of an async proxy request. The message of an
// @async.<service> queue is the proxied request's envelope, whose "headers" hold the client's
// Authorization for the target (on /proxy/* the client's Authorization belongs to the target;
// sluice's own token travels in Proxy-Authorization). A token with only the read role must not
// be handed another client's credentials for a target service.
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

#include "sluice_test/pg.hpp"

namespace sluice::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

template <typename T>
T run(asio::io_context& io, asio::awaitable<T> work) {
  auto future = asio::co_spawn(io, std::move(work), asio::use_future);
  io.restart();
  io.run();
  return future.get();
}

class query_routes_review : public ::testing::Test {
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
    // The envelope as rpc/async_envelope.cpp writes it (README "Async requests").
    pg.query(
        "INSERT INTO sluice_messages (id, queue, partition, payload, created_at) VALUES "
        "('01890a5d-ac96-774b-bcce-b302099a8101', '@async.payments', 'Default', "
        "'{\"v\":1,\"service\":\"payments\",\"method\":\"POST\",\"target\":\"/charge\","
        "\"headers\":[[\"Authorization\",\"Bearer target-secret-123\"],"
        "[\"Content-Type\",\"application/json\"]],\"body\":\"{}\",\"bodyEncoding\":\"utf8\"}', "
        "now())");
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

TEST_F(query_routes_review, a_read_token_is_not_given_the_proxied_authorization_header) {
  auto reader = std::make_shared<http::caller>();
  reader->name = "dashboard";
  reader->read = true;  // read only: may not proxy, push or poll async requests
  const auto answer = get("/api/v1/messages/01890a5d-ac96-774b-bcce-b302099a8101", reader);
  EXPECT_EQ(answer.body.find("target-secret-123"), std::string::npos)
      << "status " << answer.status << ": " << answer.body;
}

// "Bad parameters -> 400 naming the parameter". A misspelt filter is a bad parameter: answered
// 200 with the filter silently dropped, a client reads every partition's rows as if they were
// one device's (the push API makes unknown fields errors for this reason; the ingest route
// answers an unknown parameter 400 invalid_parameter).
TEST_F(query_routes_review, a_misspelt_filter_is_a_400_naming_it) {
  pg_session pg(db_.url());
  pg.query(
      "INSERT INTO sluice_messages (id, queue, partition, payload, created_at) VALUES "
      "('01890a5d-ac96-774b-bcce-b302099a8201', 'telemetry', 'dev-1', '{}', now()), "
      "('01890a5d-ac96-774b-bcce-b302099a8202', 'telemetry', 'dev-2', '{}', now())");
  const auto typo = get("/api/v1/queues/telemetry/messages?partiton=dev-1", nullptr);
  EXPECT_EQ(typo.status, 400) << typo.body;
  EXPECT_NE(typo.body.find("partiton"), std::string::npos) << typo.body;
  const auto start = get("/api/v1/queues/telemetry/messages?start=2030-01-01T00:00:00Z", nullptr);
  EXPECT_EQ(start.status, 400) << start.body;
}

}  // namespace
}  // namespace sluice::test
