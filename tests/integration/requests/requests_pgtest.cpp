// Async proxy requests end to end, against real PostgreSQL and RabbitMQ. The ingress route
// (/proxy/{service}/..., Prefer: respond-async) is not part of this module, so the submitter and
// the response store run in this process, on an io_context of the test's, exactly as the daemon
// wires them (push_service over a pg_pool and file buffer logs of their own); the real binary,
// on the same database, runs the relay (which publishes the requests) and
// GET /api/v1/requests/{id}. A test consumer reads the flavour queue and decodes what arrives
// with rpc::decode_request, as a worker does.
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <thread>

#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/consumer.hpp"
#include "sluice/buffer/buffer_log.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/push/push_service.hpp"
#include "sluice/relay/relay_service.hpp"
#include "sluice/requests/async_request_submitter.hpp"
#include "sluice/requests/response_store.hpp"
#include "sluice/rpc/async_envelope.hpp"
#include "sluice/rpc/rpc_topology.hpp"
#include "sluice/services/service_registry.hpp"
#include "sluice/store/message_store.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sluice_test/env.hpp"
#include "sluice_test/eventually.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"
#include "test_support.hpp"

namespace sluice::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using json = nlohmann::json;

// Service names: letters, digits, '-', '_', '.'; unique per run so the shared broker's objects
// of other runs never interfere.
std::string unique_service(const std::string& prefix) {
  std::string name = amqp::test::unique_name(prefix);
  for (char& c : name) {
    if (c == '.')
      c = '-';
  }
  return name;
}

// The daemon's async-request half (push path, submitter, response store) on a thread of its
// own; every call hops onto that thread and waits.
class ingress_half {
 public:
  // Defined first: later members deduce their return types from it.
  template <class F>
  auto call(F f) {
    return asio::co_spawn(io_, std::move(f), asio::use_future).get();
  }

  // `with_relay`: a relay of its own publishes what this push path commits, from memory (its
  // sweeper waits a minute, so only the in-memory path runs); else nothing here publishes.
  ingress_half(const std::string& database_url, const std::string& buffer_dir,
               bool with_relay = false) {
    store::pool_options po;
    po.connection.conninfo = database_url;
    po.connection.connect_timeout = 1s;
    po.connection.statement_timeout = 2s;
    po.max_connections = 4;
    po.reconnect_backoff_max = 500ms;
    pool_ = std::make_unique<store::pg_pool>(io_.get_executor(), po);
    messages_ = std::make_unique<store::message_store>(*pool_);
    std::error_code ec;
    failover_log_ = buffer::buffer_log::open(std::filesystem::path(buffer_dir) / "failover",
                                             buffer::buffer_options{}, io_.get_executor(), ec);
    EXPECT_FALSE(ec) << ec.message();
    qos0_log_ = buffer::buffer_log::open(std::filesystem::path(buffer_dir) / "qos0",
                                         buffer::buffer_options{}, io_.get_executor(), ec);
    EXPECT_FALSE(ec) << ec.message();
    failover_ = std::make_unique<push::buffer_log_records>(*failover_log_);
    qos0_ = std::make_unique<push::buffer_log_records>(*qos0_log_);
    push::push_service_options o;
    o.deadline = 3s;
    o.batcher.deadline = 2s;
    pushes_ = std::make_unique<push::push_service>(io_.get_executor(), *pool_, *messages_,
                                                   *failover_, *qos0_, metrics_, o);
    if (with_relay) {
      modes_ = std::make_unique<relay::queue_modes>(*pool_);
      amqp::settings as;
      as.url = require_env("SLUICE_TEST_AMQP_URL");
      relay::relay_options ro;
      ro.client = *amqp::make_client_options(as);
      ro.claim.grace = 60s;
      ro.schema_ready = [this] { return pushes_->gate().schema_ready(); };
      relay_ = relay::relay_service::create(io_.get_executor(), *pool_, *modes_, metrics_,
                                            std::move(ro));
      pushes_->set_sink(relay_.get());
      pushes_->on_schema_ready([this] { relay_->schema_ready(); });
    }
    submitter_ = std::make_unique<requests::async_request_submitter>(*pushes_, registry_);
    responses_ = std::make_unique<requests::response_store>(*pool_, 2s);
    thread_ = std::thread([this] { io_.run(); });
    call([this]() -> asio::awaitable<int> {
      if (relay_)
        relay_->start();
      co_await pushes_->start();
      co_return 0;
    });
    EXPECT_TRUE(eventually([&] { return schema_ready(); }, 20s)) << "push path never got ready";
  }

