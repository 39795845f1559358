// The relay through failures: RabbitMQ cut off or stopped mid-load, sluice killed between
// commit and confirm, two instances sharing one database. The shared broker is never stopped:
// a TCP proxy in front of it is cut or paused, and the stop/restart scenario uses a private
// node (port 29872). Messages are counted with rabbitmq-c's blocking client.
#include <cstdio>

#include <gtest/gtest.h>

#include "private_broker.hpp"
#include "relay_test_support.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"

namespace sluice::relay::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using sluice::test::http_call;
using sluice::test::pg_session;
using sluice::test::scoped_database;
using sluice::test::sluice_process;
using sluice::test::tcp_proxy;
using sluice::test::temp_dir;
// Every check passing, RabbitMQ included: plain readiness is 200 as soon as pushes are taken.
constexpr const char* strict_ready = "/health/ready?strict=true";

class relay_chaos : public ::testing::Test {
 protected:
  scoped_database db_;
  std::string queue_ = unique_queue("relay.chaos");
  std::vector<std::string> brokers_{amqp_url()};

  ~relay_chaos() override {
    for (const auto& url : brokers_)
      delete_rabbitmq_objects(url, queue_);
  }

  sluice_process::env_map env(const std::string& rabbitmq_url, const temp_dir& buffer,
                              sluice_process::env_map extra = {}) {
    extra.try_emplace("DATABASE_URL", db_.url());
    extra.try_emplace("RABBITMQ_URL", rabbitmq_url);
    extra.try_emplace("FILE_BUFFER_DIR", buffer.path());
    extra.try_emplace("RELAY_SWEEP_GRACE_MS", "1000");
    extra.try_emplace("RELAY_SWEEP_INTERVAL_MS", "200");
    extra.try_emplace("LOG_LEVEL", "info");
    return extra;
  }

  static void wait_ready(const sluice_process& s) {
    ASSERT_TRUE(
        eventually([&] { return http_call(s.port(), "GET", strict_ready).status == 200; }, 30s))
        << http_call(s.port(), "GET", strict_ready).body << s.log();
  }

  std::string unpublished() {
    pg_session pg(db_.url());
    return pg.scalar("SELECT count(*) FROM sluice_relay_outbox");
  }

  std::vector<std::string> stored_ids() {
    pg_session pg(db_.url());
    std::vector<std::string> ids;
    for (const auto& row : pg.query("SELECT id::text FROM sluice_messages ORDER BY id"))
      ids.push_back(*row[0]);
    return ids;
  }

  // Every row that is stored, and every id a client got a 201 for, reached RabbitMQ: at least
  // once. Returns the duplicates, printed for the record.
  std::size_t verify_delivered(const std::string& broker_url, const std::vector<std::string>& acked,
                               const char* scenario) {
    const auto stored = stored_ids();
    EXPECT_GE(stored.size(), acked.size());
    const auto got = consume_ids(broker_url, queue_, stored.size(), 3s);
    std::size_t missing = 0;
    for (const auto& id : stored)
      missing += got.by_id.count(id) == 0 ? 1 : 0;
    for (const auto& id : acked)
      EXPECT_TRUE(got.by_id.count(id)) << "acknowledged " << id << " never reached RabbitMQ";
    EXPECT_EQ(missing, 0u) << "stored rows missing in RabbitMQ";
    std::map<int, std::size_t> copies;  // times delivered -> ids
    for (const auto& [id, times] : got.by_id)
      ++copies[times];
    std::string histogram;
    for (const auto& [times, ids] : copies)
      histogram += " x" + std::to_string(times) + "=" + std::to_string(ids);
    std::printf(
        "[ relay ] %s: stored=%zu acknowledged=%zu delivered=%zu distinct=%zu "
        "duplicates=%zu (ids delivered n times:%s)\n",
        scenario, stored.size(), acked.size(), got.received, got.by_id.size(), got.duplicates(),
        histogram.c_str());
    std::fflush(stdout);
    return got.duplicates();
  }
};

TEST_F(relay_chaos, pushes_keep_succeeding_while_rabbitmq_is_cut_and_the_backlog_drains) {
  tcp_proxy proxy("127.0.0.1", sluice::test::url_port(amqp_url()));
  temp_dir buffer;
  sluice_process s(env(sluice::test::url_with_port(amqp_url(), proxy.port()), buffer));
  wait_ready(s);

  push_load load({s.port()}, queue_, 2, 20, 10ms);
  ASSERT_TRUE(eventually([&] { return load.acked() > 500; }, 10s));
  proxy.cut();
  const std::size_t acked_at_cut = load.acked();
  ASSERT_TRUE(eventually(
      [&] {
        const auto r = http_call(s.port(), "GET", "/health/ready");
        return r.status == 200 && r.json()["status"] == "degraded" &&
               r.json()["checks"]["rabbitmq"]["ok"] == false;
      },
      5s));
  // PostgreSQL is the source of truth: pushes go on; the backlog grows and shows its age.
  std::this_thread::sleep_for(3s);
  EXPECT_GT(load.acked(), acked_at_cut + 500);
  EXPECT_TRUE(eventually([&] { return metric(s.port(), "sluice_relay_backlog") > 300.0; }, 5s));
  EXPECT_GT(metric(s.port(), "sluice_relay_backlog_oldest_age_seconds").value_or(0), 1.0);
  EXPECT_EQ(metric(s.port(), "sluice_amqp_connected"), 0.0);

  proxy.restore();
  std::this_thread::sleep_for(1s);
  load.stop();
  EXPECT_TRUE(eventually([&] { return metric(s.port(), "sluice_relay_backlog") == 0.0; }, 40s))
      << s.log();
  EXPECT_EQ(unpublished(), "0");
  EXPECT_GE(metric(s.port(), "sluice_amqp_reconnects_total").value_or(0), 1.0);
  EXPECT_GT(metric(s.port(), "sluice_relay_swept_total").value_or(0), 0.0);
  const auto statuses = load.statuses();
  EXPECT_EQ(statuses.size(), 1u) << "every push answered 201";
  EXPECT_EQ(statuses.count(201), 1u);
  verify_delivered(amqp_url(), load.ids(), "cut mid-load");
}

