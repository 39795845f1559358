#include "sluice/ingest/ingest_session.hpp"

#include <optional>

#include "sluice/ingest/csv_parser.hpp"
#include "sluice/ingest/ndjson_splitter.hpp"

namespace sluice::ingest {
namespace {

namespace asio = boost::asio;

// A row's memory beyond its strings: the message, its line number, allocator slack.
constexpr std::size_t row_overhead_bytes = sizeof(message) + 64;

// The parsed rows of an upload waiting for the push path, and what became of the earlier ones.
class ingest_state {
 public:
  ingest_state(const ingest_options& options, const push_function& push)
      : options_(options), push_(push), rows_(options.rows) {}

  row_builder& rows() { return rows_; }
  ingest_result& result() { return result_; }
  bool stopped() const { return result_.error_status != 0; }

  void add(std::size_t line, message m) {
    // What the row holds, as the strict bound counts it: its strings and its bookkeeping.
    pending_bytes_ += m.payload.size() + m.partition.size() +
                      (m.transaction_id ? m.transaction_id->size() : 0) + row_overhead_bytes;
    seen_line_ = line;
    lines_.push_back(line);
    batch_.items.push_back(std::move(m));
  }

  void reject(std::size_t line, std::string why) {
    if (stopped())
      return;
    if (options_.strict) {
      stop(400, "invalid_row", "line " + std::to_string(line) + ": " + why);
      result_.rejected.push_back({line, std::move(why)});
      result_.rejected_count = 1;
      return;
    }
    ++result_.rejected_count;
    if (result_.rejected.size() < options_.max_listed_rejections)
      result_.rejected.push_back({line, std::move(why)});
  }

  void stop(int status, std::string code, std::string message, int retry_after = 0) {
    result_.error_status = status;
    result_.error_code = std::move(code);
    result_.error_message = std::move(message);
    result_.retry_after_seconds = retry_after;
  }

  std::size_t pending_bytes() const { return pending_bytes_; }

  bool batch_full() const {
    return !options_.strict &&
           (batch_.items.size() >= options_.batch_rows || pending_bytes_ >= options_.batch_bytes);
  }

  // Hands the waiting rows to the push path, a batch at a time, each durable before the next.
  asio::awaitable<void> flush() {
    std::size_t from = 0;
    auto& all = batch_.items;
    const std::size_t total = all.size();
    while (from < total && !stopped()) {
      const std::size_t n = std::min(options_.batch_rows, total - from);
      // The last batch settles the rows read after it too (rejected ones, blank lines).
      const std::size_t last_line_of_batch = from + n == total ? seen_line_ : lines_[from + n - 1];
      push::push_request request;
      if (from == 0 && n == total) {
        request.items = std::move(all);
      } else {
        request.items.assign(std::make_move_iterator(all.begin() + static_cast<long>(from)),
                             std::make_move_iterator(all.begin() + static_cast<long>(from + n)));
      }
      auto out = co_await push_(std::move(request));
      if (out.error_status != 0) {
        stop(out.error_status, out.error_code, out.error_message, out.retry_after_seconds);
        break;
      }
      for (const auto& item : out.items) {
        ++result_.accepted;
        if (item.status == push::item_status::duplicate)
          ++result_.duplicates;
        else if (item.status == push::item_status::buffered)
          ++result_.buffered;
      }
      result_.durable_through_line = last_line_of_batch;
      from += n;
    }
    batch_.items.clear();
    lines_.clear();
    pending_bytes_ = 0;
  }

  // Rows that were read and dealt with without the push path (rejections, blank lines) count
  // as done once everything before them is durable.
  void settled_through(std::size_t line) {
    seen_line_ = line;
    if (batch_.items.empty() && !stopped())
      result_.durable_through_line = line;
  }

 private:
  const ingest_options& options_;
  const push_function& push_;
  row_builder rows_;
  ingest_result result_;
  push::push_request batch_;
  std::vector<std::size_t> lines_;  // the line of each row in batch_
  std::size_t pending_bytes_ = 0;
  std::size_t seen_line_ = 0;
};

void body_error(ingest_state& state, std::error_code ec, std::size_t limit) {
  if (ec == http::body_errc::too_large) {
    state.stop(413, "body_too_large",
               "the upload is larger than " + std::to_string(limit) + " bytes");
  } else if (ec == http::body_errc::timeout) {
    state.stop(408, "body_timeout", "the client stopped sending the body");
  } else if (ec == http::body_errc::malformed) {
    state.stop(400, "bad_body", "malformed chunked encoding");
  } else {
    state.stop(400, "body_incomplete", "the body ended early: " + ec.message());
  }
}

void strict_too_large(ingest_state& state, std::size_t limit) {
  state.stop(413, "body_too_large",
             "a strict upload is limited to " + std::to_string(limit) +
                 " bytes of body and of rows held (each row counts its payload and about " +
                 std::to_string(row_overhead_bytes) +
                 " bytes more): its rows are held until the body has ended; send larger "
                 "uploads without strict=true");
}

}  // namespace

asio::awaitable<ingest_result> run_ingest(http::body_reader& body, const ingest_options& options,
                                          const push_function& push) {
  ingest_state state(options, push);
  ndjson_splitter lines(options.rows.max_row_bytes);
  csv_parser records(options.rows.max_row_bytes);
  message scratch;

  const ndjson_splitter::line_handler on_line = [&](const ndjson_line& line) {
    if (state.stopped())
      return;
    if (!line.too_long && line.text.find_first_not_of(" \t\r") == std::string_view::npos) {
      state.settled_through(line.number);
      return;
    }
    if (auto error = state.rows().from_ndjson(line, scratch)) {
      state.reject(line.number, std::move(*error));
      state.settled_through(line.number);
      return;
    }
    state.add(line.number, std::move(scratch));
    scratch = message{};
  };
  const csv_parser::record_handler on_record = [&](const csv_record& record) {
    if (state.stopped())
      return;
    if (!state.rows().has_csv_header()) {
      if (auto error = state.rows().set_csv_header(record))
        state.stop(400, "invalid_header", *error);
      state.settled_through(record.line);
      return;
    }
    if (auto error = state.rows().from_csv(record, scratch)) {
      state.reject(record.line, std::move(*error));
      state.settled_through(record.line);
      return;
    }
    state.add(record.line, std::move(scratch));
    scratch = message{};
  };

  std::string chunk;
  chunk.reserve(options.read_bytes);
  for (;;) {
    chunk.clear();
    const auto ec = co_await body.read_some(chunk, options.read_bytes);
    state.result().bytes_read = body.bytes_read();
    if (ec) {
      body_error(state, ec, options.max_body_bytes);
      break;
    }
    if (options.strict && body.bytes_read() > options.strict_max_bytes) {
      strict_too_large(state, options.strict_max_bytes);
      break;
    }
    if (options.format == body_format::ndjson)
      lines.feed(chunk, on_line);
    else
      records.feed(chunk, on_record);
    if (options.strict && !state.stopped() && state.pending_bytes() > options.strict_max_bytes) {
      strict_too_large(state, options.strict_max_bytes);
      break;
    }
    if (state.stopped())
      break;
    if (body.done()) {
      if (options.format == body_format::ndjson) {
        lines.finish(on_line);
      } else {
        records.finish(on_record);
        if (!state.rows().has_csv_header() && !state.stopped())
          state.stop(400, "invalid_header", "the CSV body has no header row");
      }
      if (!state.stopped())
        co_await state.flush();
      break;
    }
    if (state.batch_full())
      co_await state.flush();
    if (state.stopped())
      break;
  }
  co_return std::move(state.result());
}

}  // namespace sluice::ingest
