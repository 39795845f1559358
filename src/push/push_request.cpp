#include "sluice/push/push_request.hpp"

#include "sluice/push/json_scanner.hpp"

namespace sluice::push {
namespace {

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-' || c == ':';
}

std::optional<std::string> check_name(const std::string& v) {
  if (v.empty() || v.size() > max_name_bytes) {
    return "must be 1 to " + std::to_string(max_name_bytes) + " bytes";
  }
  for (char c : v) {
    if (!valid_name_char(c))
      return "may contain only letters, digits and . _ : -";
  }
  return std::nullopt;
}

std::optional<std::string> check_id(const std::string& v) {
  if (v.empty() || v.size() > max_id_bytes)
    return "must be 1 to " + std::to_string(max_id_bytes) + " bytes";
  for (char c : v) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return "must not contain control characters";
  }
  return std::nullopt;
}

// Parses one item object; structural JSON errors return false (the whole body is malformed),
// field-level problems are collected in `errors` and parsing goes on.
bool parse_item(json_scanner& s, std::size_t index, const push_limits& limits, message& out,
                std::vector<item_error>& errors) {
  if (!s.skip_whitespace_and_expect('{'))
    return false;
  bool have_queue = false;
  bool have_payload = false;
  std::vector<std::string> seen;
  auto add_error = [&](std::string field, std::string msg) {
    errors.push_back({index, std::move(field), std::move(msg)});
  };
  if (s.peek_is('}')) {
    s.skip_whitespace_and_expect('}');
  } else {
    for (;;) {
      std::string key;
      if (!s.read_string(key) || !s.skip_whitespace_and_expect(':'))
        return false;
      bool duplicate = false;
      for (const auto& k : seen)
        duplicate = duplicate || k == key;
      if (duplicate)
        add_error(key, "given twice");
      seen.push_back(key);

      if (key == "payload") {
        std::string_view span;
        if (!s.skip_value(span))
          return false;
        have_payload = true;
        if (span.size() > limits.max_payload_bytes) {
          add_error("payload", "is " + std::to_string(span.size()) + " bytes; the limit is " +
                                   std::to_string(limits.max_payload_bytes));
        } else {
          out.payload.assign(span);
        }
      } else if (key == "queue" || key == "partition" || key == "namespace" || key == "task" ||
                 key == "traceId" || key == "transactionId") {
        have_queue = have_queue || key == "queue";  // present; validity is reported separately
        if (!s.peek_is('"')) {
          std::string_view ignored;
          if (!s.skip_value(ignored))
            return false;
          add_error(key, "must be a string");
        } else {
          std::string value;
          if (!s.read_string(value))
            return false;
          const bool is_id = key == "traceId" || key == "transactionId";
          if (auto problem = is_id ? check_id(value) : check_name(value)) {
            add_error(key, *problem);
          } else if (key == "queue") {
            out.queue = std::move(value);
          } else if (key == "partition") {
            out.partition = std::move(value);
          } else if (key == "namespace") {
            out.namespace_ = std::move(value);
          } else if (key == "task") {
            out.task = std::move(value);
          } else if (key == "traceId") {
            out.trace_id = std::move(value);
          } else {
            out.transaction_id = std::move(value);
          }
        }
      } else {
        std::string_view ignored;
        if (!s.skip_value(ignored))
          return false;
        add_error(key, "is not a known field");
      }
      if (s.peek_is(',')) {
        s.skip_whitespace_and_expect(',');
        continue;
      }
      if (!s.skip_whitespace_and_expect('}'))
        return false;
      break;
    }
  }
  if (!have_queue)
    add_error("queue", "is required");
  if (!have_payload)
    add_error("payload", "is required");
  if (out.partition.empty())
    out.partition = "Default";
  return true;
}

}  // namespace