TEST_F(relay_chaos, kill9_between_commit_and_confirm_leaves_nothing_unpublished) {
  tcp_proxy proxy("127.0.0.1", sluice::test::url_port(amqp_url()));
  temp_dir buffer;
  const auto url = sluice::test::url_with_port(amqp_url(), proxy.port());
  std::vector<std::string> acked;
  {
    sluice_process s(env(url, buffer, {{"RELAY_SWEEP_GRACE_MS", "500"}}));
    wait_ready(s);
    acked = push_items(s.port(), queue_, 200, 50);
    ASSERT_TRUE(eventually([&] { return unpublished() == "0"; }, 10s));
    // The broker stops answering: the next rows are committed and published into a TCP
    // connection that confirms nothing.
    proxy.pause();
    const auto more = push_items(s.port(), queue_, 500, 50, "p1");
    acked.insert(acked.end(), more.begin(), more.end());
    std::this_thread::sleep_for(300ms);
    s.kill9();
  }
  proxy.restore();
  EXPECT_EQ(unpublished(), "500");

  sluice_process restarted(env(url, buffer, {{"RELAY_SWEEP_GRACE_MS", "500"}}));
  EXPECT_TRUE(eventually([&] { return unpublished() == "0"; }, 30s)) << restarted.log();
  EXPECT_TRUE(
      eventually([&] { return metric(restarted.port(), "sluice_relay_backlog") == 0.0; }, 10s));
  EXPECT_GE(metric(restarted.port(), "sluice_relay_swept_total").value_or(0), 500.0);
  verify_delivered(amqp_url(), acked, "kill -9 before confirms");
}

TEST_F(relay_chaos, two_instances_on_one_database_publish_every_message_about_once) {
  tcp_proxy proxy("127.0.0.1", sluice::test::url_port(amqp_url()));
  const auto url = sluice::test::url_with_port(amqp_url(), proxy.port());
  temp_dir buffer_a, buffer_b;
  // A grace period the confirms of a loaded machine fit in (the default is 30 s): a row whose
  // in-memory publish waits for its confirm longer than this may be swept by the other
  // instance too (README, Delivery). The 3 s outage still leaves rows to both sweepers.
  const sluice_process::env_map slower_grace = {{"RELAY_SWEEP_GRACE_MS", "3000"}};
  sluice_process a(env(url, buffer_a, slower_grace));
  sluice_process b(env(url, buffer_b, slower_grace));
  wait_ready(a);
  wait_ready(b);

  // The broker goes away before the first push: with nothing in flight at the cut, no
  // message can come twice from a re-send (the other chaos tests count those), and what is
  // left is what this test is about. While it is away both instances' rows pile up;
  // afterwards both sweepers claim from the same backlog at the same time.
  proxy.cut();
  push_load load({a.port(), b.port()}, queue_, 1, 20, 10ms);
  std::this_thread::sleep_for(3s);
  proxy.restore();
  std::this_thread::sleep_for(1500ms);
  load.stop();
  for (const auto* s : {&a, &b}) {
    EXPECT_TRUE(eventually([&] { return metric(s->port(), "sluice_relay_backlog") == 0.0; }, 40s))
        << s->log();
  }
  EXPECT_EQ(unpublished(), "0");
  const double swept = metric(a.port(), "sluice_relay_swept_total").value_or(0) +
                       metric(b.port(), "sluice_relay_swept_total").value_or(0);
  EXPECT_GT(swept, 0.0);
  const auto acked = load.ids();
  const std::size_t duplicates = verify_delivered(amqp_url(), acked, "two instances");
  // Sweepers never share rows, and an instance's own publishes are not swept by the other.
  EXPECT_LE(duplicates, std::max<std::size_t>(50, acked.size() / 100));
}

TEST_F(relay_chaos, rabbitmq_stopped_mid_load_and_restarted_gets_every_message) {
  amqp::test::private_broker broker(29872, 29873, "relaytest@localhost");
  broker.start();
  const std::string url = sluice::test::url_with_port(amqp_url(), 29872);
  temp_dir buffer;
  sluice_process s(env(url, buffer));
  wait_ready(s);

  push_load load({s.port()}, queue_, 2, 20, 10ms);
  ASSERT_TRUE(eventually([&] { return load.acked() > 500; }, 10s));
  broker.stop();
  const std::size_t acked_at_stop = load.acked();
  std::this_thread::sleep_for(2s);
  EXPECT_GT(load.acked(), acked_at_stop) << "pushes go on while RabbitMQ is down";
  broker.start();
  std::this_thread::sleep_for(1s);
  load.stop();
  EXPECT_TRUE(eventually([&] { return metric(s.port(), "sluice_relay_backlog") == 0.0; }, 60s))
      << s.log();
  EXPECT_EQ(unpublished(), "0");
  const auto statuses = load.statuses();
  EXPECT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses.count(201), 1u);
  verify_delivered(url, load.ids(), "broker stopped and restarted");
}

}  // namespace
}  // namespace sluice::relay::test
