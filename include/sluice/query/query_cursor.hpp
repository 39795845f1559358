#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "sluice/core/uuid.hpp"
#include "sluice/http/list_page.hpp"

namespace sluice::query {

// The query API's cursors: the common list cursor (http/list_page.hpp: version, position,
// filter fingerprint hash, checksum) whose position is signed, because a keyset position is
// fed to PostgreSQL and carries the walk's total and page number, which the server must be
// able to trust. The position is
//
//   byte 0          kind: 1 = a messages walk, 2 = a partitions walk, 3 = the queue list
//   bytes 1..n      the kind's fields (below), big-endian
//   16 bytes        HMAC-SHA256(key, fingerprint || 0x00 || bytes 0..n), first 16 bytes
//
// messages:   event time (8, signed Unix µs), id (16), total (8), flags (1: bit 0 = total is
//             an estimate), page (4)
// partitions: total (8), flags (1), page (4), the last partition name (the rest)
// queues:     the last queue name (the rest)
//
// The key is shared by every instance of a database (query/cursor_key.hpp), so a cursor made
// by one instance works on another and after a restart. The MAC covers the whole fingerprint,
// not only its 64-bit hash: a cursor of other filters cannot pass even on a hash collision.
// An intact cursor of other filters is told apart (cursor_filter_mismatch) from an edited one
// (invalid_cursor) by the outer layer's fingerprint hash.

struct page_state {
  std::uint64_t total = 0;
  bool total_is_estimate = false;
  std::uint32_t page = 1;  // the page the cursor leads to
};

struct message_position {
  std::int64_t event_us = 0;
  uuid id;
  page_state state;
};

struct partition_position {
  std::string last;
  page_state state;
};

std::string encode_message_cursor(const message_position& p, std::string_view fingerprint,
                                  std::string_view key);
std::variant<message_position, http::cursor_error> decode_message_cursor(
    std::string_view text, std::string_view fingerprint, std::string_view key);

std::string encode_partition_cursor(const partition_position& p, std::string_view fingerprint,
                                    std::string_view key);
std::variant<partition_position, http::cursor_error> decode_partition_cursor(
    std::string_view text, std::string_view fingerprint, std::string_view key);

// The queue list's cursor: the last queue name of the page.
std::string encode_queue_cursor(std::string_view last, std::string_view fingerprint,
                                std::string_view key);
std::variant<std::string, http::cursor_error> decode_queue_cursor(std::string_view text,
                                                                  std::string_view fingerprint,
                                                                  std::string_view key);

}  // namespace sluice::query