  ~ingress_half() {
    call([this]() -> asio::awaitable<int> {
      co_await pushes_->stop();
      if (relay_)
        co_await relay_->stop(1s);
      if (amqp_)
        co_await amqp_->close();
      pool_->shutdown();
      failover_log_->close();
      qos0_log_->close();
      co_return 0;
    });
    guard_.reset();
    thread_.join();
  }

  bool schema_ready() {
    return call([this]() -> asio::awaitable<bool> { co_return pushes_->gate().schema_ready(); });
  }
  push::buffers_status status() {
    return call([this]() -> asio::awaitable<push::buffers_status> { co_return pushes_->status(); });
  }

  void add_service(const services::service& s) {
    call([this, s]() -> asio::awaitable<int> {
      registry_.put(s);
      co_return 0;
    });
  }

  proxy::async_submit_result submit(rpc::rpc_request r, rpc::reply_address reply = {},
                                    std::optional<std::string> key = std::nullopt) {
    return call([this, r = std::move(r), reply = std::move(reply),
                 key = std::move(key)]() mutable -> asio::awaitable<proxy::async_submit_result> {
      co_return co_await submitter_->submit(std::move(r), std::move(reply), std::move(key));
    });
  }

  // `n` submissions at once (as many clients would), each with its own copy of `r`; the ids in
  // submission order, empty where a submission failed.
  std::vector<std::string> submit_many(const rpc::rpc_request& r, std::size_t n) {
    std::vector<std::string> ids(n);
    std::promise<void> all_done;
    std::size_t left = n;
    for (std::size_t i = 0; i < n; ++i) {
      auto one = [this, r, i, &ids, &left, &all_done]() -> asio::awaitable<void> {
        // Named: g++ 12 corrupts brace-initialised temporaries inside a co_await expression.
        rpc::reply_address nobody;
        auto result = co_await submitter_->submit(r, std::move(nobody), std::nullopt);
        if (!result.error)
          ids[i] = result.id;
        if (--left == 0)
          all_done.set_value();
      };
      asio::co_spawn(io_, std::move(one), asio::detached);
    }
    all_done.get_future().get();
    return ids;
  }

  std::error_code store_response(rpc::rpc_request r, rpc::rpc_reply reply) {
    return call(
        [this, r = std::move(r), reply = std::move(reply)]() -> asio::awaitable<std::error_code> {
          co_return co_await responses_->store(r, reply);
        });
  }

  // Declares the service's topology (as ingress and workers do) and consumes one flavour queue.
  void consume(const services::service& s, const std::string& flavour) {
    call([this, s, flavour]() -> asio::awaitable<int> {
      amqp_ = amqp::connection::create(io_.get_executor(),
                                       amqp::test::options_for(amqp::test::broker_url(), 10s));
      if (auto ec = co_await amqp_->open()) {
        ADD_FAILURE() << "amqp open: " << ec.message();
        co_return 0;
      }
      auto [cec, ch] = co_await amqp_->open_channel();
      if (cec) {
        ADD_FAILURE() << "channel: " << cec.message();
        co_return 0;
      }
      if (auto ec = co_await rpc::declare_service_topology(*ch, s)) {
        ADD_FAILURE() << "topology: " << ec.message();
        co_return 0;
      }
      auto [sec, c] = co_await amqp::consumer::start(ch, s.queue(flavour));
      if (sec)
        ADD_FAILURE() << "consume: " << sec.message();
      consumer_ = c;
      co_return 0;
    });
  }

  // The next delivery on the consumed queue, acked; nullopt when none came within `wait`.
  std::optional<amqp::delivery> next(std::chrono::milliseconds wait) {
    return call([this, wait]() -> asio::awaitable<std::optional<amqp::delivery>> {
      if (!consumer_)
        co_return std::nullopt;
      auto [ec, d] = co_await consumer_->receive(std::chrono::steady_clock::now() + wait);
      if (ec)
        co_return std::nullopt;
      d.ack();
      co_return d;
    });
  }

