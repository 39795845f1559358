// worker_service in process against the shared RabbitMQ and a target on the same loop: the
// consumers follow the registry (added, changed, removed services), async outcomes are acked
// only once the response sink took them, a stop leaves unfinished deliveries to the broker, and
// flavours with a route go where a (fake) route registry points them.
#include "sluice/amqp/connection.hpp"
#include "sluice/core/async_event.hpp"
#include "sluice/http/client.hpp"
#include "sluice/http/router.hpp"
#include "sluice/http/server.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/rpc/rpc_message.hpp"
#include "sluice/rpc/rpc_topology.hpp"
#include "sluice/worker/worker_service.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "../../unit/fake_route_lookup.hpp"
#include "independent_client.hpp"
#include "test_support.hpp"

namespace sluice::worker {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using amqp::test::sleep_for;

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Waits for `condition` on the loop, checking every 10 ms; false at the limit.
asio::awaitable<bool> eventually(std::function<bool()> condition, std::chrono::milliseconds limit) {
  const auto until = clock::now() + limit;
  while (!condition()) {
    if (clock::now() >= until)
      co_return false;
    co_await sleep_for(10ms);
  }
  co_return true;
}

// Fails the first `failures` stores, then takes them; counts the calls.
class flaky_sink : public response_sink {
 public:
  explicit flaky_sink(int failures) : failures_(failures) {}
  asio::awaitable<std::error_code> store(const rpc::rpc_request& request,
                                         const rpc::rpc_reply& reply) override {
    ++calls;
    if (calls <= failures_)
      co_return std::make_error_code(std::errc::connection_refused);
    stored_ids.push_back(request.id);
    stored_status.push_back(reply.status);
    co_return std::error_code{};
  }
  int calls = 0;
  std::vector<std::string> stored_ids;
  std::vector<int> stored_status;

 private:
  int failures_;
};

// Everything one test needs on its loop.
struct rig {
  explicit rig(asio::io_context& io, routing::route_lookup* route_lookup = nullptr) : io_(io) {
    const http::handler h = [this](http::request& req) -> asio::awaitable<http::response> {
      seen.push_back(req);
      while (hold && !released)
        co_await release_event.wait_until(clock::time_point::max());
      co_return http::response::text(200, "text/plain", "from " + req.target);
    };
    routes.add("POST", "/{rest*}", "any", h);
    http::server_options so;
    so.name = "target";
    target = std::make_unique<http::server>(io.get_executor(), so, routes, target_metrics);
    port = target->listen("127.0.0.1", 0);
    target->start();
    amqp::client_options co;
    co.connection = amqp::test::options_for(amqp::test::broker_url());
    co.enable_publisher = false;
    client = amqp::client::create(io.get_executor(), co);
    upstream = std::make_unique<http::client>(io.get_executor(), http::client_options{});
    worker_options wo;
    wo.stop_grace = 300ms;
    wo.routes = route_lookup;
    workers = worker_service::create(io.get_executor(), client, registry, *upstream, metrics, wo);
  }

  services::service service(std::uint32_t concurrency = 4) const {
    services::service s;
    s.name = name;
    s.concurrency = concurrency;
    for (const char* f : {"std", "green"}) {
      services::flavour fl;
      fl.name = f;
      fl.url = "http://127.0.0.1:" + std::to_string(port) + "/" + f;
      s.flavours.push_back(fl);
    }
    s.default_flavour = "std";
    s.source = services::service_source::api;
    return s;
  }

  asio::awaitable<void> open_ingress() {
    ingress = amqp::connection::create(io_.get_executor(),
                                       amqp::test::options_for(amqp::test::broker_url()));
    if (co_await ingress->open())
      throw std::runtime_error("ingress connect");
    auto [ec, ch] = co_await ingress->open_channel();
    if (ec)
      throw std::runtime_error("ingress channel");
    ingress_ch = ch;
    const auto s = service();
    if (co_await rpc::declare_service_topology(*ingress_ch, s))
      throw std::runtime_error("topology");
  }

  void publish(const std::string& id, const std::string& flavour, bool async,
               rpc::header_list headers = {}) {
    rpc::rpc_request r;
    r.headers = std::move(headers);
    r.id = id;
    r.service = name;
    r.flavour = flavour;
    r.method = "POST";
    r.target = "/t";
    r.async = async;
    r.deadline_ms = async ? 0 : unix_ms_now() + 20'000;
    const auto m = rpc::encode_request(r, service().exchange(), {}, unix_ms_now());
    EXPECT_FALSE(ingress_ch->basic_publish(m.exchange, m.routing_key, m.properties, m.body));
  }

  std::size_t consuming() const {
    std::size_t n = 0;
    for (const auto& c : workers->status())
      n += c.consuming ? 1 : 0;
    return n;
  }

