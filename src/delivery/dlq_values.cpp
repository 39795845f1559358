#include "sluice/delivery/dlq_values.hpp"

#include <charconv>

#include "sluice/store/pg_binary.hpp"

#include <nlohmann/json.hpp>

namespace sluice::delivery::dlq_values {
namespace {

// 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp epoch, in Unix microseconds.
constexpr std::int64_t postgres_epoch_unix_us = 946'684'800'000'000;

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

}  // namespace

void add_time_us(store::pg_params& params, std::int64_t unix_us) {
  std::string bytes;
  store::pg_binary::put_int64(bytes, unix_us - postgres_epoch_unix_us);
  params.add_binary(bytes, store::pg_type::timestamptz);
}

void add_time_ms(store::pg_params& params, std::int64_t unix_ms) {
  add_time_us(params, unix_ms * 1000);
}

void add_optional_time_ms(store::pg_params& params, const std::optional<std::int64_t>& unix_ms) {
  if (unix_ms) {
    add_time_ms(params, *unix_ms);
  } else {
    params.add_null(store::pg_type::timestamptz);
  }
}

void add_optional_text(store::pg_params& params, const std::optional<std::string>& text) {
  if (text) {
    params.add_text_bytes(*text);
  } else {
    params.add_null(store::pg_type::text);
  }
}

std::optional<std::int64_t> to_int64(const std::optional<std::string>& text) {
  if (!text)
    return std::nullopt;
  std::int64_t out = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, out);
  if (ec != std::errc{} || ptr != end)
    return std::nullopt;
  return out;
}

std::optional<std::string> from_bytea_hex(const std::optional<std::string>& text) {
  if (!text || text->size() < 2 || (*text)[0] != '\\' || (*text)[1] != 'x' || text->size() % 2 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(text->size() / 2 - 1);
  for (std::size_t i = 2; i < text->size(); i += 2) {
    const int hi = hex_value((*text)[i]);
    const int lo = hex_value((*text)[i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::string headers_json(const std::vector<std::pair<std::string, std::string>>& headers) {
  nlohmann::json out = nlohmann::json::object();
  // jsonb refuses "\u0000" as text refuses NUL.
  for (const auto& [name, value] : headers)
    out[as_postgres_text(name)] = as_postgres_text(value);
  return out.dump();
}

std::vector<std::pair<std::string, std::string>> headers_from_json(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object())
    return out;
  for (const auto& [name, value] : j.items()) {
    if (value.is_string())
      out.emplace_back(name, value.get<std::string>());
  }
  return out;
}

dlq_status status_of(std::error_code ec) {
  dlq_status s;
  s.ec = ec;
  if (ec)
    s.message = ec.message();
  return s;
}

}  // namespace sluice::delivery::dlq_values
