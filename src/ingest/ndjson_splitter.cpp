#include "sluice/ingest/ndjson_splitter.hpp"

#include <cstring>

namespace sluice::ingest {

void ndjson_splitter::emit(std::string_view text, const line_handler& on_line) {
  if (!text.empty() && text.back() == '\r')
    text.remove_suffix(1);
  ndjson_line line;
  line.number = next_number_++;
  if (partial_too_long_ || text.size() > max_line_bytes_) {
    line.too_long = true;
  } else {
    line.text = text;
  }
  on_line(line);
}

void ndjson_splitter::feed(std::string_view chunk, const line_handler& on_line) {
  while (!chunk.empty()) {
    const auto* nl = static_cast<const char*>(std::memchr(chunk.data(), '\n', chunk.size()));
    if (nl == nullptr) {
      // The line goes on in the next chunk. Past the bound its bytes are not kept; one more
      // byte than the bound is kept so that a trailing '\r' is not mistaken for content.
      if (!partial_too_long_) {
        if (partial_.size() + chunk.size() > max_line_bytes_ + 1) {
          partial_too_long_ = true;
          partial_.clear();
        } else {
          partial_.append(chunk);
        }
      }
      return;
    }
    const auto length = static_cast<std::size_t>(nl - chunk.data());
    if (partial_.empty() && !partial_too_long_) {
      emit(chunk.substr(0, length), on_line);
    } else {
      if (!partial_too_long_ && partial_.size() + length <= max_line_bytes_ + 1)
        partial_.append(chunk.substr(0, length));
      else
        partial_too_long_ = true;
      emit(partial_, on_line);
      partial_.clear();
      partial_too_long_ = false;
    }
    chunk.remove_prefix(length + 1);
  }
}

void ndjson_splitter::finish(const line_handler& on_line) {
  if (partial_.empty() && !partial_too_long_)
    return;
  emit(partial_, on_line);
  partial_.clear();
  partial_too_long_ = false;
}

}  // namespace sluice::ingest