  // Removes the service's exchange and flavour queues from the shared broker.
  void remove_topology(const services::service& s) {
    call([this, s]() -> asio::awaitable<int> {
      if (!amqp_ || !amqp_->is_open())
        co_return 0;
      auto [cec, ch] = co_await amqp_->open_channel();
      if (cec)
        co_return 0;
      for (const auto& f : s.flavours)
        co_await ch->queue_delete(s.queue(f.name));
      co_await ch->exchange_delete(s.exchange());
      co_return 0;
    });
  }

 private:
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_{io_.get_executor()};
  metrics::registry metrics_;
  std::unique_ptr<store::pg_pool> pool_;
  std::unique_ptr<store::message_store> messages_;
  std::unique_ptr<buffer::buffer_log> failover_log_, qos0_log_;
  std::unique_ptr<push::buffer_log_records> failover_, qos0_;
  std::unique_ptr<push::push_service> pushes_;
  std::unique_ptr<relay::queue_modes> modes_;
  std::shared_ptr<relay::relay_service> relay_;
  services::service_registry registry_;
  std::unique_ptr<requests::async_request_submitter> submitter_;
  std::unique_ptr<requests::response_store> responses_;
  std::shared_ptr<amqp::connection> amqp_;
  std::shared_ptr<amqp::consumer> consumer_;
  std::thread thread_;
};

services::service make_service(const std::string& name) {
  services::service s;
  s.name = name;
  s.namespace_ = "t" + std::to_string(::getpid());
  s.default_flavour = "std";
  s.flavours = {{"std", "http://127.0.0.1:1"}, {"green", "http://127.0.0.1:2"}};
  return s;
}

rpc::rpc_request make_request(const services::service& s, const std::string& flavour) {
  rpc::rpc_request r;
  r.id = "x-request-id-1";
  r.service = s.name;
  r.flavour = flavour;
  r.method = "POST";
  r.target = "/v1/charge/%2Fa?amount=10&amount=20";
  r.headers = {{"Content-Type", "application/octet-stream"},
               {"X-Dup", "1"},
               {"x-dup", "2"},
               {"Authorization", "Bearer secret"}};
  for (int i = 0; i < 300; ++i)
    r.body.push_back(static_cast<char>(i));
  r.async = true;
  return r;
}

class requests_pgtest : public ::testing::Test {
 protected:
  scoped_database db_;
  temp_dir binary_buffer_;
  temp_dir ingress_buffer_;
  tcp_proxy proxy_{"127.0.0.1", url_port(require_env("SLUICE_TEST_PG_URL"))};
  std::string pg_via_proxy_ = url_with_port(db_.url(), proxy_.port());

  sluice_process::env_map env() {
    return {{"DATABASE_URL", pg_via_proxy_},
            {"RABBITMQ_URL", require_env("SLUICE_TEST_AMQP_URL")},
            {"FILE_BUFFER_DIR", binary_buffer_.path()},
            {"RELAY_SWEEP_INTERVAL_MS", "100"},
            {"RELAY_SWEEP_GRACE_MS", "0"},
            {"RELAY_CLAIM_LEASE_MS", "1000"},
            {"DB_CONNECT_TIMEOUT_MS", "1000"},
            {"DB_STATEMENT_TIMEOUT_MS", "2000"},
            {"LOG_LEVEL", "info"}};
  }

  static void wait_ready(const sluice_process& s) {
    ASSERT_TRUE(eventually(
        [&] { return http_call(s.port(), "GET", "/health/ready?strict=true").status == 200; }, 20s))
        << s.log();
  }

  static http_result get(const sluice_process& s, const std::string& id) {
    return http_call(s.port(), "GET", "/api/v1/requests/" + id);
  }

  std::string scalar(const std::string& sql) {
    pg_session pg(db_.url());
    return pg.scalar(sql);
  }
};

void expect_request_intact(const amqp::delivery& d, const rpc::rpc_request& sent,
                           const std::string& id) {
  std::string why;
  const auto got = rpc::decode_request(d, &why);
  ASSERT_TRUE(got) << why;
  EXPECT_EQ(got->id, id) << "message_id is the request id";
  EXPECT_EQ(got->service, sent.service);
  EXPECT_EQ(got->flavour, sent.flavour);
  EXPECT_EQ(got->method, sent.method);
  EXPECT_EQ(got->target, sent.target);
  EXPECT_EQ(got->headers, sent.headers);
  EXPECT_EQ(got->body, sent.body);
  EXPECT_TRUE(got->async);
  EXPECT_EQ(got->deadline_ms, 0);
  EXPECT_EQ(d.properties.delivery_mode, std::optional<std::uint8_t>(2)) << "persistent";
  EXPECT_FALSE(d.properties.expiration) << "async requests wait however long it takes";
  EXPECT_EQ(d.exchange, "t" + std::to_string(::getpid()) + "." + sent.service);
}

