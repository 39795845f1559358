#include "sluice/ingest/csv_value.hpp"

namespace sluice::ingest {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

bool is_canonical_json_number(std::string_view t) {
  std::size_t i = 0;
  const std::size_t n = t.size();
  if (i < n && t[i] == '-')
    ++i;
  if (i >= n)
    return false;
  if (t[i] == '0') {
    ++i;
  } else if (is_digit(t[i])) {
    while (i < n && is_digit(t[i]))
      ++i;
  } else {
    return false;
  }
  if (i < n && t[i] == '.') {
    ++i;
    if (i >= n || !is_digit(t[i]))
      return false;
    while (i < n && is_digit(t[i]))
      ++i;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < n && (t[i] == '+' || t[i] == '-'))
      ++i;
    if (i >= n || !is_digit(t[i]))
      return false;
    while (i < n && is_digit(t[i]))
      ++i;
  }
  return i == n;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // bytes copied as they are, appended in one go
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(text.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0xF]);
    }
  }
  out.append(text.substr(run));
  out.push_back('"');
}

void append_csv_value(std::string& out, const csv_field& field) {
  if (!field.quoted) {
    if (field.value.empty()) {
      out += "null";
      return;
    }
    if (is_canonical_json_number(field.value)) {
      out += field.value;
      return;
    }
  }
  append_json_string(out, field.value);
}

}  // namespace sluice::ingest
