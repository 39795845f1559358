#pragma once

// Keeps the ack file (ack_cursor.hpp) of a log close to the ack cursor without a store per
// acknowledgement: the loop hands over the newest position, and at most one store is queued on
// the blocking thread at a time, which writes whatever is newest when it runs. The mutex guards
// only that hand-over; the file itself is used on the blocking thread (and in open/close, before
// it starts and after it is joined). Owned by log_core (buffer_log.cpp).

#include <filesystem>
#include <mutex>
#include <system_error>

#include "sluice/buffer/ack_cursor.hpp"
#include "sluice/buffer/record_position.hpp"

namespace sluice::buffer::detail {

class ack_store {
 public:
  std::error_code open(const std::filesystem::path& dir) { return file_.open(dir); }

  // Loop. True when the caller must queue store_newest() on the blocking thread.
  bool offer(const record_position& position);

  // Blocking thread.
  std::error_code store_newest();

  void close() { file_.close(); }

 private:
  ack_cursor_file file_;
  std::mutex mutex_;
  record_position newest_;
  bool queued_ = false;
};

}  // namespace sluice::buffer::detail
