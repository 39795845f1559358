#pragma once

#include <compare>
#include <cstdint>

#include "sluice/core/message.hpp"

namespace sluice::buffer {

// Where a record lives: its segment id and the byte offset of its frame header. Positions
// order like the log: by segment, then by offset.
struct record_position {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;

  friend auto operator<=>(const record_position&, const record_position&) = default;
};

// A record handed out for replay.
struct buffered_record {
  message msg;
  record_position position;
  std::uint32_t size = 0;  // framed bytes on disk
};

}  // namespace sluice::buffer
