#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::ingest {

struct csv_field {
  std::string value;
  bool quoted = false;  // the field was written in double quotes ("" inside stands for ")
};

// One record (row) of a CSV body. `line` is the 1-based line it starts on; a quoted field
// may hold line ends, so the next record can start several lines later. `error` is set when
// the record is malformed or longer than the bound; its fields are then incomplete.
struct csv_record {
  std::size_t line = 0;
  std::vector<csv_field> fields;
  std::string error;
};

// RFC 4180 CSV as a state machine over chunks of any size: comma-separated fields, fields in
// double quotes may hold commas, line ends and "" (one quote); records end with LF or CRLF; a
// UTF-8 byte order mark at the very start is skipped; empty lines are no records. Lenient
// where RFC 4180 is silent: a quote inside an unquoted field is an ordinary character, and a
// lone CR ends a record like LF does.
//
// Memory is bounded: a record past `max_record_bytes` is reported with an error and its bytes
// are dropped as they arrive, while the state machine goes on, so the next record is found
// even when the long one was a quoted field with line ends in it.
class csv_parser {
 public:
  using record_handler = std::function<void(const csv_record&)>;

  // A record may have at most `max_fields` fields: one with more is reported, and no memory is
  // taken for the rest (without it a line of a million commas held a million fields).
  static constexpr std::size_t default_max_fields = 4096;
  explicit csv_parser(std::size_t max_record_bytes, std::size_t max_fields = default_max_fields)
      : max_record_bytes_(max_record_bytes), max_fields_(max_fields) {}

  void feed(std::string_view chunk, const record_handler& on_record);
  // The body ended: hands out the last record if it had no line end (a quoted field still
  // open is an error).
  void finish(const record_handler& on_record);

  enum class state {
    bom,              // at the very start: maybe a byte order mark
    record_start,     // before the first field of a record (an empty line is no record)
    field_start,      // after a comma
    unquoted,         // in a field without quotes
    quoted,           // in a quoted field
    quote_in_quoted,  // a quote in a quoted field: "" or the field's end
    after_quoted,     // garbage after a closing quote, up to the next comma or line end
    after_cr,         // a record ended with CR: an LF right after it belongs to it
  };
  state current_state() const { return state_; }

 private:
  void step(char c, const record_handler& on_record);
  void add_char(char c);
  void end_field();
  void end_record(const record_handler& on_record);
  void fail(const char* why);

  // Counts one byte of the record against max_record_bytes_; false (and the record's error
  // set) once past it.
  bool count_byte();

  std::size_t max_record_bytes_;
  std::size_t max_fields_;
  state state_ = state::bom;
  std::size_t bom_matched_ = 0;
  std::size_t line_ = 1;  // the line the parser is on
  char previous_ = 0;     // the byte before the current one
  std::size_t record_bytes_ = 0;
  bool in_record_ = false;
  std::size_t field_count_ = 0;  // fields of record_ in use (the vector is reused)
  csv_record record_;
};

}  // namespace sluice::ingest
