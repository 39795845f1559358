#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "sluice/core/message.hpp"
#include "sluice/ingest/csv_parser.hpp"
#include "sluice/ingest/event_time.hpp"
#include "sluice/ingest/ndjson_splitter.hpp"

namespace sluice::ingest {

struct row_options {
  std::string queue;
  // The key (NDJSON) or column (CSV) whose value is the row's partition; none: "Default".
  std::optional<std::string> partition_field;
  // The key or column whose value is the row's event time (message::event_us).
  std::optional<std::string> time_field;
  time_format format = time_format::rfc3339;
  // Set: each row's transactionId is "<key>:<line>", so a repeated upload stores nothing
  // twice.
  std::optional<std::string> idempotency_key;
  std::size_t max_row_bytes = 1024 * 1024;  // of the JSON payload a row becomes
};

// Turns NDJSON lines and CSV records into messages for the push path, or says why a row cannot
// be one. Each call either fills `out` (queue, partition, payload, event_us, transaction_id)
// and returns no error, or returns the reason and leaves `out` unspecified.
class row_builder {
 public:
  explicit row_builder(row_options options);

  std::optional<std::string> from_ndjson(const ndjson_line& line, message& out);

  // The first record of a CSV body is its header: the column names. An error here rejects the
  // whole upload (no row can be read without it).
  std::optional<std::string> set_csv_header(const csv_record& header);
  bool has_csv_header() const { return header_set_; }
  std::optional<std::string> from_csv(const csv_record& record, message& out);

  const row_options& options() const { return options_; }

 private:
  std::optional<std::string> finish(std::size_t line, message& out);

  row_options options_;
  bool header_set_ = false;
  std::vector<std::string> member_prefixes_;  // per column: `"name":` (with a comma before
                                              // all but the first)
  std::optional<std::size_t> partition_column_;
  std::optional<std::size_t> time_column_;
  // Scratch for the field values being matched, kept to reuse their capacity.
  std::string partition_;
  std::string time_;
  std::string key_;
};

}  // namespace sluice::ingest
