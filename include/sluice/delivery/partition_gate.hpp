#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sluice::delivery {

// The bookkeeping of an ordered subscription ("ordering":"partition", README "Ordering"), with
// no I/O: the consumer asks it what to do with each message and tells it how each step ended.
// Messages are tickets (the consumer keeps the deliveries). Per partition, one step at a time,
// in arrival order:
//
//   free, arrive(t)                          -> run t now (deliver, or park_behind if blocked)
//   busy, arrive(t)                          -> t waits in the partition's line (FIFO)
//   a released message (x-sluice-released)   -> deliver, even when blocked: it is the head
//   a blocked partition's other messages     -> park_behind (a row due never, in PostgreSQL)
//   finish(done)        the step acked its message (delivered, dead-lettered, parked behind)
//                       -> the line's next one runs
//   finish(released_none) a released head succeeded or was dead-lettered and release_next()
//                       found nothing behind it -> unblocked, the next one runs
//   finish(parked)      the delivery failed and was parked with a due time -> blocked, the
//                       line's next one runs (and is parked behind)
//   finish(abandoned)   the message went back to RabbitMQ unacked (PostgreSQL down, stopping)
//                       -> the whole line goes back too, in order (abandon them), so no later
//                       message overtakes it; free again
//
// A released head that succeeds while others wait behind it (release_next() found one) finishes
// with done: the partition stays blocked until the last one comes back. Blocked partitions are
// rows, so the consumer loads them at start (retry_store::blocked_partitions).
class partition_gate {
 public:
  using ticket = std::uint64_t;
  enum class step { deliver, park_behind };
  enum class result { done, released_none, parked, abandoned };

  struct start {
    ticket t;
    step what;
  };
  struct after_finish {
    std::optional<start> next;
    std::vector<ticket> abandon;  // in arrival order
  };

  explicit partition_gate(std::set<std::string> blocked = {});

  // nullopt: it waits its turn (finish() of the partition's current step hands it out).
  std::optional<step> arrive(const std::string& partition, ticket t, bool released);
  after_finish finish(const std::string& partition, result r);

  bool blocked(const std::string& partition) const { return blocked_.contains(partition); }
  bool busy(const std::string& partition) const { return lines_.contains(partition); }
  std::size_t waiting(const std::string& partition) const;
  std::size_t blocked_count() const { return blocked_.size(); }
  // Transitions taken, for logs and tests: arrivals queued, unblocks, blocks, abandons.
  struct counters {
    std::uint64_t queued = 0;
    std::uint64_t blocked = 0;
    std::uint64_t unblocked = 0;
    std::uint64_t abandoned = 0;
  };
  const counters& stats() const { return stats_; }

 private:
  struct waiting_ticket {
    ticket t;
    bool released;
  };
  step step_for(const std::string& partition, bool released) const;

  std::set<std::string> blocked_;
  // Busy partitions: the tickets waiting behind the running step.
  std::map<std::string, std::deque<waiting_ticket>> lines_;
  counters stats_;
};

}  // namespace sluice::delivery
