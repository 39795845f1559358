#include "sluice/ingest/ingest_session.hpp"

#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

namespace sluice::ingest {
namespace {

namespace asio = boost::asio;

// A body that arrives in the given chunks, then ends (or fails with `error`). Each read and
// each push is logged, to check that reading waits for durability.
class fake_body : public http::body_reader {
 public:
  fake_body(std::vector<std::string> chunks, std::vector<std::string>& log,
            std::error_code error = {})
      : chunks_(std::move(chunks)), log_(log), error_(error) {}

  asio::awaitable<std::error_code> read_some(std::string& out, std::size_t max) override {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    if (next_ == chunks_.size()) {
      done_ = !error_;
      co_return error_;
    }
    const std::string& c = chunks_[next_];
    const std::size_t n = std::min(max, c.size() - offset_);
    out.append(c, offset_, n);
    offset_ += n;
    read_ += n;
    log_.push_back("read " + std::to_string(n));
    if (offset_ == c.size()) {
      ++next_;
      offset_ = 0;
    }
    done_ = next_ == chunks_.size() && !error_;
    co_return std::error_code{};
  }
  bool done() const noexcept override { return done_; }
  std::size_t bytes_read() const noexcept override { return read_; }
  std::optional<std::size_t> content_length() const noexcept override { return std::nullopt; }

 private:
  std::vector<std::string> chunks_;
  std::vector<std::string>& log_;
  std::error_code error_;
  std::size_t next_ = 0;
  std::size_t offset_ = 0;
  std::size_t read_ = 0;
  bool done_ = false;
};

struct fake_push {
  explicit fake_push(std::vector<std::string>& l) : log(l) {}
  std::vector<std::string>& log;
  std::vector<std::vector<message>> batches;
  // Batch number (0-based) to refuse with 503, and the status of every item otherwise.
  std::optional<std::size_t> refuse_batch;
  push::item_status status = push::item_status::stored;

