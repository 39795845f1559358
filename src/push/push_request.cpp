#include "sluice/push/push_request.hpp"

#include <charconv>

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
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto byte = static_cast<unsigned char>(v[i]);
    // C0 controls and DEL; and C1 controls (U+0080..U+009F: 0xC2 0x80..0x9F in UTF-8, which
    // read_string guarantees).
    const bool c1 = byte == 0xC2 && i + 1 < v.size() &&
                    static_cast<unsigned char>(v[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(v[i + 1]) <= 0x9F;
    if (byte < 0x20 || byte == 0x7f || c1)
      return "must not contain control characters";
  }
  return std::nullopt;
}

// The fields an item may have; a bit each, so a repeated one is found without a list of the
// keys seen (a body of 40,000 keys in one item must not cost 40,000² comparisons).
constexpr std::string_view item_fields[] = {"queue",   "partition", "namespace",    "task",
                                            "traceId", "payload",   "transactionId"};

int item_field_index(std::string_view key) {
  for (std::size_t i = 0; i < std::size(item_fields); ++i) {
    if (item_fields[i] == key)
      return static_cast<int>(i);
  }
  return -1;
}

// Problems found so far; the answer lists the first max_listed_item_errors of them, so a huge
// body of bad items cannot make a huge answer.
struct error_sink {
  std::vector<item_error>& listed;
  std::size_t count = 0;

  void add(std::size_t index, std::string field, std::string message) {
    ++count;
    if (listed.size() < max_listed_item_errors)
      listed.push_back({index, std::move(field), std::move(message)});
  }
};

enum class item_parse { ok, malformed, too_deep };

