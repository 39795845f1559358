#include <string>

#include "sluice/ingest/csv_parser.hpp"

#include <gtest/gtest.h>

namespace sluice::ingest {
namespace {

// The parser promises bounded memory: a record past max_record_bytes is reported with an error
// and its bytes dropped. Separators are bytes of the record too: a line of nothing but commas
// (or of empty quoted fields) must hit the bound, not grow one csv_field (≈40 bytes) per byte.
TEST(CsvParserReview, ALineOfCommasIsBoundedByMaxRecordBytes) {
  constexpr std::size_t max = 1024;
  csv_parser p(max);
  std::size_t records = 0;
  std::size_t fields = 0;
  std::string error;
  const csv_parser::record_handler on = [&](const csv_record& r) {
    ++records;
    fields = r.fields.size();
    error = r.error;
  };
  const std::string chunk(64 * 1024, ',');
  for (int i = 0; i < 16; ++i)  // 1 MiB of commas: one record
    p.feed(chunk, on);
  p.feed("\n", on);
  p.finish(on);
  ASSERT_EQ(records, 1u);
  EXPECT_FALSE(error.empty()) << "a 1 MiB record passed a 1 KiB bound without an error";
  EXPECT_LE(fields, max + 1) << "the record held one field per comma: memory grows with the line";
}

TEST(CsvParserReview, ALineOfEmptyQuotedFieldsIsBoundedByMaxRecordBytes) {
  constexpr std::size_t max = 1024;
  csv_parser p(max);
  std::size_t fields = 0;
  std::string error;
  const csv_parser::record_handler on = [&](const csv_record& r) {
    fields = r.fields.size();
    error = r.error;
  };
  std::string chunk;
  for (int i = 0; i < 16 * 1024; ++i)
    chunk += "\"\",";
  for (int i = 0; i < 8; ++i)
    p.feed(chunk, on);
  p.feed("\"\"\n", on);
  p.finish(on);
  EXPECT_FALSE(error.empty());
  EXPECT_LE(fields, max + 1);
}

}  // namespace
}  // namespace sluice::ingest
