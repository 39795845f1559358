// The workers role end to end: the real binary consuming from the shared RabbitMQ, a target
// server started here (sluice's own HTTP server on the test's loop thread), and this test in
// the ingress's place: it publishes rpc::encode_request to the service's exchange and reads
// the replies from a queue of its own.
#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "sluice/amqp/connection.hpp"
#include "sluice/amqp/consumer.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/core/base64.hpp"
#include "sluice/http/router.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/rpc/rpc_message.hpp"
#include "sluice/rpc/rpc_topology.hpp"
#include "sluice/services/service.hpp"
#include "sluice/worker/batch_codec.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "independent_client.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/loop_thread.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "test_support.hpp"

namespace sluice::worker::test {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using json = nlohmann::json;
using sluice::test::loop_thread;
using sluice::test::sluice_process;
using clock = std::chrono::steady_clock;

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// For conditions outside this process (a log line, a metric): checked every 20 ms until true.
bool eventually_true(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (condition())
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

std::string unique_service() {
  static std::atomic<int> counter{0};
  return "wk-" + std::to_string(::getpid()) + "-" + std::to_string(unix_ms_now() % 100'000'000) +
         "-" + std::to_string(counter++);
}

// A target service: records what it got, answers with `respond` after `delay`, and holds the
// first `hold_first` calls until release().
class target_server {
 public:
  using responder = std::function<http::response(const http::request&)>;

  target_server(loop_thread& loop, responder respond = {})
      : loop_(loop), respond_(std::move(respond)) {
    const http::handler h = [this](http::request& req) -> asio::awaitable<http::response> {
      // Counted until the coroutine ends, so the destructor can wait for the last one: a handler
      // still sleeping when the test ends would otherwise resume into a destroyed target.
      const running_guard running(*this);
      std::size_t index = 0;
      {
        std::lock_guard lock(mutex_);
        index = seen_.size();
        seen_.push_back(req);
      }
      const int now_active = ++active_;
      int seen_max = max_active_.load();
      while (now_active > seen_max && !max_active_.compare_exchange_weak(seen_max, now_active)) {
      }
      if (delay_.load().count() > 0) {
        asio::steady_timer t(co_await asio::this_coro::executor, delay_.load());
        co_await t.async_wait(asio::use_awaitable);
      }
      while (index < hold_first_ && !released_)
        co_await release_event_.wait_until(clock::time_point::max());
      --active_;
      if (respond_)
        co_return respond_(req);
      co_return http::response::text(200, "text/plain", "ok");
    };
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"})
      routes_.add(m, "/{rest*}", "any", h);
    http::server_options o;
    o.name = "target";
    server_ = std::make_unique<http::server>(loop_.io().get_executor(), o, routes_, metrics_);
    port_ = server_->listen("127.0.0.1", 0);
    server_->start();
  }

  ~target_server() {
    release();
    loop_.run([](target_server& t) -> asio::awaitable<void> {
      while (t.running_ > 0)
        co_await t.idle_event_.wait_until(clock::time_point::max());
      co_await t.server_->shutdown(std::chrono::milliseconds(0));
    }(*this));
  }

  std::uint16_t port() const { return port_; }
  void set_delay(std::chrono::milliseconds d) { delay_ = d; }
  void hold_first(std::size_t n) { hold_first_ = n; }
  void release() {
    asio::post(loop_.io(), [this] {
      released_ = true;
      release_event_.notify_all();
    });
  }
  std::vector<http::request> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  std::size_t calls() const {
    std::lock_guard lock(mutex_);
    return seen_.size();
  }
  int max_active() const { return max_active_; }

 private:
  loop_thread& loop_;
  responder respond_;
  metrics::registry metrics_;
  http::router routes_;
  std::unique_ptr<http::server> server_;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::vector<http::request> seen_;
  std::atomic<int> active_{0};
  std::atomic<int> max_active_{0};
  std::atomic<std::chrono::milliseconds> delay_{std::chrono::milliseconds(0)};
  std::atomic<std::size_t> hold_first_{0};
  bool released_ = false;  // loop thread only
  async_event release_event_;
  int running_ = 0;  // handlers not finished yet; loop thread only
  async_event idle_event_;

  struct running_guard {
    explicit running_guard(target_server& t) : target(t) { ++target.running_; }
    ~running_guard() {
      if (--target.running_ == 0)
        target.idle_event_.notify_all();
    }
    running_guard(const running_guard&) = delete;
    running_guard& operator=(const running_guard&) = delete;
    target_server& target;
  };
};

struct received_reply {
  std::string correlation_id;
  rpc::rpc_reply reply;
};

// The ingress's part: declares the service's topology, publishes requests with reply-to, reads
// replies from an exclusive queue of its own.
class fake_ingress {
 public:
  fake_ingress(loop_thread& loop, services::service s) : loop_(loop), service_(std::move(s)) {
    loop_.run(open());
  }
  ~fake_ingress() {
    loop_.run([](std::shared_ptr<amqp::connection> c) -> asio::awaitable<void> {
      co_await c->close();
    }(conn_));
  }

  // Publishes one request; the correlation id is returned.
  std::string publish(rpc::rpc_request r, bool with_expiration = true) {
    const std::string correlation = "c-" + std::to_string(next_++);
    rpc::reply_address to;
    to.reply_to = reply_queue_;
    to.correlation_id = correlation;
    auto m = rpc::encode_request(r, service_.exchange(), to, unix_ms_now());
    if (!with_expiration)
      m.properties.expiration.reset();
    asio::post(loop_.io(), [this, m = std::move(m)] {
      EXPECT_FALSE(ch_->basic_publish(m.exchange, m.routing_key, m.properties, m.body));
    });
    return correlation;
  }

  // A message that is not a proxied request, routed to the flavour's queue.
  void publish_garbage(const std::string& flavour) {
    amqp::outgoing_message m;
    m.exchange = service_.exchange();
    amqp::field_table headers;
    headers.set("flavour", flavour);
    m.properties.headers = std::move(headers);
    m.properties.message_id = "garbage";
    m.body = "not a request";
    asio::post(loop_.io(), [this, m = std::move(m)] {
      EXPECT_FALSE(ch_->basic_publish(m.exchange, m.routing_key, m.properties, m.body));
    });
  }

  std::optional<received_reply> next_reply(std::chrono::milliseconds wait) {
    return loop_.run(receive(wait));
  }

 private:
  asio::awaitable<void> open() {
    conn_ = amqp::connection::create(co_await asio::this_coro::executor,
                                     amqp::test::options_for(amqp::test::broker_url()));
    if (auto ec = co_await conn_->open())
      throw std::runtime_error("amqp connect: " + ec.message());
    auto [ec, ch] = co_await conn_->open_channel();
    if (ec)
      throw std::runtime_error("amqp channel: " + ec.message());
    ch_ = ch;
    if (auto tec = co_await rpc::declare_service_topology(*ch_, service_))
      throw std::runtime_error("topology: " + ch_->reason().to_string());
    amqp::queue_options qo;
    qo.durable = false;
    qo.exclusive = true;
    qo.auto_delete = true;
    auto [qec, ok] = co_await ch_->queue_declare("", qo);
    if (qec)
      throw std::runtime_error("reply queue: " + qec.message());
    reply_queue_ = ok.queue;
    amqp::consume_options co;
    co.no_ack = true;
    auto [cec, c] = co_await amqp::consumer::start(ch_, reply_queue_, co);
    if (cec)
      throw std::runtime_error("reply consumer: " + cec.message());
    replies_ = c;
  }

  asio::awaitable<std::optional<received_reply>> receive(std::chrono::milliseconds wait) {
    auto [ec, d] = co_await replies_->receive(clock::now() + wait);
    if (ec)
      co_return std::nullopt;
    std::string why;
    auto reply = rpc::decode_reply(d, &why);
    if (!reply) {
      ADD_FAILURE() << "undecodable reply: " << why;
      co_return std::nullopt;
    }
    received_reply out;
    out.correlation_id = d.properties.correlation_id.value_or("");
    out.reply = std::move(*reply);
    co_return out;
  }

  loop_thread& loop_;
  services::service service_;
  std::shared_ptr<amqp::connection> conn_;
  std::shared_ptr<amqp::channel> ch_;
  std::shared_ptr<amqp::consumer> replies_;
  std::string reply_queue_;
  int next_ = 1;
};

std::string header_of(const rpc::header_list& h, std::string_view name) {
  for (const auto& [n, v] : h) {
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  }
  return {};
}

class worker_e2e : public ::testing::Test {
 protected:
  loop_thread loop_;
  sluice::test::scoped_database db_;
  sluice::test::temp_dir buffer_;
  std::string name_ = unique_service();

  ~worker_e2e() override {
    // The durable exchange and queue of this test's service.
    try {
      amqp::test::independent_client admin(amqp::test::broker_url());
      admin.delete_queue(queue());
      admin.delete_exchange("default." + name_);
    } catch (const std::exception&) {
    }
  }

  std::string queue() const { return "default." + name_ + ".default"; }

  services::service service() const {
    services::service s;
    s.name = name_;
    s.flavours.push_back({"default", ""});
    s.default_flavour = "default";
    return s;
  }

  sluice_process::env_map env(const std::string& downstream, sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("RABBITMQ_URL", sluice::test::require_env("SLUICE_TEST_AMQP_URL"));
    extra.try_emplace("FILE_BUFFER_DIR", buffer_.path());
    extra.try_emplace("SLUICE_ROLES", "workers");
    extra.try_emplace("SERVICE_NAME", name_);
    extra.try_emplace("DOWNSTREAM_URL", downstream);
    extra.try_emplace("LOG_LEVEL", "info");
    return extra;
  }

  void wait_consuming(const sluice_process& s) {
    ASSERT_TRUE(s.wait_for_log("worker: consuming queue=" + queue(), 20s)) << s.log();
  }

  rpc::rpc_request request(std::string id, std::chrono::milliseconds deadline = 10s) const {
    rpc::rpc_request r;
    r.id = std::move(id);
    r.service = name_;
    r.flavour = "default";
    r.method = "POST";
    r.target = "/x";
    r.body = "hello";
    r.deadline_ms = unix_ms_now() + deadline.count();
    return r;
  }

  double metric(const sluice_process& s, const std::string& outcome) {
    const auto body = sluice::test::http_call(s.port(), "GET", "/metrics").body;
    const std::string series = "sluice_worker_messages_total{service=\"" + name_ +
                               "\",flavour=\"default\",outcome=\"" + outcome + "\"} ";
    const auto at = body.find(series);
    if (at == std::string::npos)
      return 0;
    return std::stod(body.substr(at + series.size()));
  }
};

TEST_F(worker_e2e, forwards_byte_exact_and_answers_on_the_reply_queue) {
  target_server target(loop_, [](const http::request&) {
    http::response r =
        http::response::text(201, "application/octet-stream", std::string("\x00\x01\xfe\xff", 4));
    r.headers.emplace_back("X-Answer", "one");
    r.headers.emplace_back("X-Answer", "two");
    return r;
  });
  fake_ingress ingress(loop_, service());
  sluice_process s(env("http://127.0.0.1:" + std::to_string(target.port()) + "/base"));
  wait_consuming(s);

  std::string body;
  for (int i = 0; i < 256; ++i)
    body.push_back(static_cast<char>(i));
  auto r = request("req-exact");
  r.method = "PUT";
  r.target = "/a%2Fb/c?x=1&x=2&y=%20z";
  r.headers = {{"Content-Type", "application/octet-stream"},
               {"X-Dup", "first"},
               {"Authorization", "Bearer t0k"},
               {"X-Dup", "second"}};
  r.body = body;
  const auto correlation = ingress.publish(r);

  const auto reply = ingress.next_reply(10s);
  ASSERT_TRUE(reply) << s.log();
  EXPECT_EQ(reply->correlation_id, correlation);
  EXPECT_EQ(reply->reply.status, 201);
  EXPECT_TRUE(reply->reply.error_code.empty());
  EXPECT_EQ(reply->reply.body, std::string("\x00\x01\xfe\xff", 4));
  std::vector<std::string> answers;
  for (const auto& [n, v] : reply->reply.headers) {
    if (n == "X-Answer")
      answers.push_back(v);
  }
  EXPECT_EQ(answers, (std::vector<std::string>{"one", "two"}));

  const auto seen = target.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].target, "/base/a%2Fb/c?x=1&x=2&y=%20z");
  EXPECT_EQ(seen[0].body, body);
  std::vector<std::string> dups;
  for (const auto& [n, v] : seen[0].headers) {
    if (n == "X-Dup")
      dups.push_back(v);
  }
  EXPECT_EQ(dups, (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(seen[0].header("Authorization").value_or(""), "Bearer t0k");
  EXPECT_EQ(seen[0].header("X-Flavour").value_or(""), "default");
  EXPECT_EQ(seen[0].header("Idempotency-Key").value_or(""), "req-exact");
  EXPECT_EQ(metric(s, "ok"), 1);
}

TEST_F(worker_e2e, the_clients_idempotency_key_reaches_the_target) {
  target_server target(loop_);
  fake_ingress ingress(loop_, service());
  sluice_process s(env("http://127.0.0.1:" + std::to_string(target.port())));
  wait_consuming(s);
  auto r = request("req-key");
  r.target = "";
  r.headers = {{"Idempotency-Key", "client-chose-this"}};
  ingress.publish(r);
  ASSERT_TRUE(ingress.next_reply(10s)) << s.log();
  const auto seen = target.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/");
  EXPECT_EQ(seen[0].header("Idempotency-Key").value_or(""), "client-chose-this");
}

TEST_F(worker_e2e, an_expired_request_never_reaches_the_target) {
  target_server target(loop_);
  fake_ingress ingress(loop_, service());
  sluice_process s(env("http://127.0.0.1:" + std::to_string(target.port())));
  wait_consuming(s);
  // As if the worker got it just after its caller gave up (prefetched, or delivered at the
  // edge of its expiration): no expiration left for the broker to act on.
  auto r = request("req-expired", -50ms);
  ingress.publish(r, false);
  // A live request behind it proves the expired one was taken (one queue, in order).
  ingress.publish(request("req-live"));
  const auto reply = ingress.next_reply(10s);
  ASSERT_TRUE(reply) << s.log();
  EXPECT_EQ(reply->correlation_id, "c-2");
  EXPECT_FALSE(ingress.next_reply(500ms));
  const auto seen = target.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].header("Idempotency-Key").value_or(""), "req-live");
  EXPECT_EQ(metric(s, "expired"), 1);
}