TEST_F(requests_pgtest, submitted_request_is_published_intact_and_polled_from_pending_to_done) {
  sluice_process s(env());
  wait_ready(s);
  ingress_half ingress(pg_via_proxy_, ingress_buffer_.path());
  const auto svc = make_service(unique_service("pay"));
  ingress.add_service(svc);
  ingress.consume(svc, "green");

  const auto sent = make_request(svc, "green");
  const auto r = ingress.submit(sent);
  ASSERT_FALSE(r.error) << r.error->body;
  EXPECT_FALSE(r.repeat);
  ASSERT_TRUE(uuid::parse(r.id)) << r.id;
  EXPECT_EQ(scalar("SELECT queue FROM sluice_messages WHERE id = '" + r.id + "'"),
            "@async." + svc.name);

  // Stored before the submitter answered: pending at once (it may be published already, but
  // no outcome exists).
  auto polled = get(s, r.id);
  ASSERT_EQ(polled.status, 200) << polled.body;
  EXPECT_EQ(polled.json(), json::parse(R"({"id":")" + r.id + R"(","status":"pending"})"));

  const auto d = ingress.next(15s);
  ASSERT_TRUE(d) << "the request never reached " << svc.queue("green") << "\n" << s.log();
  expect_request_intact(*d, sent, r.id);
  EXPECT_EQ(d->exchange, svc.exchange());
  EXPECT_TRUE(eventually(
      [&] {
        return scalar("SELECT count(*) FROM sluice_relay_outbox WHERE id = '" + r.id + "'") == "0";
      },
      10s))
      << "the confirm was marked";
  EXPECT_EQ(get(s, r.id).json()["status"], "pending") << "published, not answered yet";

  // As a worker does: store the outcome before acking; a redelivery stores again.
  const auto request = rpc::decode_request(*d, nullptr);
  rpc::rpc_reply reply;
  reply.status = 201;
  reply.headers = {{"Content-Type", "text/plain"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}};
  reply.body = "charged";
  ASSERT_FALSE(ingress.store_response(*request, reply));
  rpc::rpc_reply second = reply;
  second.status = 500;
  EXPECT_FALSE(ingress.store_response(*request, second)) << "a second store must not fail";

  polled = get(s, r.id);
  ASSERT_EQ(polled.status, 200) << polled.body;
  const json done = polled.json();
  EXPECT_EQ(done["id"], r.id);
  EXPECT_EQ(done["status"], "done");
  EXPECT_EQ(done["response"]["status"], 201) << "the first outcome is kept";
  EXPECT_EQ(done["response"]["headers"]["content-type"], "text/plain");
  EXPECT_EQ(done["response"]["headers"]["set-cookie"], json::parse(R"(["a=1","b=2"])"));
  EXPECT_EQ(done["response"]["body"], "charged");
  EXPECT_EQ(done["response"]["bodyEncoding"], "utf8");
  EXPECT_FALSE(done.contains("error"));

  // A worker that could not get an answer stores sluice's error.
  const auto r2 = ingress.submit(sent);
  ASSERT_FALSE(r2.error);
  const auto d2 = ingress.next(15s);
  ASSERT_TRUE(d2);
  rpc::rpc_reply fail;
  fail.status = 502;
  fail.error_code = "upstream_unavailable";
  fail.error_message = "connection refused";
  ASSERT_FALSE(ingress.store_response(*rpc::decode_request(*d2, nullptr), fail));
  const json failed = get(s, r2.id).json();
  EXPECT_EQ(failed["status"], "failed");
  EXPECT_EQ(failed["error"], json::parse(R"({"code":"upstream_unavailable",
                                            "message":"connection refused"})"));
  EXPECT_FALSE(failed.contains("response"));

  // Ids that are not async requests.
  EXPECT_EQ(get(s, "not-a-uuid").status, 400);
  const auto unknown = get(s, "0190c3a4-5b6c-7d8e-9f01-23456789abcd");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(unknown.json()["error"]["code"], "request_not_found");
  const auto pushed = http_call(s.port(), "POST", "/api/v1/push",
                                R"({"items":[{"queue":"orders","payload":{"a":1}}]})");
  ASSERT_EQ(pushed.status, 201) << pushed.body;
  const std::string push_id = pushed.json()["items"][0]["id"];
  EXPECT_EQ(get(s, push_id).status, 404) << "a pushed message is not an async request";
  // The push API cannot write to the reserved queue.
  EXPECT_EQ(http_call(s.port(), "POST", "/api/v1/push",
                      R"({"items":[{"queue":"@async.)" + svc.name + R"(","payload":{}}]})")
                .status,
            400);
  ingress.remove_topology(svc);
}