  asio::awaitable<void> shut() {
    released = true;
    release_event.notify_all();
    co_await workers->stop();
    upstream->close();
    co_await client->stop();
    co_await ingress->close();
    co_await target->shutdown(0ms);
  }

  void remove_objects() {
    amqp::test::independent_client admin(amqp::test::broker_url());
    for (const char* f : {"std", "green"})
      admin.delete_queue(service().queue(f));
    admin.delete_exchange(service().exchange());
  }

  asio::io_context& io_;
  std::string name = amqp::test::unique_name("wks");
  metrics::registry target_metrics;
  http::router routes;
  std::unique_ptr<http::server> target;
  std::uint16_t port = 0;
  std::vector<http::request> seen;
  bool hold = false;
  bool released = false;
  async_event release_event;
  services::service_registry registry;
  metrics::registry metrics;
  std::shared_ptr<amqp::client> client;
  std::unique_ptr<http::client> upstream;
  std::shared_ptr<worker_service> workers;
  std::shared_ptr<amqp::connection> ingress;
  std::shared_ptr<amqp::channel> ingress_ch;
};

double messages_total(const rig& r, const char* flavour, const char* outcome) {
  const std::string series = "sluice_worker_messages_total{service=\"" + r.name + "\",flavour=\"" +
                             flavour + "\",outcome=\"" + outcome + "\"} ";
  const std::string text = r.metrics.expose();
  const auto at = text.find(series);
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size()));
}

std::uint32_t messages_in(const std::string& queue) {
  amqp::test::independent_client admin(amqp::test::broker_url());
  return admin.message_count(queue);
}

TEST(worker_service, consumers_follow_the_registry) {
  std::string name;
  std::string std_queue;
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io);
    name = r.name;
    std_queue = r.service().queue("std");
    r.client->start();
    r.workers->start();
    EXPECT_TRUE(r.workers->status().empty());
    co_await r.open_ingress();

    r.registry.put(r.service());
    EXPECT_TRUE(co_await eventually([&] { return r.consuming() == 2; }, 10s));
    const auto status = r.workers->status();
    EXPECT_EQ(status.size(), 2u);
    EXPECT_EQ(status[0].queue, "default." + r.name + ".green");
    EXPECT_EQ(status[1].flavour, "std");
    EXPECT_TRUE(r.workers->all_consuming());

    r.publish("g1", "green", false);
    EXPECT_TRUE(co_await eventually([&] { return r.seen.size() == 1; }, 10s));
    EXPECT_EQ(r.seen[0].target, "/green/t");
    EXPECT_EQ(r.seen[0].header("X-Flavour").value_or(""), "green");

    // A schedule alone restarts nothing; a new concurrency restarts both consumers.
    auto scheduled = r.service();
    scheduled.traffic = services::schedule{};
    r.registry.put(scheduled);
    EXPECT_EQ(r.consuming(), 2u);
    r.registry.put(r.service(8));
    EXPECT_TRUE(co_await eventually([&] { return r.consuming() == 2; }, 10s));
    r.publish("s1", "std", false);
    EXPECT_TRUE(co_await eventually([&] { return r.seen.size() == 2; }, 10s));
    EXPECT_EQ(r.seen[1].target, "/std/t");

    // Removed: nothing consumes any more, so a request waits in its queue.
    EXPECT_TRUE(r.registry.remove(services::service_source::api, r.name));
    EXPECT_TRUE(r.workers->status().empty());
    co_await sleep_for(300ms);  // the stopping consumers cancel their basic.consume
    r.publish("s2", "std", false);
    co_await sleep_for(300ms);
    EXPECT_EQ(r.seen.size(), 2u);
    co_await r.shut();
    r.remove_objects();
  });
}

TEST(worker_service, an_async_outcome_is_acked_only_once_stored) {
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io);
    flaky_sink sink(2);
    r.workers->set_response_sink(&sink);
    r.client->start();
    r.workers->start();
    co_await r.open_ingress();
    r.registry.put(r.service());
    EXPECT_TRUE(co_await eventually([&] { return r.consuming() == 2; }, 10s));
    r.publish("async-1", "std", true);
    // Two failed stores (100 ms, 200 ms apart), then the third takes it.
    EXPECT_TRUE(co_await eventually([&] { return sink.calls == 3; }, 10s));
    EXPECT_EQ(sink.stored_ids, std::vector<std::string>{"async-1"});
    EXPECT_EQ(sink.stored_status, std::vector<int>{200});
    EXPECT_EQ(r.seen.size(), 1u);  // forwarded once; the retries store the outcome kept here
    const auto queue = r.service().queue("std");
    co_await r.shut();
    EXPECT_EQ(messages_in(queue), 0u);  // acked
    r.remove_objects();
  });
}

