#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>

#include "sluice/store/errc.hpp"
#include "sluice/store/pg_result.hpp"

namespace sluice::query {

// A text-format int8 column: nullopt for NULL or anything but a decimal integer.
inline std::optional<std::int64_t> to_int64(const std::optional<std::string>& text) {
  if (!text)
    return std::nullopt;
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc{} || ptr != text->data() + text->size())
    return std::nullopt;
  return v;
}

// An answer of a shape the statement cannot give: a bug, reported as a refused statement.
inline store::statement_status unexpected_answer(std::string what) {
  store::statement_status s;
  s.ec = store::errc::query_failed;
  s.message = std::move(what);
  return s;
}

}  // namespace sluice::query
