#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::push {

// A validating, non-allocating JSON tokenizer over one buffer, for the push body. It exists so
// payloads can be passed through as the exact bytes the client sent: `skip_value` validates a
// value of any shape (RFC 8259 grammar, UTF-8, nesting depth) and returns its span, without
// building a DOM or re-serializing anything.
class json_scanner {
 public:
  explicit json_scanner(std::string_view text, std::size_t max_depth = 64)
      : text_(text), max_depth_(max_depth) {}

  // Each call returns false and sets error() on malformed input; the scanner is then done.
  bool skip_whitespace_and_expect(char c);  // consumes c
  bool peek_is(char c);                     // after whitespace, without consuming
  bool read_string(std::string& out);       // decodes escapes into UTF-8
  bool read_key(std::string& out);          // an object member's name and its ':'
  bool read_integer(long long& out);
  bool skip_value(std::string_view& span);  // span of the whole value, exact bytes
  bool at_end();                            // only whitespace left
  // After a member or element of a container closed by `close`: `more` (its comma consumed),
  // `closed` (`close` consumed) or `error` (neither follows).
  enum class after { more, closed, error };
  after next_in(char close);

  std::size_t offset() const { return pos_; }
  const std::string& error() const { return error_; }
  // The last failure was the nesting limit: valid JSON, perhaps, but too deep to scan.
  bool too_deep() const { return too_deep_; }
  bool fail(std::string message);

 private:
  bool skip_string();
  bool skip_number();
  bool skip_literal(std::string_view word);
  bool skip_value_at(std::size_t depth);
  bool decode_string(std::string* out);
  void skip_ws();

  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t max_depth_;
  std::string error_;
  bool too_deep_ = false;
};

}  // namespace sluice::push