// Parses one item; JSON syntax errors are `malformed` (the whole body is), a payload nested
// deeper than the scanner goes is `too_deep`; field-level problems go to `errors` and parsing
// goes on.
item_parse parse_item(json_scanner& s, std::size_t index, const push_limits& limits, message& out,
                      error_sink& errors) {
  if (!s.peek_is('{')) {
    std::string_view ignored;
    if (!s.skip_value(ignored))
      return s.too_deep() ? item_parse::too_deep : item_parse::malformed;
    errors.add(index, "", "an item must be a JSON object");
    return item_parse::ok;
  }
  s.skip_whitespace_and_expect('{');
  unsigned seen = 0;
  if (s.peek_is('}')) {
    s.skip_whitespace_and_expect('}');
  } else {
    for (;;) {
      std::string key;
      if (!s.read_key(key))
        return item_parse::malformed;
      const int field = item_field_index(key);
      if (field >= 0) {
        const unsigned bit = 1u << field;
        if (seen & bit)
          errors.add(index, key, "given twice");
        seen |= bit;
      }

      if (key == "payload") {
        std::string_view span;
        if (!s.skip_value(span))
          return s.too_deep() ? item_parse::too_deep : item_parse::malformed;
        if (span.size() > limits.max_payload_bytes) {
          errors.add(index, "payload",
                     "is " + std::to_string(span.size()) + " bytes; the limit is " +
                         std::to_string(limits.max_payload_bytes));
        } else {
          out.payload.assign(span);
        }
      } else if (field >= 0) {
        if (!s.peek_is('"')) {
          std::string_view ignored;
          if (!s.skip_value(ignored))
            return s.too_deep() ? item_parse::too_deep : item_parse::malformed;
          errors.add(index, key, "must be a string");
        } else {
          std::string value;
          if (!s.read_string(value))
            return item_parse::malformed;
          const bool is_id = key == "traceId" || key == "transactionId";
          if (auto problem = is_id ? check_id(value) : check_name(value)) {
            errors.add(index, key, *problem);
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
          return s.too_deep() ? item_parse::too_deep : item_parse::malformed;
        errors.add(index, key, "is not a known field");
      }
      const auto next = s.next_in('}');
      if (next == json_scanner::after::error)
        return item_parse::malformed;
      if (next == json_scanner::after::closed)
        break;
    }
  }
  if ((seen & (1u << item_field_index("queue"))) == 0)
    errors.add(index, "queue", "is required");
  if ((seen & (1u << item_field_index("payload"))) == 0)
    errors.add(index, "payload", "is required");
  if (out.partition.empty())
    out.partition = "Default";
  return item_parse::ok;
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
  error_sink errors{out.item_errors};
  bool items_seen = false, buffer_ms_seen = false, buffer_max_seen = false;

  auto malformed = [&]() {
    out.error_code = "invalid_json";
    out.error_message = "request body is not valid JSON: " + s.error();
    return out;
  };
  auto too_deep_request = [&]() {
    out.error_code = "invalid_request";
    out.error_message = s.error();
    return out;
  };
  auto too_deep = [&](std::size_t index) {
    out.error_code = "invalid_items";
    out.item_errors.assign(1, {index, "payload", s.error()});
    out.item_error_count = 1;
    out.error_message = "1 problem(s) in items; nothing was stored";
    return out;
  };
  if (body.empty()) {
    out.error_code = "invalid_json";
    out.error_message = "request body is empty; expected a JSON object with \"items\"";
    return out;
  }
  if (!s.peek_is('{')) {
    // Valid JSON of another shape is the wrong request, not broken JSON.
    std::string_view ignored;
    if (!s.skip_value(ignored) || !s.at_end())
      return malformed();
    out.error_code = "invalid_request";
    out.error_message = "request body must be a JSON object with \"items\"";
    return out;
  }
  s.skip_whitespace_and_expect('{');
  if (!s.peek_is('}')) {
    for (;;) {
      std::string key;
      if (!s.read_key(key))
        return malformed();
      // A repeated key would be silently merged (or the last one win): refused instead.
      bool* seen = key == "items"       ? &items_seen
                   : key == "bufferMs"  ? &buffer_ms_seen
                   : key == "bufferMax" ? &buffer_max_seen
                                        : nullptr;
      if (seen != nullptr && *seen)
        top_errors.push_back("\"" + key + "\" given twice");
      if (seen != nullptr)
        *seen = true;
      if (key == "items") {
        if (!s.peek_is('[')) {
          std::string_view ignored;
          if (!s.skip_value(ignored))
            return s.too_deep() ? too_deep_request() : malformed();
          top_errors.push_back("\"items\" must be an array");
        } else {
          have_items = true;
          s.skip_whitespace_and_expect('[');
          if (s.peek_is(']')) {
            s.skip_whitespace_and_expect(']');
          } else {
            for (std::size_t index = 0;; ++index) {
              if (index == limits.max_items) {
                top_errors.push_back("more than " + std::to_string(limits.max_items) + " items");
              }
              if (index >= limits.max_items) {
                // The request is refused anyway: the rest only has to be valid JSON.
                std::string_view ignored;
                if (!s.skip_value(ignored))
                  return s.too_deep() ? too_deep(index) : malformed();
              } else {
                message m;
                const item_parse parsed = parse_item(s, index, limits, m, errors);
                if (parsed == item_parse::malformed)
                  return malformed();
                if (parsed == item_parse::too_deep)
                  return too_deep(index);
                req.items.push_back(std::move(m));
              }
              const auto next = s.next_in(']');
              if (next == json_scanner::after::error)
                return malformed();
              if (next == json_scanner::after::closed)
                break;
            }
          }
        }
      } else if (key == "bufferMs" || key == "bufferMax") {
        const bool is_ms = key == "bufferMs";
        const std::int64_t lo = is_ms ? 0 : 1;
        const std::int64_t hi = is_ms ? max_buffer_ms : max_buffer_max;
        // Scanned as any value first: broken JSON is invalid_json, a value of the wrong kind
        // or range is invalid_request.
        std::string_view span;
        if (!s.skip_value(span))
          return s.too_deep() ? too_deep_request() : malformed();
        std::int64_t v = 0;
        const auto [end, ec] = std::from_chars(span.data(), span.data() + span.size(), v);
        if (ec != std::errc{} || end != span.data() + span.size() || v < lo || v > hi) {
          top_errors.push_back("\"" + key + "\" must be an integer from " + std::to_string(lo) +
                               " to " + std::to_string(hi));
        } else {
          (is_ms ? buffer_ms : buffer_max) = v;
        }
      } else {
        std::string_view ignored;
        if (!s.skip_value(ignored))
          return s.too_deep() ? too_deep_request() : malformed();
        top_errors.push_back("\"" + key + "\" is not a known field");
      }
      const auto next = s.next_in('}');
      if (next == json_scanner::after::error)
        return malformed();
      if (next == json_scanner::after::closed)
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
  if (errors.count != 0) {
    out.error_code = "invalid_items";
    out.item_error_count = errors.count;
    out.error_message = std::to_string(errors.count) + " problem(s) in items";
    if (errors.count > out.item_errors.size())
      out.error_message += " (the first " + std::to_string(out.item_errors.size()) + " listed)";
    out.error_message += "; nothing was stored";
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
