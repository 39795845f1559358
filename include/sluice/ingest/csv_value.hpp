#pragma once

#include <string>
#include <string_view>

#include "sluice/ingest/csv_parser.hpp"

namespace sluice::ingest {

// Exactly the RFC 8259 number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. So 0001,
// +1, .5, 1., 0x1F, NaN and " 1" are not numbers.
bool is_canonical_json_number(std::string_view text);

// Appends `text` (valid UTF-8) as a JSON string, quotes included.
void append_json_string(std::string& out, std::string_view text);

// Appends a CSV field as the JSON value it becomes: an unquoted field that is a canonical JSON
// number as that number, an empty unquoted field as null, anything else (quoted fields, 0001,
// true) as a string.
void append_csv_value(std::string& out, const csv_field& field);

}  // namespace sluice::ingest
