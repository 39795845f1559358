#include "sluice/worker/batch_assembler.hpp"

#include "sluice/worker/batch_call.hpp"
#include "sluice/worker/forward_outcome.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::worker {
namespace {

namespace asio = boost::asio;
using clock = batch_assembler::clock;
using std::chrono::milliseconds;

batch_assembler::item make_item(const std::string& id) {
  batch_assembler::item i;
  i.request.id = id;
  i.request.method = "GET";
  i.request.target = "/" + id;
  i.request.flavour = "std";
  i.correlation_id = id;
  i.deadline = clock::now() + std::chrono::seconds(5);
  return i;
}

// A sender that records each batch and answers each request with its id as the body, after
// `delay`.
struct fake_sender {
  std::vector<std::vector<std::string>> batches;
  std::vector<clock::time_point> sent_at;
  milliseconds delay{0};

  batch_assembler::sender make(asio::io_context& io) {
    return [this, &io](const std::vector<batch_assembler::item>& items,
                       clock::time_point) -> asio::awaitable<std::vector<rpc::rpc_reply>> {
      std::vector<std::string> ids;
      for (const auto& i : items)
        ids.push_back(i.correlation_id);
      batches.push_back(ids);
      sent_at.push_back(clock::now());
      if (delay.count() > 0) {
        asio::steady_timer t(io, delay);
        co_await t.async_wait(asio::use_awaitable);
      }
      std::vector<rpc::rpc_reply> out;
      for (const auto& id : ids) {
        rpc::rpc_reply r;
        r.status = 200;
        r.body = id;
        out.push_back(r);
      }
      co_return out;
    };
  }
};

struct harness {
  asio::io_context io;
  fake_sender sender;
  std::map<std::string, rpc::rpc_reply> replies;
  std::map<std::string, clock::time_point> answered_at;

