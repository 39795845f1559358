#pragma once

#include <iosfwd>
#include <span>
#include <string>

namespace sluice::buffer {

// Operator commands on buffer directories, without the daemon (`sluice buffer <args>`):
//
//   stat DIR    counts, bytes, segments, oldest/newest created time and per-queue totals of
//               the pending records (after the ack cursor), failed and quarantined files
//   dump DIR    one JSON object per line for every record: id, queue, partition, namespace,
//               task, traceId, transactionId, createdMs, payload (the stored JSON, inserted
//               as is), log, segment, offset, acked; failed records add reason and failedMs
//   verify DIR  checks the header and every record's length, CRC and body; prints each file
//               and, for a bad one, the offset of its first bad record
//
// DIR is a log directory (FILE_BUFFER_DIR/failover) or a parent of log directories
// (FILE_BUFFER_DIR). The commands only read; they are meant for a stopped daemon (a live log's
// newest segment may end in a record being written). `args` starts with the command name.
// Returns the exit status: 0 fine, 1 a bad record or unreadable file was found, 2 usage error.
int run_buffer_command(std::span<const std::string> args, std::ostream& out, std::ostream& err);

}  // namespace sluice::buffer
