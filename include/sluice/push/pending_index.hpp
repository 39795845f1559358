#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sluice/core/async_event.hpp"
#include "sluice/core/message.hpp"
#include "sluice/core/uuid.hpp"

namespace sluice::push {

// Where a pending message is: in a PostgreSQL round trip of the push batcher, or in one of the
// file buffer logs.
enum class pending_log { db, failover, qos0 };

// How far a pending message got. An entry is `writing` from the moment its append is started
// until the append completes: a retry that finds it then must not be answered yet, because the
// append may still fail and its answer would name nothing (issue #8, hole 1).
// `stored` entries are what a waiter needs after the original committed: PostgreSQL has the
// message now, but a retry that waited for it (or arrives soon after, while PostgreSQL may
// already be unreachable) must still be answered with its id. They expire (recent_ttl) and
// are bounded (max_recent).
// `verifying` entries are `written` ones whose record the log may have set aside as corrupt:
// a retry that finds one waits until the log has been read again (reindex), which makes each
// `written` again or drops it.
enum class pending_state { writing, written, stored, verifying };

struct pending_entry {
  uuid id;
  pending_log log;
  pending_state state;
};

// (queue, transactionId) → the message that sits in a file buffer log and is not yet in
// PostgreSQL. PostgreSQL's unique index answers duplicates of stored messages; this answers them
// for buffered ones, so a retried push is a `duplicate` even before the replay. Bounded by the
// buffers' size bounds, since every entry is a record being written or on disk.
class pending_index {
 public:
  using clock = std::chrono::steady_clock;
  explicit pending_index(std::chrono::milliseconds recent_ttl = std::chrono::seconds(30),
                         std::size_t max_recent = 100'000)
      : recent_ttl_(recent_ttl), max_recent_(max_recent) {}

  std::optional<pending_entry> find(std::string_view queue, std::string_view transaction_id) const;

  // A new entry for `m` in `state`; false (and nothing changes) when the key is taken or `m`
  // has no transactionId.
  bool add(const message& m, pending_log log, pending_state state);
  // `m` failed over from a PostgreSQL round trip to the failover log: still `writing`.
  void move_to(const message& m, pending_log log);
  // The append of `m` completed: its entry (if it is still m's) becomes `written`.
  void mark_written(const message& m);
  // Only if the entry is this message's.
  void remove(const message& m);
  // `m` is in PostgreSQL now, as `stored_id` (m's own id, or the row it duplicated): its entry,
  // if it is still m's, becomes `stored` until it expires.
  void committed(const message& m, const uuid& stored_id);
  // Re-checking `log` after it set aside records it could not read: every `written` entry of
  // it becomes `verifying`; verified() makes those whose record is still there `written`
  // again, end_verify() drops the rest, or, when the log could not be read through, makes them
  // all `written` again (nothing is dropped on a guess).
  void begin_verify(pending_log log);
  void verified(const message& m);
  void end_verify(pending_log log, bool read_through);

  std::size_t size() const { return ids_.size(); }  // `stored` ones included

  // Notified whenever an entry stops being `writing` (written or removed) or disappears: what
  // a duplicate of a `writing` or not-yet-stored entry waits for.
  async_event& settled() { return settled_; }

 private:
  static std::string key(std::string_view queue, std::string_view transaction_id);
  void expire_recent();
  std::unordered_map<std::string, pending_entry> ids_;
  // Keys of `stored` entries, oldest first, with when they became stored and under which id
  // (a key may have been taken again by a newer message since).
  struct recent_key {
    clock::time_point at;
    std::string key;
    uuid id;
  };
  std::deque<recent_key> recent_;
  std::chrono::milliseconds recent_ttl_;
  std::size_t max_recent_;
  async_event settled_;
};

}  // namespace sluice::push