parse_outcome parse_push_request(std::string_view body, const push_limits& limits) {
  parse_outcome out;
  json_scanner s(body);
  push_request req;
  bool have_items = false;
  std::optional<std::int64_t> buffer_ms;
  std::optional<std::int64_t> buffer_max;
  std::vector<std::string> top_errors;

  auto malformed = [&]() {
    out.error_code = "invalid_json";
    out.error_message = "request body is not valid JSON: " + s.error();
    return out;
  };
  if (!s.skip_whitespace_and_expect('{')) {
    out.error_code = "invalid_json";
    out.error_message = body.empty()
                            ? "request body is empty; expected a JSON object with \"items\""
                            : "request body must be a JSON object: " + s.error();
    return out;
  }
  if (!s.peek_is('}')) {
    for (;;) {
      std::string key;
      if (!s.read_string(key) || !s.skip_whitespace_and_expect(':'))
        return malformed();
      if (key == "items") {
        if (!s.peek_is('[')) {
          std::string_view ignored;
          if (!s.skip_value(ignored))
            return malformed();
          top_errors.push_back("\"items\" must be an array");
        } else {
          have_items = true;
          s.skip_whitespace_and_expect('[');
          if (s.peek_is(']')) {
            s.skip_whitespace_and_expect(']');
          } else {
            for (;;) {
              if (req.items.size() == limits.max_items) {
                top_errors.push_back("more than " + std::to_string(limits.max_items) + " items");
              }
              message m;
              if (!parse_item(s, req.items.size(), limits, m, out.item_errors))
                return malformed();
              if (req.items.size() <= limits.max_items)
                req.items.push_back(std::move(m));
              if (s.peek_is(',')) {
                s.skip_whitespace_and_expect(',');
                continue;
              }
              if (!s.skip_whitespace_and_expect(']'))
                return malformed();
              break;
            }
          }
        }
      } else if (key == "bufferMs" || key == "bufferMax") {
        long long v = 0;
        const bool is_ms = key == "bufferMs";
        const std::int64_t lo = is_ms ? 0 : 1;
        const std::int64_t hi = is_ms ? max_buffer_ms : max_buffer_max;
        if (!s.read_integer(v) || v < lo || v > hi) {
          out.error_code = "invalid_request";
          out.error_message = "\"" + key + "\" must be an integer from " + std::to_string(lo) +
                              " to " + std::to_string(hi);
          return out;
        }
        (is_ms ? buffer_ms : buffer_max) = v;
      } else {
        std::string_view ignored;
        if (!s.skip_value(ignored))
          return malformed();
        top_errors.push_back("\"" + key + "\" is not a known field");
      }
      if (s.peek_is(',')) {
        s.skip_whitespace_and_expect(',');
        continue;
      }
      if (!s.skip_whitespace_and_expect('}'))
        return malformed();
      break;
    }
  } else {
    s.skip_whitespace_and_expect('}');
  }
  if (!s.at_end()) {
    s.fail("unexpected data after the JSON object");
    return malformed();
  }
  if (!have_items && top_errors.empty())
    top_errors.push_back("\"items\" is required");
  if (have_items && req.items.empty() && top_errors.empty())
    top_errors.push_back("\"items\" is empty");
  if (!top_errors.empty()) {
    out.error_code = "invalid_request";
    for (const auto& e : top_errors)
      out.error_message += (out.error_message.empty() ? "" : "; ") + e;
    return out;
  }
  if (!out.item_errors.empty()) {
    out.error_code = "invalid_items";
    out.error_message =
        std::to_string(out.item_errors.size()) + " problem(s) in items; nothing was stored";
    return out;
  }
  if (buffer_ms || buffer_max) {
    req.qos0 = qos0_options{};
    if (buffer_ms)
      req.qos0->buffer_ms = *buffer_ms;
    if (buffer_max)
      req.qos0->buffer_max = *buffer_max;
  }
  out.request = std::move(req);
  return out;
}

}  // namespace sluice::push
