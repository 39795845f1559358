#pragma once

#include <cstddef>
#include <optional>

namespace sluice::push {

// Where durable pushes go (README, "How a push becomes durable"):
//   failing_over  PostgreSQL is unavailable (or its schema is not there yet): pushes are
//                 appended to the failover log. The mode sluice starts in.
//   draining      PostgreSQL answers again; the replayer drains the log, and pushes still go
//                 behind the records that wait there (per-partition order), throttled while the
//                 backlog is large.
//   handing_back  The replayer found the log empty while failover appends were still being
//                 written: new pushes wait (briefly) for those to be replayed.
//   direct        The log is empty: pushes go straight to PostgreSQL through the batcher.
enum class push_mode { failing_over, draining, handing_back, direct };
const char* to_string(push_mode m);

enum class push_event {
  db_unavailable,  // a round trip failed and PostgreSQL is not answering (probe failed too)
  db_available,    // the schema is ready, or a round trip committed
  log_drained,     // the replayer found the failover log empty
};
const char* to_string(push_event e);

struct mode_change {
  push_mode from;
  push_mode to;
};

// The push path's mode and every transition between modes, in one function. Pure: it performs
// no I/O and knows no clock, so its unit test drives every transition directly; push_service
// feeds it events and acts on the changes (logs, counts, wakes waiting pushes).
class failover_mode {
 public:
  push_mode mode() const { return mode_; }
  bool db_healthy() const { return mode_ != push_mode::failing_over; }

  // Applies `e`; `appends_in_flight` is the number of failover appends started and not yet
  // completed. Returns the change, or nothing when the mode stays.
  std::optional<mode_change> on(push_event e, std::size_t appends_in_flight);

 private:
  push_mode mode_ = push_mode::failing_over;
};

}  // namespace sluice::push