TEST_F(worker_e2e, target_down_answers_502_upstream_unavailable) {
  // A port nothing listens on: bind one and close it.
  std::uint16_t dead_port = 0;
  {
    target_server gone(loop_);
    dead_port = gone.port();
  }
  fake_ingress ingress(loop_, service());
  sluice_process s(env("http://127.0.0.1:" + std::to_string(dead_port)));
  wait_consuming(s);
  ingress.publish(request("req-down"));
  const auto reply = ingress.next_reply(10s);
  ASSERT_TRUE(reply) << s.log();
  EXPECT_EQ(reply->reply.status, 502);
  EXPECT_EQ(reply->reply.error_code, "upstream_unavailable");
  EXPECT_NE(reply->reply.body.find("upstream_unavailable"), std::string::npos);
  EXPECT_EQ(metric(s, "upstream_error"), 1);
}

TEST_F(worker_e2e, a_malformed_delivery_is_rejected_without_requeue) {
  target_server target(loop_);
  fake_ingress ingress(loop_, service());
  sluice_process s(env("http://127.0.0.1:" + std::to_string(target.port())));
  wait_consuming(s);
  ingress.publish_garbage("default");
  ingress.publish(request("req-after-garbage"));
  const auto reply = ingress.next_reply(10s);
  ASSERT_TRUE(reply) << s.log();
  EXPECT_EQ(reply->reply.status, 200);
  EXPECT_EQ(target.calls(), 1u);
  EXPECT_EQ(metric(s, "malformed"), 1);
  EXPECT_TRUE(s.wait_for_log("malformed delivery rejected", 5s)) << s.log();
  amqp::test::independent_client admin(amqp::test::broker_url());
  EXPECT_EQ(admin.message_count(queue()), 0u);  // not requeued
}

