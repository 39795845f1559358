#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "sluice/http/body_reader.hpp"
#include "sluice/ingest/row_builder.hpp"
#include "sluice/push/push_request.hpp"
#include "sluice/push/push_service.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::ingest {

enum class body_format { ndjson, csv };

struct ingest_options {
  body_format format = body_format::ndjson;
  row_options rows;
  // The first bad row rejects the upload (400) with nothing stored: rows are validated as the
  // body arrives and kept in memory until it has ended, so a strict body, and the rows it
  // holds (payloads plus bookkeeping: tiny rows cost more than their bytes), are limited to
  // strict_max_bytes (413 past it).
  bool strict = false;
  std::size_t strict_max_bytes = 16 * 1024 * 1024;
  // A batch handed to the push path: whichever bound is reached first. The body is not read
  // further until the batch is durable.
  std::size_t batch_rows = 2000;  // the batcher commits 500 rows per round trip, 4 at once
  std::size_t batch_bytes = 4 * 1024 * 1024;
  std::size_t read_bytes = 64 * 1024;  // asked of the body per read
  std::size_t max_listed_rejections = 100;
  std::size_t max_body_bytes = 0;  // the route's limit, for the 413's message
};

struct row_rejection {
  std::size_t line;
  std::string message;
};

// What an upload came to. Rows are handed to the push path in order, batch after batch, each
// durable before the body is read further; so when an upload stops early (error_status set),
// every accepted row has a line number up to durable_through_line and no later row was stored.
struct ingest_result {
  int error_status = 0;  // 0: the whole body was read and every good row is durable
  std::string error_code;
  std::string error_message;
  int retry_after_seconds = 0;

  std::size_t accepted = 0;    // rows durable: stored, buffered, or there already
  std::size_t duplicates = 0;  // of accepted: there already (same Idempotency-Key and line)
  std::size_t buffered = 0;    // of accepted: in the file buffer, PostgreSQL to follow
  std::vector<row_rejection> rejected;  // the first max_listed_rejections
  std::size_t rejected_count = 0;
  std::size_t durable_through_line = 0;
  std::size_t bytes_read = 0;
};

using push_function = std::function<boost::asio::awaitable<push::push_outcome>(push::push_request)>;

// Reads `body` to its end, turning lines or records into messages and handing them to `push` in
// bounded batches. Memory is one read and one batch (the rows that filled batch_rows or
// batch_bytes, at most one read's worth beyond), whatever the body's size (strict mode: up to
// strict_max_bytes of rows).
boost::asio::awaitable<ingest_result> run_ingest(http::body_reader& body,
                                                 const ingest_options& options,
                                                 const push_function& push);

}  // namespace sluice::ingest