  void submit(batch_assembler& a, const std::string& id) {
    asio::co_spawn(
        io,
        [this, &a, id]() -> asio::awaitable<void> {
          auto r = co_await a.submit(make_item(id));
          answered_at[id] = clock::now();
          replies[id] = std::move(r);
        },
        asio::detached);
  }
};

TEST(batch_assembler, sends_when_full_without_waiting_for_the_timer) {
  harness h;
  batch_limits limits;
  limits.max_requests = 3;
  limits.max_wait = milliseconds(60'000);
  batch_assembler a(h.io.get_executor(), limits, h.sender.make(h.io));
  const auto start = clock::now();
  for (const auto* id : {"a", "b", "c", "d"})
    h.submit(a, id);
  // Runs until a, b, c are answered; d waits in the open batch (its timer is a minute away).
  while (h.replies.size() < 3)
    h.io.run_one();
  EXPECT_LT(clock::now() - start, std::chrono::seconds(5));
  ASSERT_EQ(h.sender.batches.size(), 1u);
  EXPECT_EQ(h.sender.batches[0], (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(h.replies["b"].body, "b");
  EXPECT_EQ(a.open_requests(), 1u);
  EXPECT_EQ(a.batches_sent(), 1u);
  asio::co_spawn(h.io, a.stop(clock::now() + std::chrono::seconds(1)), asio::detached);
  h.io.run_for(milliseconds(100));
}

TEST(batch_assembler, sends_what_arrived_within_max_wait) {
  harness h;
  batch_limits limits;
  limits.max_requests = 100;
  limits.max_wait = milliseconds(80);
  batch_assembler a(h.io.get_executor(), limits, h.sender.make(h.io));
  const auto start = clock::now();
  h.submit(a, "a");
  h.submit(a, "b");
  while (h.replies.size() < 2)
    h.io.run_one();
  ASSERT_EQ(h.sender.batches.size(), 1u);
  EXPECT_EQ(h.sender.batches[0], (std::vector<std::string>{"a", "b"}));
  EXPECT_GE(h.sender.sent_at[0] - start, milliseconds(75));
  EXPECT_LT(h.sender.sent_at[0] - start, milliseconds(2'000));
  // The next request opens a new batch with a timer of its own.
  h.submit(a, "c");
  while (h.replies.size() < 3)
    h.io.run_one();
  ASSERT_EQ(h.sender.batches.size(), 2u);
  EXPECT_EQ(h.sender.batches[1], (std::vector<std::string>{"c"}));
}

TEST(batch_assembler, a_repeated_id_sends_the_open_batch_first) {
  harness h;
  batch_limits limits;
  limits.max_requests = 10;
  limits.max_wait = milliseconds(50);
  batch_assembler a(h.io.get_executor(), limits, h.sender.make(h.io));
  h.submit(a, "a");
  h.submit(a, "b");
  h.submit(a, "a");
  while (h.sender.batches.size() < 2)
    h.io.run_one();
  EXPECT_EQ(h.sender.batches[0], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(h.sender.batches[1], (std::vector<std::string>{"a"}));
}

TEST(batch_assembler, batches_in_flight_overlap) {
  harness h;
  h.sender.delay = milliseconds(200);
  batch_limits limits;
  limits.max_requests = 2;
  limits.max_wait = milliseconds(60'000);
  batch_assembler a(h.io.get_executor(), limits, h.sender.make(h.io));
  for (const auto* id : {"a", "b", "c", "d"})
    h.submit(a, id);
  while (h.sender.batches.size() < 2)
    h.io.run_one();
  EXPECT_EQ(a.batches_in_flight(), 2u);
  while (h.replies.size() < 4)
    h.io.run_one();
  EXPECT_EQ(a.batches_in_flight(), 0u);
}

TEST(batch_assembler, a_sender_with_the_wrong_count_answers_everyone_502) {
  asio::io_context io;
  batch_limits limits;
  limits.max_requests = 2;
  batch_assembler::sender short_sender =
      [](const std::vector<batch_assembler::item>&,
         clock::time_point) -> asio::awaitable<std::vector<rpc::rpc_reply>> {
    co_return std::vector<rpc::rpc_reply>(1);
  };
  batch_assembler a(io.get_executor(), limits, short_sender);
  std::vector<rpc::rpc_reply> got;
  for (const auto* id : {"a", "b"}) {
    asio::co_spawn(
        io,
        [&a, &got, id = std::string(id)]() -> asio::awaitable<void> {
          got.push_back(co_await a.submit(make_item(id)));
        },
        asio::detached);
  }
  while (got.size() < 2)
    io.run_one();
  for (const auto& r : got) {
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(r.error_code, "upstream_bad_batch");
  }
}

// call_batch with a fake HTTP transport.
struct transport_fake {
  std::error_code error;
  http::client_response response;
  http::client_request seen;
  int calls = 0;

  http_transport make() {
    return [this](http::client_request request, http::client::clock::time_point)
               -> asio::awaitable<std::tuple<std::error_code, http::client_response>> {
      ++calls;
      seen = std::move(request);
      co_return std::tuple{error, response};
    };
  }
};

std::vector<rpc::rpc_reply> run_call(transport_fake& fake, const std::vector<std::string>& ids,
                                     std::string* why = nullptr) {
  asio::io_context io;
  std::vector<batch_assembler::item> items;
  for (const auto& id : ids)
    items.push_back(make_item(id));
  target_origin url;
  url.host = "127.0.0.1";
  url.port = 9;
  url.base_path = "/batch";
  std::vector<rpc::rpc_reply> out;
  const auto transport = fake.make();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        out =
            co_await call_batch(transport, url, items, clock::now() + std::chrono::seconds(1), why);
      },
      asio::detached);
  io.run();
  return out;
}

TEST(call_batch, posts_the_array_and_splits_the_answer) {
  transport_fake fake;
  fake.response.status = 200;
  fake.response.body =
      R"([{"correlation_id":"b","status":404,"body":"nb"},{"correlation_id":"a","status":200,"body":"ya"}])";
  const auto replies = run_call(fake, {"a", "b"});
  EXPECT_EQ(fake.seen.method, "POST");
  EXPECT_EQ(fake.seen.target, "/batch");
  EXPECT_EQ(fake.seen.host, "127.0.0.1");
  EXPECT_EQ(nlohmann::json::parse(fake.seen.body).size(), 2u);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].status, 200);
  EXPECT_EQ(replies[0].body, "ya");
  EXPECT_EQ(replies[1].status, 404);
  EXPECT_TRUE(replies[1].error_code.empty());
}

TEST(call_batch, a_partial_answer_fails_every_request) {
  transport_fake fake;
  fake.response.status = 200;
  fake.response.body = R"([{"correlation_id":"a","status":200}])";
  std::string why;
  const auto replies = run_call(fake, {"a", "b", "c"}, &why);
  ASSERT_EQ(replies.size(), 3u);
  for (const auto& r : replies) {
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(r.error_code, "upstream_bad_batch");
  }
  EXPECT_NE(why.find("1 entries for 3"), std::string::npos) << why;
}

TEST(call_batch, wrong_ids_fail_every_request) {
  transport_fake fake;
  fake.response.status = 200;
  fake.response.body =
      R"([{"correlation_id":"a","status":200},{"correlation_id":"zzz","status":200}])";
  const auto replies = run_call(fake, {"a", "b"});
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].error_code, "upstream_bad_batch");
  EXPECT_EQ(replies[1].error_code, "upstream_bad_batch");
}

TEST(call_batch, a_failed_status_fails_every_request) {
  transport_fake fake;
  fake.response.status = 500;
  fake.response.body = R"([{"correlation_id":"a","status":200}])";
  const auto replies = run_call(fake, {"a"});
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].status, 502);
  EXPECT_EQ(replies[0].error_code, "upstream_bad_batch");
}

TEST(call_batch, an_unreachable_or_slow_target_maps_like_a_single_request) {
  transport_fake down;
  down.error = http::client_errc::connect_failed;
  const auto a = run_call(down, {"a", "b"});
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].status, 502);
  EXPECT_EQ(a[1].error_code, "upstream_unavailable");

  transport_fake slow;
  slow.error = http::client_errc::timeout;
  const auto b = run_call(slow, {"a"});
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].status, 504);
  EXPECT_EQ(b[0].error_code, "upstream_timeout");
}

}  // namespace
}  // namespace sluice::worker