  push_function function() {
    return [this](push::push_request r) -> asio::awaitable<push::push_outcome> {
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      push::push_outcome out;
      log.push_back("push " + std::to_string(r.items.size()));
      if (refuse_batch && *refuse_batch == batches.size()) {
        batches.emplace_back();
        out.error_status = 503;
        out.error_code = "overloaded";
        out.error_message = "full";
        out.retry_after_seconds = 1;
        co_return out;
      }
      for (const auto& m : r.items)
        out.items.push_back({m.id, m.transaction_id, status});
      batches.push_back(std::move(r.items));
      co_return out;
    };
  }
};

ingest_result run(fake_body& body, const ingest_options& options, fake_push& push) {
  asio::io_context io;
  ingest_result result;
  const auto fn = push.function();
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { result = co_await run_ingest(body, options, fn); },
      [](std::exception_ptr e) {
        if (e)
          std::rethrow_exception(e);
      });
  io.run();
  return result;
}

ingest_options ndjson_options() {
  ingest_options o;
  o.format = body_format::ndjson;
  o.rows.queue = "q";
  o.batch_rows = 3;
  o.read_bytes = 16;
  o.max_body_bytes = 1000;
  return o;
}

std::string rows(int from, int to) {
  std::string s;
  for (int i = from; i <= to; ++i)
    s += "{\"n\":" + std::to_string(i) + "}\n";
  return s;
}

TEST(ingest_session, rows_go_in_bounded_batches_and_reading_waits_for_each) {
  std::vector<std::string> log;
  fake_body body({rows(1, 10)}, log);
  fake_push push{log};
  auto o = ndjson_options();
  o.read_bytes = 1000;  // one read holds all ten rows: the batch bound still applies...
  const auto r = run(body, o, push);
  EXPECT_EQ(r.error_status, 0);
  EXPECT_EQ(r.accepted, 10u);
  EXPECT_EQ(r.durable_through_line, 10u);
  // ...at the end, where everything left is pushed in batches of three.
  ASSERT_EQ(push.batches.size(), 4u);
  EXPECT_EQ(push.batches[3].size(), 1u);
  EXPECT_EQ(push.batches[0][0].payload, "{\"n\":1}");

  log.clear();
  fake_body slow({rows(1, 10)}, log);
  fake_push again{log};
  o.read_bytes = 16;  // two rows per read
  run(slow, o, again);
  // The rows are enough after two reads (4 rows >= 3): pushed in batches of at most three,
  // and only then is the body read on.
  const std::vector<std::string> want = {"read 16", "read 16", "push 3", "push 1",
                                         "read 16", "read 16", "push 3", "push 1",
                                         "read 16", "read 1",  "push 2"};
  EXPECT_EQ(log, want);
}

TEST(ingest_session, bad_rows_are_listed_up_to_the_bound_and_good_ones_stored) {
  std::vector<std::string> log;
  fake_body body({"{\"n\":1}\nbad\n\n{\"n\":2}\nworse\nworst\n"}, log);
  fake_push push{log};
  auto o = ndjson_options();
  o.max_listed_rejections = 2;
  const auto r = run(body, o, push);
  EXPECT_EQ(r.error_status, 0);
  EXPECT_EQ(r.accepted, 2u);
  EXPECT_EQ(r.rejected_count, 3u);
  ASSERT_EQ(r.rejected.size(), 2u);
  EXPECT_EQ(r.rejected[0].line, 2u);
  EXPECT_EQ(r.rejected[1].line, 5u);
  EXPECT_EQ(r.durable_through_line, 6u);
}

TEST(ingest_session, counts_duplicates_and_buffered_rows) {
  std::vector<std::string> log;
  fake_body body({rows(1, 4)}, log);
  fake_push push{log};
  push.status = push::item_status::duplicate;
  auto r = run(body, ndjson_options(), push);
  EXPECT_EQ(r.accepted, 4u);
  EXPECT_EQ(r.duplicates, 4u);
  fake_body body2({rows(1, 4)}, log);
  fake_push push2{log};
  push2.status = push::item_status::buffered;
  r = run(body2, ndjson_options(), push2);
  EXPECT_EQ(r.buffered, 4u);
}

TEST(ingest_session, a_refused_batch_stops_the_upload_and_says_what_is_durable) {
  std::vector<std::string> log;
  fake_body body({rows(1, 10)}, log);
  fake_push push{log};
  push.refuse_batch = 1;
  const auto r = run(body, ndjson_options(), push);
  EXPECT_EQ(r.error_status, 503);
  EXPECT_EQ(r.retry_after_seconds, 1);
  EXPECT_EQ(r.error_code, "overloaded");
  EXPECT_EQ(r.accepted, 3u);
  EXPECT_EQ(r.durable_through_line, 3u);
  EXPECT_EQ(push.batches.size(), 2u);  // nothing after the refusal
}

TEST(ingest_session, strict_mode_stores_nothing_when_a_row_is_bad) {
  std::vector<std::string> log;
  fake_body body({rows(1, 5) + "nope\n" + rows(7, 8)}, log);
  fake_push push{log};
  auto o = ndjson_options();
  o.strict = true;
  const auto r = run(body, o, push);
  EXPECT_EQ(r.error_status, 400);
  EXPECT_EQ(r.error_code, "invalid_row");
  EXPECT_EQ(r.error_message.rfind("line 6: not JSON", 0), 0u) << r.error_message;
  EXPECT_EQ(r.accepted, 0u);
  EXPECT_TRUE(push.batches.empty());
}

TEST(ingest_session, strict_mode_stores_everything_in_batches_once_all_is_valid) {
  std::vector<std::string> log;
  fake_body body({rows(1, 8)}, log);
  fake_push push{log};
  auto o = ndjson_options();
  o.strict = true;
  const auto r = run(body, o, push);
  EXPECT_EQ(r.error_status, 0);
  EXPECT_EQ(r.accepted, 8u);
  EXPECT_EQ(r.durable_through_line, 8u);
  ASSERT_EQ(push.batches.size(), 3u);
  // All reads happen before the first push.
  const auto first_push = std::find(log.begin(), log.end(), "push 3");
  EXPECT_EQ(std::find(first_push, log.end(), "read 16"), log.end());
}

TEST(ingest_session, strict_mode_refuses_bodies_past_its_bound) {
  std::vector<std::string> log;
  fake_body body({rows(1, 8)}, log);
  fake_push push{log};
  auto o = ndjson_options();
  o.strict = true;
  o.strict_max_bytes = 20;
  const auto r = run(body, o, push);
  EXPECT_EQ(r.error_status, 413);
  EXPECT_TRUE(push.batches.empty());
}

TEST(ingest_session, strict_mode_counts_what_tiny_rows_hold_not_only_their_bytes) {
  std::vector<std::string> log;
  std::string tiny;
  for (int i = 0; i < 200; ++i)
    tiny += "1\n";
  fake_body body({tiny}, log);
  fake_push push{log};
  auto o = ndjson_options();
  o.strict = true;
  o.read_bytes = 1000;
  o.strict_max_bytes = 1000;  // the body (400 bytes) fits; 200 messages do not
  const auto r = run(body, o, push);
  EXPECT_EQ(r.error_status, 413);
  EXPECT_TRUE(push.batches.empty());
}

TEST(ingest_session, a_strict_batch_refused_late_reports_the_durable_prefix) {
  std::vector<std::string> log;
  fake_body body({rows(1, 8)}, log);
  fake_push push{log};
  push.refuse_batch = 2;
  auto o = ndjson_options();
  o.strict = true;
  const auto r = run(body, o, push);
  EXPECT_EQ(r.error_status, 503);
  EXPECT_EQ(r.accepted, 6u);
  EXPECT_EQ(r.durable_through_line, 6u);
}

TEST(ingest_session, body_errors) {
  const std::vector<std::pair<http::body_errc, int>> cases = {{http::body_errc::too_large, 413},
                                                              {http::body_errc::timeout, 408},
                                                              {http::body_errc::malformed, 400},
                                                              {http::body_errc::closed, 400}};
  for (const auto& [errc, status] : cases) {
    std::vector<std::string> log;
    fake_body body({rows(1, 4), rows(5, 5)}, log, errc);
    fake_push push{log};
    auto o = ndjson_options();
    o.read_bytes = 1000;
    const auto r = run(body, o, push);
    EXPECT_EQ(r.error_status, status);
    // Rows 1..4 filled a batch before the error; row 5 was read but not stored.
    EXPECT_EQ(r.accepted, 4u);
    EXPECT_EQ(r.durable_through_line, 4u);
  }
}

TEST(ingest_session, csv_upload) {
  std::vector<std::string> log;
  fake_body body({"\xEF\xBB\xBFid,name\r\n1,\"a, b\"\r\n2,\"multi\r\nline\"\r\n3\r\n4,x"}, log);
  fake_push push{log};
  auto o = ndjson_options();
  o.format = body_format::csv;
  o.rows.partition_field = "id";
  const auto r = run(body, o, push);
  EXPECT_EQ(r.error_status, 0);
  EXPECT_EQ(r.accepted, 3u);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].line, 5u);
  EXPECT_EQ(r.rejected[0].message, "expected 2 fields, got 1");
  ASSERT_EQ(push.batches.size(), 1u);
  EXPECT_EQ(push.batches[0][0].payload, R"({"id":1,"name":"a, b"})");
  EXPECT_EQ(push.batches[0][1].payload, R"({"id":2,"name":"multi\r\nline"})");
  EXPECT_EQ(push.batches[0][1].partition, "2");
}

TEST(ingest_session, csv_header_problems_reject_the_upload) {
  for (const std::string& body_text : {std::string(), std::string("a,a\n1,2\n")}) {
    std::vector<std::string> log;
    fake_body body({body_text}, log);
    fake_push push{log};
    auto o = ndjson_options();
    o.format = body_format::csv;
    const auto r = run(body, o, push);
    EXPECT_EQ(r.error_status, 400) << body_text;
    EXPECT_EQ(r.error_code, "invalid_header");
    EXPECT_TRUE(push.batches.empty());
  }
}

TEST(ingest_session, an_empty_ndjson_body_is_fine) {
  std::vector<std::string> log;
  fake_body body({}, log);
  fake_push push{log};
  const auto r = run(body, ndjson_options(), push);
  EXPECT_EQ(r.error_status, 0);
  EXPECT_EQ(r.accepted, 0u);
}

}  // namespace
}  // namespace sluice::ingest
