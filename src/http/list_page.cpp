#include "sluice/http/list_page.hpp"

#include <array>
#include <charconv>
#include <cstdint>

#include "sluice/core/stable_hash.hpp"

#include <nlohmann/json.hpp>

namespace sluice::http {
namespace {

constexpr unsigned char cursor_version = 1;
constexpr std::size_t trailer_bytes = 16;  // fingerprint hash + checksum
// A cursor is a position plus 17 bytes; bounding the text keeps a hostile query from making the
// decoder allocate for nothing (positions are names and ids, far below this).
constexpr std::size_t max_cursor_chars = 4096;

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t left = bytes.size() - i;
  if (left == 1) {
    const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
  } else if (left == 2) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
  }
  return out;
}

int sextet(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

// Strict: no padding, no other alphabet, and the unused low bits of the last character must be
// zero, so each byte string has exactly one text (an edit of those bits is not ignored).
std::optional<std::string> unbase64url(std::string_view text) {
  if (text.size() % 4 == 1)
    return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = sextet(c);
    if (v < 0)
      return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
    return std::nullopt;
  return out;
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out += static_cast<char>((v >> shift) & 0xff);
}

std::uint64_t get_u64(std::string_view bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i)
    v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

// Distinct seeds keep the fingerprint's hash and the checksum from being the same function.
constexpr std::uint64_t fingerprint_seed = 0x736c756963652d66ULL;  // "sluice-f"
constexpr std::uint64_t checksum_seed = 0x736c756963652d63ULL;     // "sluice-c"

}  // namespace

const char* to_string(cursor_error e) {
  switch (e) {
    case cursor_error::malformed:
      return "malformed";
    case cursor_error::tampered:
      return "tampered";
    case cursor_error::other_filters:
      return "other_filters";
  }
  return "unknown";
}

std::string encode_cursor(std::string_view position, std::string_view filter_fingerprint) {
  std::string raw;
  raw.reserve(1 + position.size() + trailer_bytes);
  raw += static_cast<char>(cursor_version);
  raw += position;
  put_u64(raw, stable_hash64(filter_fingerprint, fingerprint_seed));
  put_u64(raw, stable_hash64(raw, checksum_seed));
  return base64url(raw);
}

std::variant<std::string, cursor_error> decode_cursor(std::string_view text,
                                                      std::string_view expected_fingerprint) {
  if (text.empty() || text.size() > max_cursor_chars)
    return cursor_error::malformed;
  const auto raw = unbase64url(text);
  if (!raw || raw->size() < 1 + trailer_bytes)
    return cursor_error::malformed;
  const std::string_view bytes = *raw;
  const std::string_view covered = bytes.substr(0, bytes.size() - 8);
  if (get_u64(bytes.substr(bytes.size() - 8)) != stable_hash64(covered, checksum_seed))
    return cursor_error::tampered;
  // Checked after the checksum: a version byte flipped by an edit is tampering, an intact
  // cursor of another version is one this build cannot read.
  if (static_cast<unsigned char>(bytes[0]) != cursor_version)
    return cursor_error::malformed;
  if (get_u64(bytes.substr(bytes.size() - trailer_bytes, 8)) !=
      stable_hash64(expected_fingerprint, fingerprint_seed))
    return cursor_error::other_filters;
  return std::string(bytes.substr(1, bytes.size() - 1 - trailer_bytes));
}

response cursor_error_response(cursor_error e) {
  switch (e) {
    case cursor_error::other_filters:
      return error_response(400, "cursor_filter_mismatch",
                            "cursor was made for other filters: repeat the request with the "
                            "filters of the page it came from, or start again without cursor");
    case cursor_error::tampered:
      return error_response(400, "invalid_cursor",
                            "cursor was altered or cut: pass the \"next\" value back unchanged");
    case cursor_error::malformed:
      break;
  }
  return error_response(400, "invalid_cursor",
                        "cursor is not one this server made: pass the \"next\" value back "
                        "unchanged");
}

std::variant<std::size_t, std::string> parse_limit(std::optional<std::string_view> value,
                                                   std::size_t default_limit,
                                                   std::size_t max_limit) {
  if (!value || value->empty())
    return default_limit;
  const std::string rule = "limit must be an integer from 1 to " + std::to_string(max_limit);
  std::size_t n = 0;
  const char* end = value->data() + value->size();
  const auto [ptr, ec] = std::from_chars(value->data(), end, n);
  if (ec != std::errc{} || ptr != end || n < 1 || n > max_limit)
    return rule;
  return n;
}

std::variant<page_request, response> read_page_request(const request& req,
                                                       std::string_view filter_fingerprint,
                                                       std::size_t default_limit,
                                                       std::size_t max_limit) {
  page_request out;
  const auto limit_text = req.query_param("limit");
  auto limit = parse_limit(
      limit_text ? std::optional<std::string_view>(*limit_text) : std::optional<std::string_view>(),
      default_limit, max_limit);
  if (auto* why = std::get_if<std::string>(&limit))
    return error_response(400, "invalid_limit", *why);
  out.limit = std::get<std::size_t>(limit);
  if (const auto cursor = req.query_param("cursor"); cursor) {
    auto position = decode_cursor(*cursor, filter_fingerprint);
    if (const auto* e = std::get_if<cursor_error>(&position))
      return cursor_error_response(*e);
    out.position = std::move(std::get<std::string>(position));
  }
  return out;
}

std::string list_body(const std::vector<std::string>& items, std::size_t limit,
                      const std::optional<std::string>& next_cursor,
                      const std::optional<page_numbers>& pages) {
  std::size_t size = 64;
  for (const auto& item : items)
    size += item.size() + 1;
  std::string out;
  out.reserve(size);
  out += "{\"items\":[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ',';
    out += items[i];
  }
  out += "],\"limit\":";
  out += std::to_string(limit);
  out += ",\"next\":";
  out += next_cursor ? nlohmann::json(*next_cursor).dump() : std::string("null");
  if (pages) {
    out += ",\"page\":";
    out += std::to_string(pages->page);
    out += ",\"total\":";
    out += std::to_string(pages->total);
  }
  out += '}';
  return out;
}

}  // namespace sluice::http
