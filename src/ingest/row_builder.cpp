#include "sluice/ingest/row_builder.hpp"

#include <unordered_set>

#include "sluice/core/utf8.hpp"
#include "sluice/ingest/csv_value.hpp"
#include "sluice/push/json_scanner.hpp"
#include "sluice/push/push_request.hpp"

namespace sluice::ingest {
namespace {

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':';
}

// The push API's rule for partitions (push_request.hpp: max_name_bytes).
bool valid_partition(std::string_view v) {
  if (v.empty() || v.size() > push::max_name_bytes)
    return false;
  for (char c : v) {
    if (!valid_name_char(c))
      return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// A scalar JSON value's text for matching: a string decoded, a number as written; none for
// anything else (null, true, an object...).
bool scalar_text(std::string_view span, std::string& out) {
  if (span.empty())
    return false;
  if (span.front() == '"') {
    push::json_scanner s(span);
    return s.read_string(out);
  }
  if (span.front() == '-' || (span.front() >= '0' && span.front() <= '9')) {
    out.assign(span);
    return true;
  }
  return false;
}

}  // namespace

row_builder::row_builder(row_options options) : options_(std::move(options)) {}

std::optional<std::string> row_builder::finish(std::size_t line, message& out) {
  out.queue = options_.queue;
  if (options_.partition_field) {
    if (!valid_partition(partition_))
      return "partition field '" + *options_.partition_field +
             "': must be 1 to 128 bytes of letters, digits and . _ : -";
    out.partition = partition_;
  } else {
    out.partition = "Default";
  }
  out.event_us.reset();
  if (options_.time_field) {
    out.event_us = parse_event_time_us(options_.format, time_);
    if (!out.event_us) {
      return "time field '" + *options_.time_field + "': '" + time_.substr(0, 64) +
             "' is not a time in " +
             (options_.format == time_format::rfc3339   ? "RFC 3339"
              : options_.format == time_format::epoch_s ? "seconds since the epoch"
                                                        : "milliseconds since the epoch");
    }
  }
  if (options_.idempotency_key)
    // U+001F between key and line: a control character no push may put into a transactionId,
    // so a pushed "KEY:2" never makes line 2 of an upload look stored already.
    out.transaction_id = *options_.idempotency_key + '\x1f' + std::to_string(line);
  else
    out.transaction_id.reset();
  out.namespace_.reset();
  out.task.reset();
  out.trace_id.reset();
  return std::nullopt;
}

std::optional<std::string> row_builder::from_ndjson(const ndjson_line& line, message& out) {
  if (line.too_long)
    return "line longer than " + std::to_string(options_.max_row_bytes) + " bytes";
  const auto text = trim(line.text);
  push::json_scanner scan(text);
  const bool wanted = options_.partition_field || options_.time_field;
  bool partition_seen = false;
  bool time_seen = false;
  if (!wanted) {
    std::string_view span;
    if (!scan.skip_value(span) || !scan.at_end())
      return "not JSON: " +
             (scan.error().empty() ? std::string("text after the value") : scan.error());
  } else {
    if (!scan.skip_whitespace_and_expect('{'))
      return "not a JSON object (partition_field and time_field name members of one)";
    if (!scan.peek_is('}')) {
      for (;;) {
        std::string_view span;
        if (!scan.read_key(key_) || !scan.skip_value(span))
          return "not JSON: " + scan.error();
        if (options_.partition_field && key_ == *options_.partition_field) {
          partition_seen = scalar_text(span, partition_);
          if (!partition_seen)
            return "partition field '" + *options_.partition_field +
                   "': expected a string or a number";
        } else if (options_.time_field && key_ == *options_.time_field) {
          time_seen = scalar_text(span, time_);
          if (!time_seen)
            return "time field '" + *options_.time_field + "': expected a string or a number";
        }
        const auto next = scan.next_in('}');
        if (next == push::json_scanner::after::closed)
          break;
        if (next == push::json_scanner::after::error)
          return "not JSON: " + scan.error();
      }
    } else {
      scan.skip_whitespace_and_expect('}');
    }
    if (!scan.at_end())
      return "not JSON: text after the value";
    if (options_.partition_field && !partition_seen)
      return "partition field '" + *options_.partition_field + "' is missing";
    if (options_.time_field && !time_seen)
      return "time field '" + *options_.time_field + "' is missing";
  }
  if (auto error = finish(line.number, out))
    return error;
  out.payload.assign(text);
  return std::nullopt;
}

std::optional<std::string> row_builder::set_csv_header(const csv_record& header) {
  if (!header.error.empty())
    return "header (line " + std::to_string(header.line) + "): " + header.error;
  std::unordered_set<std::string> seen;
  member_prefixes_.clear();
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    const auto& name = header.fields[i].value;
    if (!is_valid_utf8(name))
      return "header: column " + std::to_string(i + 1) + " is not UTF-8";
    if (!seen.insert(name).second)
      return "header: column '" + name + "' appears twice";
    std::string prefix = i == 0 ? "" : ",";
    append_json_string(prefix, name);
    prefix.push_back(':');
    member_prefixes_.push_back(std::move(prefix));
    if (options_.partition_field && name == *options_.partition_field)
      partition_column_ = i;
    if (options_.time_field && name == *options_.time_field)
      time_column_ = i;
  }
  if (options_.partition_field && !partition_column_)
    return "header: no column '" + *options_.partition_field + "' (partition_field)";
  if (options_.time_field && !time_column_)
    return "header: no column '" + *options_.time_field + "' (time_field)";
  header_set_ = true;
  return std::nullopt;
}

std::optional<std::string> row_builder::from_csv(const csv_record& record, message& out) {
  if (!record.error.empty())
    return record.error;
  if (record.fields.size() != member_prefixes_.size()) {
    return "expected " + std::to_string(member_prefixes_.size()) + " fields, got " +
           std::to_string(record.fields.size());
  }
  for (const auto& f : record.fields) {
    if (!is_valid_utf8(f.value))
      return "not UTF-8";
  }
  if (partition_column_)
    partition_ = record.fields[*partition_column_].value;
  if (time_column_)
    time_ = record.fields[*time_column_].value;
  if (auto error = finish(record.line, out))
    return error;
  auto& p = out.payload;
  p.clear();
  p.push_back('{');
  for (std::size_t i = 0; i < record.fields.size(); ++i) {
    p += member_prefixes_[i];
    append_csv_value(p, record.fields[i]);
  }
  p.push_back('}');
  if (p.size() > options_.max_row_bytes)
    return "row longer than " + std::to_string(options_.max_row_bytes) + " bytes as JSON";
  return std::nullopt;
}

}  // namespace sluice::ingest