TEST_F(worker_e2e, a_response_over_the_limit_answers_502_too_large) {
  target_server target(loop_, [](const http::request&) {
    return http::response::text(200, "text/plain", std::string(64 * 1024, 'x'));
  });
  fake_ingress ingress(loop_, service());
  sluice_process s(env("http://127.0.0.1:" + std::to_string(target.port()),
                       {{"UPSTREAM_MAX_RESPONSE_BYTES", "4096"}}));
  wait_consuming(s);
  ingress.publish(request("req-large"));
  const auto reply = ingress.next_reply(10s);
  ASSERT_TRUE(reply) << s.log();
  EXPECT_EQ(reply->reply.status, 502);
  EXPECT_EQ(reply->reply.error_code, "upstream_response_too_large");
  EXPECT_EQ(metric(s, "upstream_error"), 1);
}

TEST_F(worker_e2e, a_slow_target_answers_504_at_the_requests_deadline) {
  target_server target(loop_);
  target.set_delay(5s);
  fake_ingress ingress(loop_, service());
  sluice_process s(env("http://127.0.0.1:" + std::to_string(target.port())));
  wait_consuming(s);
  const auto sent = clock::now();
  ingress.publish(request("req-slow", 1'000ms));
  const auto reply = ingress.next_reply(4s);
  ASSERT_TRUE(reply) << s.log();
  EXPECT_EQ(reply->reply.status, 504);
  EXPECT_EQ(reply->reply.error_code, "upstream_timeout");
  EXPECT_LT(clock::now() - sent, 3s);
  EXPECT_EQ(metric(s, "timeout"), 1);
}

TEST_F(worker_e2e, at_most_concurrency_requests_reach_the_target_at_once) {
  target_server target(loop_);
  target.set_delay(300ms);
  fake_ingress ingress(loop_, service());
  sluice_process s(
      env("http://127.0.0.1:" + std::to_string(target.port()), {{"CONCURRENCY_PER_QUEUE", "3"}}));
  wait_consuming(s);
  for (int i = 0; i < 12; ++i)
    ingress.publish(request("req-c" + std::to_string(i), 20s));
  std::set<std::string> answered;
  for (int i = 0; i < 12; ++i) {
    const auto reply = ingress.next_reply(10s);
    ASSERT_TRUE(reply) << s.log();
    EXPECT_EQ(reply->reply.status, 200);
    answered.insert(reply->correlation_id);
  }
  EXPECT_EQ(answered.size(), 12u);
  EXPECT_EQ(target.max_active(), 3);
}

TEST_F(worker_e2e, an_async_request_is_stored_answered_and_acked) {
  target_server target(loop_);
  fake_ingress ingress(loop_, service());
  sluice_process s(env("http://127.0.0.1:" + std::to_string(target.port())));
  wait_consuming(s);
  // Async requests are named by the id of their push-path message, a uuid.
  const std::string id = "01900000-0000-7000-8000-0000000000aa";
  auto r = request(id);
  r.async = true;
  r.deadline_ms = 0;
  ingress.publish(r);
  const auto reply = ingress.next_reply(10s);
  ASSERT_TRUE(reply) << s.log();
  EXPECT_EQ(reply->reply.status, 200);
  sluice::test::pg_session db(db_.url());
  const auto stored = [&] {
    try {
      return db.scalar("SELECT count(*) FROM sluice_rpc_responses WHERE id = '" + id +
                       "' AND status = 'done'") == "1";
    } catch (const std::exception&) {
      return false;  // the schema may still be migrating: the worker retries its store
    }
  };
  EXPECT_TRUE(eventually_true(stored, 5s)) << s.log();
  EXPECT_TRUE(eventually_true([&] { return metric(s, "ok") == 1; }, 5s));
}

json batch_answer(const json& batch, bool drop_last) {
  json out = json::array();
  for (const auto& item : batch) {
    json a;
    a["correlation_id"] = item["correlation_id"];
    a["status"] = 200;
    a["headers"] = json::object({{"X-Path", item["path"]}});
    // Echoes the body, in the encoding it came in (the worker decodes base64 on both ways).
    if (item["bodyEncoding"] == "base64") {
      a["body"] = base64_encode("echo:" + *base64_decode(item["body"].get<std::string>()));
      a["bodyEncoding"] = "base64";
    } else {
      a["body"] = "echo:" + item["body"].get<std::string>();
    }
    out.push_back(a);
  }
  if (drop_last && !out.empty())
    out.erase(out.size() - 1);
  return out;
}

TEST_F(worker_e2e, batch_mode_round_trip) {
  std::mutex m;
  std::vector<json> batches;
  target_server target(loop_, [&](const http::request& req) {
    const auto batch = json::parse(req.body);
    {
      std::lock_guard lock(m);
      batches.push_back(batch);
    }
    return http::response::json(200, batch_answer(batch, false).dump());
  });
  fake_ingress ingress(loop_, service());
  const auto url = "http://127.0.0.1:" + std::to_string(target.port());
  sluice_process s(env(url + "/single", {{"BATCH_MODE", "true"},
                                         {"BATCH_DOWNSTREAM_URL", url + "/batch"},
                                         {"BATCH_SIZE", "3"},
                                         {"BATCH_MAX_WAIT_MS", "60000"}}));
  wait_consuming(s);
  std::map<std::string, std::string> bodies;
  for (int i = 0; i < 3; ++i) {
    auto r = request("req-b" + std::to_string(i), 20s);
    r.target = "/item/" + std::to_string(i) + "?q=1";
    r.body = i == 2 ? std::string("\xff\xfe", 2) : "body-" + std::to_string(i);
    bodies[ingress.publish(r)] = r.body;
  }
  for (int i = 0; i < 3; ++i) {
    const auto reply = ingress.next_reply(10s);
    ASSERT_TRUE(reply) << s.log();
    EXPECT_EQ(reply->reply.status, 200);
    EXPECT_EQ(reply->reply.body, "echo:" + bodies[reply->correlation_id]);
    EXPECT_EQ(header_of(reply->reply.headers, "X-Path").substr(0, 6), "/item/");
  }
  std::lock_guard lock(m);
  ASSERT_EQ(batches.size(), 1u);  // 3 requests, BATCH_SIZE 3: one POST
  ASSERT_EQ(batches[0].size(), 3u);
  const auto seen = target.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].target, "/batch");
  for (const auto& item : batches[0]) {
    EXPECT_EQ(item["method"], "POST");
    bool flavour = false;
    for (const auto& h : item["headers"])
      flavour = flavour || (h[0] == "X-Flavour" && h[1] == "default");
    EXPECT_TRUE(flavour) << item.dump();
  }
}

