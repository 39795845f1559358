#include "sluice/amqp/url.hpp"

#include <charconv>
#include <limits>

#include "sluice/core/percent_decode.hpp"

namespace sluice::amqp {
namespace {

template <class T>
std::optional<T> parse_unsigned(std::string_view text, T max) {
  std::uint64_t value = 0;
  if (text.empty()) {
    return std::nullopt;
  }
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size() || value > max) {
    return std::nullopt;
  }
  return static_cast<T>(value);
}

bool starts_with_icase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const char a =
        text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] - 'A' + 'a') : text[i];
    if (a != prefix[i]) {
      return false;
    }
  }
  return true;
}

std::optional<url> fail(std::string* error, std::string message) {
  if (error != nullptr) {
    *error = std::move(message);
  }
  return std::nullopt;
}

}  // namespace

std::string url::to_string() const {
  // Appended piece by piece: g++ 12 at -O2 reports a false -Wrestrict for `":" + to_string(..)`.
  std::string out = tls ? "amqps://" : "amqp://";
  out.append(user).append("@");
  if (host.find(':') != std::string::npos)
    out.append("[").append(host).append("]");
  else
    out.append(host);
  out.append(":").append(std::to_string(port)).append("/");
  if (vhost != "/")
    out.append(vhost);
  return out;
}

std::optional<url> url::parse(std::string_view text, std::string* error) {
  const bool tls = starts_with_icase(text, "amqps://");
  if (!tls && !starts_with_icase(text, "amqp://")) {
    return fail(error, "must start with amqp:// or amqps://");
  }
  std::string_view rest = text.substr(tls ? 8 : 7);

  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  bool has_path = false;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    has_path = true;
    rest = rest.substr(0, slash);
  }

  url out;
  out.tls = tls;
  if (tls)
    out.port = 5671;  // RabbitMQ's TLS listener (IANA amqps)
  std::string_view hostport = rest;
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = rest.substr(0, at);
    hostport = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    const auto user = percent_decode(userinfo.substr(0, colon));
    if (!user) {
      return fail(error, "bad percent-encoding in user");
    }
    if (user->empty()) {
      return fail(error, "empty user name before '@'");
    }
    out.user = *user;
    if (colon != std::string_view::npos) {
      const auto password = percent_decode(userinfo.substr(colon + 1));
      if (!password) {
        return fail(error, "bad percent-encoding in password");
      }
      out.password = *password;
    } else {
      out.password.clear();
    }
  }

  std::string_view host = hostport;
  std::string_view port;
  bool has_port = false;
  if (!hostport.empty() && hostport.front() == '[') {
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) {
      return fail(error, "unterminated '[' in IPv6 host");
    }
    host = hostport.substr(1, close - 1);
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return fail(error, "unexpected text after IPv6 host");
      }
      port = after.substr(1);
      has_port = true;
    }
  } else if (const auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
    has_port = true;
  }
  if (!host.empty()) {
    const auto decoded = percent_decode(host);
    if (!decoded) {
      return fail(error, "bad percent-encoding in host");
    }
    out.host = *decoded;
  }
  if (has_port) {
    const auto value = parse_unsigned<std::uint16_t>(port, 65535);
    if (!value || *value == 0) {
      return fail(error, "port must be a number from 1 to 65535, got '" + std::string(port) + "'");
    }
    out.port = *value;
  }

  if (has_path && !path.empty()) {
    if (path.find('/') != std::string_view::npos) {
      return fail(error, "vhost must not contain '/'; encode it as %2f");
    }
    const auto vhost = percent_decode(path);
    if (!vhost) {
      return fail(error, "bad percent-encoding in vhost");
    }
    out.vhost = *vhost;
  }

  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const auto eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    const std::string bad =
        "query parameter " + std::string(key) + " has a bad value '" + std::string(value) + "'";
    if (key == "heartbeat") {
      const auto v = parse_unsigned<std::uint16_t>(value, 65535);
      if (!v) {
        return fail(error, bad);
      }
      out.heartbeat = std::chrono::seconds(*v);
    } else if (key == "connection_timeout") {
      const auto v =
          parse_unsigned<std::uint32_t>(value, std::numeric_limits<std::uint32_t>::max());
      if (!v) {
        return fail(error, bad);
      }
      out.connection_timeout = std::chrono::milliseconds(*v);
    } else if (key == "frame_max") {
      const auto v =
          parse_unsigned<std::uint32_t>(value, std::numeric_limits<std::uint32_t>::max());
      if (!v || (*v != 0 && *v < 4096)) {
        return fail(error, bad + " (0 or at least 4096)");
      }
      out.frame_max = *v;
    } else if (key == "channel_max") {
      const auto v = parse_unsigned<std::uint16_t>(value, 65535);
      if (!v) {
        return fail(error, bad);
      }
      out.channel_max = *v;
    } else {
      return fail(error, "unknown query parameter '" + std::string(key) +
                             "' (known: heartbeat, connection_timeout, frame_max, channel_max)");
    }
  }
  return out;
}

}  // namespace sluice::amqp