TEST(worker_service, a_stop_leaves_an_unstored_outcome_to_the_broker) {
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io);
    flaky_sink sink(1'000'000);
    r.workers->set_response_sink(&sink);
    r.client->start();
    r.workers->start();
    co_await r.open_ingress();
    r.registry.put(r.service());
    EXPECT_TRUE(co_await eventually([&] { return r.consuming() == 2; }, 10s));
    r.publish("async-2", "std", true);
    EXPECT_TRUE(co_await eventually([&] { return sink.calls >= 1; }, 10s));
    const auto queue = r.service().queue("std");
    co_await r.shut();
    // Not acked: back in the queue for the next worker (at-least-once to the target).
    EXPECT_EQ(messages_in(queue), 1u);
    r.remove_objects();
  });
}

TEST(worker_service, a_stop_cancels_requests_in_flight_after_the_grace) {
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    rig r(io);
    r.hold = true;
    r.client->start();
    r.workers->start();
    co_await r.open_ingress();
    r.registry.put(r.service());
    EXPECT_TRUE(co_await eventually([&] { return r.consuming() == 2; }, 10s));
    r.publish("held", "std", false);
    EXPECT_TRUE(co_await eventually([&] { return r.seen.size() == 1; }, 10s));
    EXPECT_EQ(r.workers->status()[1].in_flight, 1u);
    const auto started = clock::now();
    co_await r.workers->stop();  // the target still holds it: cancelled after 300 ms
    EXPECT_LT(clock::now() - started, 3s);
    const auto queue = r.service().queue("std");
    co_await r.shut();
    EXPECT_EQ(messages_in(queue), 1u);
    r.remove_objects();
  });
}

TEST(worker_service, flavours_with_a_route_go_where_the_registry_points) {
  amqp::test::run([&](asio::io_context& io) -> asio::awaitable<void> {
    test::fake_route_lookup lookup;
    rig r(io, &lookup);
    const std::string base = "http://127.0.0.1:" + std::to_string(r.port);
    // std: a route and a url (the fallback); green: only a route.
    auto s = r.service();
    s.flavours[0].route = test::key_of("acme", r.name, "prod", "v1");
    s.flavours[1].url.clear();
    s.flavours[1].route = test::key_of("acme", r.name, "prod", "v1");
    lookup.active(test::key_of("acme", r.name, "prod", "v1"), base + "/routed");
    r.client->start();
    r.workers->start();
    co_await r.open_ingress();
    r.registry.put(s);
    EXPECT_TRUE(co_await eventually([&] { return r.consuming() == 2; }, 10s));

    // The active route wins over the url; the request's target is appended to its path.
    r.publish("r1", "std", false);
    EXPECT_TRUE(co_await eventually([&] { return r.seen.size() == 1; }, 10s));
    EXPECT_EQ(r.seen.at(0).target, "/routed/t");
    // An override to a version without an active route: std falls back to its url ...
    r.publish("r2", "std", false, {{"X-Sluice-Version", "v2"}});
    EXPECT_TRUE(co_await eventually([&] { return r.seen.size() == 2; }, 10s));
    EXPECT_EQ(r.seen.at(1).target, "/std/t");
    // ... and green, without one, answers no_route without calling anything.
    r.publish("r3", "green", false, {{"X-Sluice-Version", "v2"}});
    EXPECT_TRUE(
        co_await eventually([&] { return messages_total(r, "green", "no_route") == 1; }, 10s));
    // An invalid override calls nothing either.
    r.publish("r4", "green", false, {{"X-Sluice-Env", "prod eu"}});
    EXPECT_TRUE(co_await eventually(
        [&] { return messages_total(r, "green", "invalid_route_header") == 1; }, 10s));
    // Without headers green resolves the flavour's key.
    r.publish("r5", "green", false);
    EXPECT_TRUE(co_await eventually([&] { return r.seen.size() == 3; }, 10s));
    EXPECT_EQ(r.seen.at(2).target, "/routed/t");
    // The route deactivated: std falls back to its url, green has no target.
    lookup.answers.clear();
    r.publish("r6", "std", false);
    EXPECT_TRUE(co_await eventually([&] { return r.seen.size() == 4; }, 10s));
    EXPECT_EQ(r.seen.at(3).target, "/std/t");
    r.publish("r7", "green", false);
    EXPECT_TRUE(
        co_await eventually([&] { return messages_total(r, "green", "no_route") == 2; }, 10s));
    EXPECT_EQ(r.seen.size(), 4u);
    EXPECT_EQ(messages_total(r, "std", "ok"), 3);
    co_await r.shut();
    r.remove_objects();
  });
}

}  // namespace
}  // namespace sluice::worker
