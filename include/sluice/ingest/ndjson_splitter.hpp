#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace sluice::ingest {

// One line of an NDJSON body: its 1-based number and its text without the line end ("\n" or
// "\r\n"). A line longer than the splitter's bound is reported with `too_long` and no text:
// its bytes are dropped as they arrive, so memory stays bounded whatever the input.
struct ndjson_line {
  std::size_t number = 0;
  std::string_view text;
  bool too_long = false;
};

// Splits a body that arrives in chunks of any size into lines. A line inside one chunk is
// handed out as a view into that chunk; only a line cut by a chunk boundary is copied.
class ndjson_splitter {
 public:
  using line_handler = std::function<void(const ndjson_line&)>;

  explicit ndjson_splitter(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  void feed(std::string_view chunk, const line_handler& on_line);
  // The body ended: hands out a last line that had no line end (if any).
  void finish(const line_handler& on_line);

  std::size_t lines() const { return next_number_ - 1; }

 private:
  void emit(std::string_view text, const line_handler& on_line);

  std::size_t max_line_bytes_;
  std::string partial_;
  bool partial_too_long_ = false;
  std::size_t next_number_ = 1;
};

}  // namespace sluice::ingest
