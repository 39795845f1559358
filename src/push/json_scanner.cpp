#include "sluice/push/json_scanner.hpp"

#include <charconv>

#include "sluice/core/percent_decode.hpp"
#include "sluice/core/utf8.hpp"

namespace sluice::push {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

}  // namespace

bool json_scanner::fail(std::string message) {
  if (error_.empty())
    error_ = std::move(message) + " at byte " + std::to_string(pos_);
  pos_ = text_.size();
  return false;
}

void json_scanner::skip_ws() {
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    ++pos_;
  }
}

bool json_scanner::skip_whitespace_and_expect(char c) {
  skip_ws();
  if (pos_ >= text_.size() || text_[pos_] != c) {
    return fail(std::string("expected '") + c + "'");
  }
  ++pos_;
  return true;
}

bool json_scanner::peek_is(char c) {
  skip_ws();
  return pos_ < text_.size() && text_[pos_] == c;
}

bool json_scanner::at_end() {
  skip_ws();
  return pos_ == text_.size();
}

bool json_scanner::read_string(std::string& out) {
  skip_ws();
  out.clear();
  return decode_string(&out);
}

bool json_scanner::skip_string() {
  return decode_string(nullptr);
}

bool json_scanner::decode_string(std::string* out) {
  if (pos_ >= text_.size() || text_[pos_] != '"')
    return fail("expected a string");
  ++pos_;
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c == '"') {
      ++pos_;
      return true;
    }
    if (static_cast<unsigned char>(c) < 0x20)
      return fail("control character in string");
    if (c == '\\') {
      if (pos_ + 1 >= text_.size())
        break;
      const char e = text_[pos_ + 1];
      pos_ += 2;
      char simple = 0;
      switch (e) {
        case '"':
          simple = '"';
          break;
        case '\\':
          simple = '\\';
          break;
        case '/':
          simple = '/';
          break;
        case 'b':
          simple = '\b';
          break;
        case 'f':
          simple = '\f';
          break;
        case 'n':
          simple = '\n';
          break;
        case 'r':
          simple = '\r';
          break;
        case 't':
          simple = '\t';
          break;
        case 'u':
          break;
        default:
          return fail("invalid escape in string");
      }
      if (simple != 0) {
        if (out != nullptr)
          out->push_back(simple);
        continue;
      }
      auto read_hex4 = [&](std::uint32_t& v) {
        if (pos_ + 4 > text_.size())
          return false;
        v = 0;
        for (int i = 0; i < 4; ++i) {
          const int h = hex_digit_value(text_[pos_ + static_cast<std::size_t>(i)]);
          if (h < 0)
            return false;
          v = v << 4 | static_cast<std::uint32_t>(h);
        }
        pos_ += 4;
        return true;
      };
      std::uint32_t cp = 0;
      if (!read_hex4(cp))
        return fail("invalid \\u escape");
      if (cp >= 0xd800 && cp <= 0xdbff) {
        std::uint32_t low = 0;
        if (pos_ + 2 > text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') {
          return fail("unpaired surrogate in \\u escape");
        }
        pos_ += 2;
        if (!read_hex4(low) || low < 0xdc00 || low > 0xdfff)
          return fail("unpaired surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        return fail("unpaired surrogate in \\u escape");
      }
      if (out != nullptr)
        append_utf8(*out, cp);
      continue;
    }
    const std::size_t n = utf8_sequence_length(text_.substr(pos_));
    if (n == 0)
      return fail("invalid UTF-8 in string");
    if (out != nullptr)
      out->append(text_.data() + pos_, n);
    pos_ += n;
  }
  return fail("unterminated string");
}

bool json_scanner::skip_number() {
  const std::size_t start = pos_;
  if (pos_ < text_.size() && text_[pos_] == '-')
    ++pos_;
  if (pos_ >= text_.size())
    return fail("invalid number");
  if (text_[pos_] == '0') {
    ++pos_;
  } else if (is_digit(text_[pos_])) {
    while (pos_ < text_.size() && is_digit(text_[pos_]))
      ++pos_;
  } else {
    pos_ = start;
    return fail("invalid number");
  }
  if (pos_ < text_.size() && text_[pos_] == '.') {
    ++pos_;
    if (pos_ >= text_.size() || !is_digit(text_[pos_]))
      return fail("invalid number");
    while (pos_ < text_.size() && is_digit(text_[pos_]))
      ++pos_;
  }
  if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-'))
      ++pos_;
    if (pos_ >= text_.size() || !is_digit(text_[pos_]))
      return fail("invalid number");
    while (pos_ < text_.size() && is_digit(text_[pos_]))
      ++pos_;
  }
  return true;
}

bool json_scanner::read_integer(long long& out) {
  skip_ws();
  const std::size_t start = pos_;
  if (!skip_number())
    return false;
  const auto [ptr, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, out);
  if (ec != std::errc{} || ptr != text_.data() + pos_) {
    pos_ = start;
    return fail("expected an integer");
  }
  return true;
}

bool json_scanner::read_key(std::string& out) {
  return read_string(out) && skip_whitespace_and_expect(':');
}

json_scanner::after json_scanner::next_in(char close) {
  if (peek_is(',')) {
    ++pos_;
    return after::more;
  }
  return skip_whitespace_and_expect(close) ? after::closed : after::error;
}

bool json_scanner::skip_literal(std::string_view word) {
  if (text_.substr(pos_, word.size()) != word)
    return fail("invalid literal");
  pos_ += word.size();
  return true;
}

bool json_scanner::skip_value(std::string_view& span) {
  skip_ws();
  const std::size_t start = pos_;
  if (!skip_value_at(0))
    return false;
  span = text_.substr(start, pos_ - start);
  return true;
}

bool json_scanner::skip_value_at(std::size_t depth) {
  skip_ws();
  if (pos_ >= text_.size())
    return fail("expected a value");
  // depth counts the containers already open around this value: at most max_depth_ levels.
  if (depth >= max_depth_ && (text_[pos_] == '[' || text_[pos_] == '{')) {
    too_deep_ = true;
    return fail("nesting deeper than " + std::to_string(max_depth_) + " levels");
  }
  switch (text_[pos_]) {
    case '"':
      return skip_string();
    case 't':
      return skip_literal("true");
    case 'f':
      return skip_literal("false");
    case 'n':
      return skip_literal("null");
    case '{': {
      ++pos_;
      if (peek_is('}')) {
        ++pos_;
        return true;
      }
      for (;;) {
        skip_ws();
        if (!skip_string() || !skip_whitespace_and_expect(':') || !skip_value_at(depth + 1))
          return false;
        if (peek_is(',')) {
          ++pos_;
          continue;
        }
        return skip_whitespace_and_expect('}');
      }
    }
    case '[': {
      ++pos_;
      if (peek_is(']')) {
        ++pos_;
        return true;
      }
      for (;;) {
        if (!skip_value_at(depth + 1))
          return false;
        if (peek_is(',')) {
          ++pos_;
          continue;
        }
        return skip_whitespace_and_expect(']');
      }
    }
    default:
      return skip_number();
  }
}

}  // namespace sluice::push
