#include "sluice/ingest/csv_parser.hpp"

namespace sluice::ingest {
namespace {

constexpr unsigned char bom[] = {0xEF, 0xBB, 0xBF};

}  // namespace

void csv_parser::fail(const char* why) {
  if (record_.error.empty())
    record_.error = why;
}

bool csv_parser::count_byte() {
  if (++record_bytes_ <= max_record_bytes_)
    return true;
  if (record_.error.empty())
    record_.error = "row longer than " + std::to_string(max_record_bytes_) + " bytes";
  return false;
}

void csv_parser::add_char(char c) {
  if (count_byte())
    record_.fields[field_count_ - 1].value.push_back(c);
}

// Opens the next field (the record's first when none is open).
void csv_parser::end_field() {
  if (!in_record_) {
    in_record_ = true;
    record_.line = line_;
    record_.error.clear();
    record_bytes_ = 0;
    field_count_ = 0;
  } else if (!count_byte()) {
    // The comma counts against the bound like value bytes (so do quotes): counted only in
    // values, a line of commas or of "" fields grew a field per byte, ~40 bytes of memory
    // each, without bound. Past it the record is only skipped to its end: its open field
    // takes the rest.
    return;
  }
  if (field_count_ == max_fields_) {
    if (record_.error.empty())
      record_.error = "more than " + std::to_string(max_fields_) + " fields";
    return;
  }
  if (field_count_ == record_.fields.size())
    record_.fields.emplace_back();
  auto& f = record_.fields[field_count_++];
  f.value.clear();
  f.quoted = false;
}

void csv_parser::end_record(const record_handler& on_record) {
  if (in_record_) {
    record_.fields.resize(field_count_);
    on_record(record_);
    in_record_ = false;
  }
}

void csv_parser::step(char c, const record_handler& on_record) {
  switch (state_) {
    case state::bom:
      if (static_cast<unsigned char>(c) == bom[bom_matched_]) {
        if (++bom_matched_ == sizeof bom)
          state_ = state::record_start;
        return;
      }
      state_ = state::record_start;
      if (bom_matched_ > 0) {
        // A partial mark was content after all: replay it as ordinary bytes.
        const std::size_t n = bom_matched_;
        bom_matched_ = 0;
        for (std::size_t i = 0; i < n; ++i)
          step(static_cast<char>(bom[i]), on_record);
      }
      step(c, on_record);
      return;
    case state::after_cr:
      state_ = state::record_start;
      if (c == '\n')
        return;
      step(c, on_record);
      return;
    case state::record_start:
      if (c == '\n' || c == '\r') {
        ++line_;
        state_ = c == '\r' ? state::after_cr : state::record_start;
        return;
      }
      end_field();
      state_ = state::field_start;
      step(c, on_record);
      return;
    case state::field_start:
      if (c == '"') {
        record_.fields[field_count_ - 1].quoted = true;
        count_byte();
        state_ = state::quoted;
        return;
      }
      state_ = state::unquoted;
      step(c, on_record);
      return;
    case state::unquoted:
    case state::after_quoted:
      if (c == ',') {
        end_field();
        state_ = state::field_start;
      } else if (c == '\n' || c == '\r') {
        end_record(on_record);
        ++line_;
        state_ = c == '\r' ? state::after_cr : state::record_start;
      } else if (state_ == state::unquoted) {
        add_char(c);
      }
      return;
    case state::quoted:
      if (c == '"') {
        count_byte();
        state_ = state::quote_in_quoted;
        return;
      }
      // A CRLF inside quotes is one line end.
      if (c == '\r' || (c == '\n' && previous_ != '\r'))
        ++line_;
      add_char(c);
      return;
    case state::quote_in_quoted:
      if (c == '"') {
        add_char('"');
        state_ = state::quoted;
        return;
      }
      if (c == ',' || c == '\n' || c == '\r') {
        state_ = state::unquoted;
        step(c, on_record);
        return;
      }
      fail("unexpected character after a closing quote");
      state_ = state::after_quoted;
      return;
  }
}

void csv_parser::feed(std::string_view chunk, const record_handler& on_record) {
  for (char c : chunk) {
    step(c, on_record);
    previous_ = c;
  }
}

void csv_parser::finish(const record_handler& on_record) {
  if (state_ == state::quoted)
    fail("a quoted field is not closed");
  if (state_ == state::bom && bom_matched_ > 0) {
    // Input shorter than a mark: its bytes are content.
    state_ = state::record_start;
    const std::size_t n = bom_matched_;
    bom_matched_ = 0;
    for (std::size_t i = 0; i < n; ++i)
      step(static_cast<char>(bom[i]), on_record);
  }
  end_record(on_record);
  state_ = state::record_start;
}

}  // namespace sluice::ingest
