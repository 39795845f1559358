#include "sluice/query/query_cursor.hpp"

#include <array>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace sluice::query {
namespace {

constexpr std::size_t mac_bytes = 16;
constexpr std::size_t state_bytes = 8 + 1 + 4;

enum class kind : unsigned char { messages = 1, partitions = 2, queues = 3 };

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8)
    out += static_cast<char>((v >> shift) & 0xff);
}

std::uint64_t get_be(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)]);
  return v;
}

std::string mac(std::string_view key, std::string_view fingerprint, std::string_view body) {
  std::string message;
  message.reserve(fingerprint.size() + 1 + body.size());
  message += fingerprint;
  message += '\0';
  message += body;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(),
       &length);
  return std::string(reinterpret_cast<const char*>(digest.data()), mac_bytes);
}

std::string seal(kind k, std::string body, std::string_view fingerprint, std::string_view key) {
  body.insert(body.begin(), static_cast<char>(k));
  body += mac(key, fingerprint, body);
  return http::encode_cursor(body, fingerprint);
}

// The kind's fields, when `text` is an intact cursor of this kind for this fingerprint.
std::variant<std::string, http::cursor_error> open(kind k, std::string_view text,
                                                   std::string_view fingerprint,
                                                   std::string_view key) {
  auto outer = http::decode_cursor(text, fingerprint);
  if (auto* e = std::get_if<http::cursor_error>(&outer))
    return *e;
  const std::string& position = std::get<std::string>(outer);
  if (position.size() < 1 + mac_bytes)
    return http::cursor_error::malformed;
  const std::string_view body = std::string_view(position).substr(0, position.size() - mac_bytes);
  const std::string expected = mac(key, fingerprint, body);
  // Constant time: the MAC is the one secret-dependent comparison a client can probe.
  if (CRYPTO_memcmp(expected.data(), position.data() + body.size(), mac_bytes) != 0)
    return http::cursor_error::tampered;
  if (static_cast<kind>(body[0]) != k)
    return http::cursor_error::malformed;
  return std::string(body.substr(1));
}

void put_state(std::string& out, const page_state& s) {
  put_be(out, s.total, 8);
  out += static_cast<char>(s.total_is_estimate ? 1 : 0);
  put_be(out, s.page, 4);
}

std::optional<page_state> get_state(std::string_view in, std::size_t at) {
  page_state s;
  s.total = get_be(in, at, 8);
  const auto flags = static_cast<unsigned char>(in[at + 8]);
  if (flags > 1)
    return std::nullopt;
  s.total_is_estimate = flags == 1;
  s.page = static_cast<std::uint32_t>(get_be(in, at + 9, 4));
  if (s.page < 2)
    return std::nullopt;
  return s;
}

}  // namespace

std::string encode_message_cursor(const message_position& p, std::string_view fingerprint,
                                  std::string_view key) {
  std::string body;
  put_be(body, static_cast<std::uint64_t>(p.event_us), 8);
  body.append(reinterpret_cast<const char*>(p.id.bytes.data()), p.id.bytes.size());
  put_state(body, p.state);
  return seal(kind::messages, std::move(body), fingerprint, key);
}

std::variant<message_position, http::cursor_error> decode_message_cursor(
    std::string_view text, std::string_view fingerprint, std::string_view key) {
  auto opened = open(kind::messages, text, fingerprint, key);
  if (auto* e = std::get_if<http::cursor_error>(&opened))
    return *e;
  const std::string& body = std::get<std::string>(opened);
  if (body.size() != 8 + 16 + state_bytes)
    return http::cursor_error::malformed;
  message_position p;
  p.event_us = static_cast<std::int64_t>(get_be(body, 0, 8));
  for (std::size_t i = 0; i < 16; ++i)
    p.id.bytes[i] = static_cast<std::uint8_t>(body[8 + i]);
  const auto state = get_state(body, 24);
  if (!state)
    return http::cursor_error::malformed;
  p.state = *state;
  return p;
}

std::string encode_partition_cursor(const partition_position& p, std::string_view fingerprint,
                                    std::string_view key) {
  std::string body;
  put_state(body, p.state);
  body += p.last;
  return seal(kind::partitions, std::move(body), fingerprint, key);
}

std::variant<partition_position, http::cursor_error> decode_partition_cursor(
    std::string_view text, std::string_view fingerprint, std::string_view key) {
  auto opened = open(kind::partitions, text, fingerprint, key);
  if (auto* e = std::get_if<http::cursor_error>(&opened))
    return *e;
  const std::string& body = std::get<std::string>(opened);
  if (body.size() < state_bytes)
    return http::cursor_error::malformed;
  const auto state = get_state(body, 0);
  if (!state)
    return http::cursor_error::malformed;
  return partition_position{body.substr(state_bytes), *state};
}

std::string encode_queue_cursor(std::string_view last, std::string_view fingerprint,
                                std::string_view key) {
  return seal(kind::queues, std::string(last), fingerprint, key);
}

std::variant<std::string, http::cursor_error> decode_queue_cursor(std::string_view text,
                                                                  std::string_view fingerprint,
                                                                  std::string_view key) {
  return open(kind::queues, text, fingerprint, key);
}

}  // namespace sluice::query
