#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/delivery/dead_letter_store.hpp"
#include "sluice/store/pg_params.hpp"
#include "sluice/store/pg_result.hpp"

// Values in and out of the statements of the dead letters, the re-drive jobs and the attempt
// records: results arrive as text, times travel as binary timestamptz (exact microseconds,
// no time zone parsing).
namespace sluice::delivery::dlq_values {

inline constexpr store::oid bytea_type = 17;
inline constexpr store::oid float8_type = 701;
inline constexpr store::oid float8_array_type = 1022;

void add_time_us(store::pg_params& params, std::int64_t unix_us);
void add_time_ms(store::pg_params& params, std::int64_t unix_ms);
void add_optional_time_ms(store::pg_params& params, const std::optional<std::int64_t>& unix_ms);
void add_optional_text(store::pg_params& params, const std::optional<std::string>& text);

std::optional<std::int64_t> to_int64(const std::optional<std::string>& text);
// bytea in the text output's hex format ("\x4142") back to bytes.
std::optional<std::string> from_bytea_hex(const std::optional<std::string>& text);

// AMQP headers as the JSON object of strings both delivery tables keep; invalid UTF-8 is
// replaced rather than refused, and so is NUL (as_postgres_text).
std::string headers_json(const std::vector<std::pair<std::string, std::string>>& headers);
std::vector<std::pair<std::string, std::string>> headers_from_json(std::string_view text);

using store::status_of;
dlq_status status_of(std::error_code ec);

}  // namespace sluice::delivery::dlq_values