TEST_F(worker_e2e, a_malformed_batch_answer_answers_every_caller_502) {
  target_server target(loop_, [&](const http::request& req) {
    return http::response::json(200, batch_answer(json::parse(req.body), true).dump());
  });
  fake_ingress ingress(loop_, service());
  const auto url = "http://127.0.0.1:" + std::to_string(target.port());
  sluice_process s(env(url, {{"BATCH_MODE", "true"},
                             {"BATCH_DOWNSTREAM_URL", url + "/batch"},
                             {"BATCH_SIZE", "10"},
                             {"BATCH_MAX_WAIT_MS", "300"}}));
  wait_consuming(s);
  for (int i = 0; i < 3; ++i)
    ingress.publish(request("req-m" + std::to_string(i), 20s));
  for (int i = 0; i < 3; ++i) {
    const auto reply = ingress.next_reply(10s);
    ASSERT_TRUE(reply) << s.log();
    EXPECT_EQ(reply->reply.status, 502);
    EXPECT_EQ(reply->reply.error_code, "upstream_bad_batch");
  }
  EXPECT_EQ(target.calls(), 1u);  // 3 requests within 300 ms: one batch
}

TEST_F(worker_e2e, a_worker_killed_mid_request_is_answered_by_another) {
  target_server target(loop_);
  target.hold_first(1);  // the first call hangs: the worker holding it dies meanwhile
  fake_ingress ingress(loop_, service());
  const auto downstream = "http://127.0.0.1:" + std::to_string(target.port());
  auto a = std::make_unique<sluice_process>(env(downstream));
  wait_consuming(*a);
  const auto correlation = ingress.publish(request("req-kill", 30s));
  ASSERT_TRUE(eventually_true([&] { return target.calls() == 1; }, 10s)) << a->log();
  sluice::test::temp_dir other_buffer;
  sluice_process b(env(downstream, {{"FILE_BUFFER_DIR", other_buffer.path()}}));
  wait_consuming(b);
  a->kill9();
  const auto reply = ingress.next_reply(15s);
  ASSERT_TRUE(reply) << b.log();
  EXPECT_EQ(reply->correlation_id, correlation);
  EXPECT_EQ(reply->reply.status, 200);
  const auto seen = target.seen();
  ASSERT_EQ(seen.size(), 2u);  // at-least-once to the target: the redelivery called it again
  EXPECT_EQ(seen[0].header("Idempotency-Key").value_or(""), "req-kill");
  EXPECT_EQ(seen[1].header("Idempotency-Key").value_or(""), "req-kill");
  EXPECT_FALSE(ingress.next_reply(300ms));  // the dead worker answered nothing
}

}  // namespace
}  // namespace sluice::worker::test