TEST_F(requests_pgtest, the_same_idempotency_key_twice_is_one_message_with_one_id) {
  sluice_process s(env());
  wait_ready(s);
  ingress_half ingress(pg_via_proxy_, ingress_buffer_.path());
  const auto svc = make_service(unique_service("idem"));
  const auto other = make_service(unique_service("idem-other"));
  ingress.add_service(svc);
  ingress.add_service(other);
  ingress.consume(svc, "std");

  const auto sent = make_request(svc, "std");
  const auto first = ingress.submit(sent, {}, "key-1");
  ASSERT_FALSE(first.error) << first.error->body;
  EXPECT_FALSE(first.repeat);
  auto changed = sent;
  changed.body = "another body";
  const auto again = ingress.submit(changed, {}, "key-1");
  ASSERT_FALSE(again.error) << again.error->body;
  EXPECT_TRUE(again.repeat);
  EXPECT_EQ(again.id, first.id);

  // Keys are scoped to the service.
  auto elsewhere = make_request(other, "std");
  const auto third = ingress.submit(elsewhere, {}, "key-1");
  ASSERT_FALSE(third.error);
  EXPECT_FALSE(third.repeat);
  EXPECT_NE(third.id, first.id);

  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_messages WHERE queue = '@async." + svc.name + "'"),
            "1");
  const auto d = ingress.next(15s);
  ASSERT_TRUE(d) << s.log();
  expect_request_intact(*d, sent, first.id);
  EXPECT_FALSE(ingress.next(1500ms)) << "the repeat was published too";

  const auto bad = ingress.submit(sent, {}, std::string(300, 'k'));
  ASSERT_TRUE(bad.error);
  EXPECT_EQ(bad.error->status, 400);
  ingress.remove_topology(svc);
}

TEST_F(requests_pgtest, without_a_bound_flavour_queue_the_request_waits_in_the_outbox) {
  sluice_process s(env());
  wait_ready(s);
  ingress_half ingress(pg_via_proxy_, ingress_buffer_.path());
  const auto svc = make_service(unique_service("unbound"));
  ingress.add_service(svc);

  const auto sent = make_request(svc, "green");
  const auto r = ingress.submit(sent, {"reply-queue-x", "corr-9"});
  ASSERT_FALSE(r.error);
  // The relay declares the service's exchange, but nothing is bound: the mandatory publish
  // comes back and the row stays unpublished.
  ASSERT_TRUE(s.wait_for_log("returned id=" + r.id, 15s)) << s.log();
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_relay_outbox WHERE id = '" + r.id + "'"), "1");
  EXPECT_EQ(get(s, r.id).json()["status"], "pending");

  ingress.consume(svc, "green");
  const auto d = ingress.next(15s);
  ASSERT_TRUE(d) << "the sweeper never published it once the queue was bound\n" << s.log();
  expect_request_intact(*d, sent, r.id);
  EXPECT_EQ(d->properties.reply_to, "reply-queue-x");
  EXPECT_EQ(d->properties.correlation_id, "corr-9");
  ingress.remove_topology(svc);
}

