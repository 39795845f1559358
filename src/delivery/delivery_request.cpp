#include "sluice/delivery/delivery_request.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <type_traits>
#include <variant>

#include "sluice/core/ascii_lower.hpp"
#include "sluice/delivery/webhook_signature.hpp"

namespace sluice::delivery {
namespace {

const std::string* string_header(const amqp::field_table& t, std::string_view key) {
  const auto* v = t.find(key);
  return v ? v->get_if<std::string>() : nullptr;
}

std::optional<std::int64_t> integer_header(const amqp::field_table& t, std::string_view key) {
  const auto* v = t.find(key);
  if (!v)
    return std::nullopt;
  std::optional<std::int64_t> out;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          out = static_cast<std::int64_t>(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          // Another client may have written it as text.
          std::int64_t n = 0;
          if (x.empty() || x.size() > 18)
            return;
          for (const char c : x) {
            if (c < '0' || c > '9')
              return;
            n = n * 10 + (c - '0');
          }
          out = n;
        }
      },
      v->value);
  return out;
}

bool is_hex(std::string_view s) {
  for (const char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  }
  return true;
}

bool is_hex_any_case(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

bool all_zero(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

// The headers sluice sets itself, lower case: a subscription header of the same name is left out.
bool is_reserved(std::string_view name) {
  static constexpr std::array<std::string_view, 7> reserved = {
      "content-type",     "idempotency-key", "x-sluice-queue",     "x-sluice-partition",
      "x-sluice-attempt", "traceparent",     "x-sluice-batch-size"};
  const std::string lower = ascii_lower(name);
  if (lower.starts_with("webhook-"))
    return true;
  for (const auto r : reserved) {
    if (lower == r)
      return true;
  }
  return false;
}

void add_own_headers(const subscription& s, http::client_request& r) {
  for (const auto& [name, value] : s.headers) {
    if (!is_reserved(name))
      r.headers.emplace_back(name, value);
  }
}

void sign(const signing_keys& keys, std::string_view id, std::int64_t unix_seconds,
          http::client_request& r) {
  if (keys.keys.empty())
    return;
  const std::string ts = std::to_string(unix_seconds);
  r.headers.emplace_back("webhook-id", std::string(id));
  r.headers.emplace_back("webhook-timestamp", ts);
  r.headers.emplace_back("webhook-signature", webhook_signature(keys.keys, id, ts, r.body));
}

}  // namespace

std::optional<incoming_message> decode_delivery(const amqp::delivery& d, std::string_view queue,
                                                std::string_view subscription, std::string* why) {
  const auto fail = [&](const char* reason) -> std::optional<incoming_message> {
    if (why)
      *why = reason;
    return std::nullopt;
  };
  if (!d.properties.message_id)
    return fail("no message id");
  const auto id = uuid::parse(*d.properties.message_id);
  if (!id)
    return fail("the message id is not a uuid");
  incoming_message out;
  parked_message& m = out.message;
  m.queue = std::string(queue);
  m.subscription = std::string(subscription);
  m.message_id = *id;
  m.payload = d.body;
  // The acceptance time: the id's own timestamp (uuidv7, ms), which is finer than the AMQP
  // timestamp property (seconds).
  m.created_ms = id->unix_ms();
  if (m.created_ms <= 0 && d.properties.timestamp)
    m.created_ms = static_cast<std::int64_t>(*d.properties.timestamp) * 1000;
  if (d.properties.headers) {
    const amqp::field_table& h = *d.properties.headers;
    for (const auto& e : h) {
      if (e.key.starts_with("x-sluice-"))
        continue;
      if (const auto* text = e.value.get_if<std::string>())
        m.headers.emplace_back(e.key, *text);
    }
    if (const auto* p = string_header(h, "partition"))
      m.partition = *p;
    if (const auto* t = string_header(h, "traceId"))
      out.trace_id = *t;
    if (const auto a = integer_header(h, attempt_header); a && *a >= 1)
      m.attempt = static_cast<std::uint32_t>(std::min<std::int64_t>(*a, 1'000'000));
    if (const auto f = integer_header(h, first_attempt_header); f && *f > 0)
      m.first_attempt_ms = *f;
    if (const auto* r = h.find(released_header)) {
      if (const auto* b = r->get_if<bool>())
        out.released = *b;
      else
        out.released = !r->is_void();
    }
  }
  return out;
}

std::optional<std::string> traceparent_for(std::string_view t, std::uint64_t random) {
  if (t.size() == 55 && t[2] == '-' && t[35] == '-' && t[52] == '-') {
    const auto version = t.substr(0, 2);
    const auto trace = t.substr(3, 32);
    const auto span = t.substr(36, 16);
    const auto flags = t.substr(53, 2);
    if (is_hex(version) && version != "ff" && is_hex(trace) && !all_zero(trace) && is_hex(span) &&
        !all_zero(span) && is_hex(flags))
      return std::string(t);
    return std::nullopt;
  }
  if (t.size() == 32 && is_hex_any_case(t) && !all_zero(t)) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string span(16, '0');
    // A zero span id is invalid: force one bit.
    if (random == 0)
      random = 1;
    for (int i = 15; i >= 0; --i) {
      span[static_cast<std::size_t>(i)] = digits[random & 0xf];
      random >>= 4;
    }
    return "00-" + ascii_lower(t) + "-" + span + "-01";
  }
  return std::nullopt;
}

signing_keys signing_keys_of(const subscription& s, std::size_t* bad) {
  signing_keys out;
  std::size_t failed = 0;
  for (const auto& secret : s.secrets) {
    if (auto key = decode_webhook_secret(secret))
      out.keys.push_back(std::move(*key));
    else
      ++failed;
  }
  if (bad)
    *bad = failed;
  return out;
}

http::client_request compose_delivery(const subscription& s, const signing_keys& keys,
                                      const incoming_message& in, std::int64_t unix_seconds,
                                      std::uint64_t random, const target_address* to) {
  const parked_message& m = in.message;
  const target_address& address = to ? *to : s.address;
  http::client_request r;
  r.method = s.method.empty() ? "POST" : s.method;
  r.host = address.host;
  r.port = address.port;
  r.target = address.target;
  const std::string id = m.message_id.to_string();
  r.headers.reserve(8 + s.headers.size());
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Idempotency-Key", id);
  r.headers.emplace_back("X-Sluice-Queue", m.queue);
  r.headers.emplace_back("X-Sluice-Partition", m.partition);
  r.headers.emplace_back("X-Sluice-Attempt", std::to_string(m.attempt));
  if (auto tp = traceparent_for(in.trace_id, random))
    r.headers.emplace_back("traceparent", std::move(*tp));
  add_own_headers(s, r);
  r.body = m.payload;
  sign(keys, id, unix_seconds, r);
  return r;
}

http::client_request compose_batch(const subscription& s, const signing_keys& keys,
                                   std::string body, std::size_t items, std::string_view batch_id,
                                   std::int64_t unix_seconds, const target_address* route_to) {
  http::client_request r;
  const target_address& to =
      route_to ? *route_to : (s.batch_address ? *s.batch_address : s.address);
  r.method = "POST";
  r.host = to.host;
  r.port = to.port;
  r.target = to.target;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("X-Sluice-Queue", s.queue);
  r.headers.emplace_back("X-Sluice-Batch-Size", std::to_string(items));
  add_own_headers(s, r);
  r.body = std::move(body);
  sign(keys, batch_id, unix_seconds, r);
  return r;
}

}  // namespace sluice::delivery