TEST_F(requests_pgtest, postgres_down_during_submission_buffers_then_publishes_and_answers_later) {
  sluice_process s(env());
  wait_ready(s);
  ingress_half ingress(pg_via_proxy_, ingress_buffer_.path());
  const auto svc = make_service(unique_service("outage"));
  ingress.add_service(svc);
  ingress.consume(svc, "std");

  proxy_.cut();
  const auto sent = make_request(svc, "std");
  const auto r = ingress.submit(sent, {}, "outage-key");
  ASSERT_FALSE(r.error) << r.error->body;
  EXPECT_EQ(ingress.status().failover.stats.pending_records, 1u) << "in the file buffer";
  const auto repeat = ingress.submit(sent, {}, "outage-key");
  ASSERT_FALSE(repeat.error);
  EXPECT_TRUE(repeat.repeat) << "a buffered request is a duplicate too";
  EXPECT_EQ(repeat.id, r.id);

  // No honest answer but "unavailable" while PostgreSQL is gone.
  http_result during;
  ASSERT_TRUE(eventually(
      [&] {
        during = get(s, r.id);
        return during.status == 503;
      },
      10s))
      << during.status << " " << during.body;
  EXPECT_EQ(during.json()["error"]["code"], "db_unavailable");
  EXPECT_FALSE(during.header("retry-after").empty());
  EXPECT_FALSE(ingress.next(1s)) << "published before PostgreSQL had it";

  proxy_.restore();
  const auto d = ingress.next(30s);
  ASSERT_TRUE(d) << "the buffered request was never published\n" << s.log();
  expect_request_intact(*d, sent, r.id);
  // The replay acknowledges the record in the log after its commit.
  EXPECT_TRUE(
      eventually([&] { return ingress.status().failover.stats.pending_records == 0; }, 10s));
  EXPECT_EQ(get(s, r.id).json()["status"], "pending");
  EXPECT_EQ(scalar("SELECT count(*) FROM sluice_messages WHERE queue = '@async." + svc.name + "'"),
            "1");

  rpc::rpc_reply reply;
  reply.status = 200;
  reply.body = std::string("\x00\xff", 2);
  ASSERT_FALSE(ingress.store_response(*rpc::decode_request(*d, nullptr), reply));
  const json done = get(s, r.id).json();
  EXPECT_EQ(done["status"], "done");
  EXPECT_EQ(done["response"]["bodyEncoding"], "base64");
  EXPECT_EQ(done["response"]["body"], "AP8=");
  ingress.remove_topology(svc);
}

TEST_F(requests_pgtest, the_in_memory_relay_path_publishes_a_committed_request_at_once) {
  // No binary and no sweeper within a minute: only the in-memory path can publish it.
  ingress_half ingress(db_.url(), ingress_buffer_.path(), true);
  const auto svc = make_service(unique_service("mem"));
  ingress.add_service(svc);
  ingress.consume(svc, "green");
  const auto sent = make_request(svc, "green");
  const auto r = ingress.submit(sent);
  ASSERT_FALSE(r.error) << r.error->body;
  const auto d = ingress.next(10s);
  ASSERT_TRUE(d) << "the in-memory path did not publish the request";
  expect_request_intact(*d, sent, r.id);
  EXPECT_TRUE(eventually(
      [&] {
        return scalar("SELECT count(*) FROM sluice_relay_outbox WHERE id = '" + r.id + "'") == "0";
      },
      10s))
      << "its confirm was marked";
  ingress.remove_topology(svc);
}

TEST_F(requests_pgtest, many_concurrent_requests_each_arrive_once) {
  ingress_half ingress(db_.url(), ingress_buffer_.path(), true);
  const auto svc = make_service(unique_service("many"));
  ingress.add_service(svc);
  ingress.consume(svc, "std");
  const auto sent = make_request(svc, "std");
  constexpr std::size_t n = 500;
  const auto started = std::chrono::steady_clock::now();
  const auto ids = ingress.submit_many(sent, n);
  const auto submitted = std::chrono::steady_clock::now();
  const std::set<std::string> expected(ids.begin(), ids.end());
  ASSERT_EQ(expected.size(), n) << "every submission answered, each with an id of its own";
  ASSERT_FALSE(expected.contains(""));
  std::multiset<std::string> got;
  while (got.size() < n) {
    const auto d = ingress.next(10s);
    if (!d)
      break;
    got.insert(d->properties.message_id.value_or(""));
  }
  const auto delivered = std::chrono::steady_clock::now();
  EXPECT_EQ(got.size(), n);
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), expected);
  EXPECT_FALSE(ingress.next(500ms)) << "nothing published twice";
  const auto ms = [](auto d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  std::printf("%zu async requests: all submitted in %lld ms, all delivered after %lld ms\n", n,
              static_cast<long long>(ms(submitted - started)),
              static_cast<long long>(ms(delivered - started)));
  ingress.remove_topology(svc);
}

}  // namespace
}  // namespace sluice::test
