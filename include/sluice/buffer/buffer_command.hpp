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
//   verify DIR  checks the header (and that its id matches the file name) and every record's
//               length, CRC and body; prints each file and, for a bad one, the offset of its
//               first bad record
//   import LOG_DIR FILE
//               appends the records of FILE that pass every check (a segment or failed file,
//               or a headerless part of one such as quarantine/<segment>.<offset>.bad) to the
//               log LOG_DIR as new records, skipping corrupt ranges the way replay does, and
//               prints how many were imported and how many were corrupt. It opens the log like
//               the daemon, so it refuses (exit 1) while a daemon holds it. FILE is left as it
//               is: importing twice appends twice (PostgreSQL keeps one copy of each id).
//
// DIR is a log directory (FILE_BUFFER_DIR/failover) or a parent of log directories
// (FILE_BUFFER_DIR). stat, dump and verify only read; they are meant for a stopped daemon (a
// live log's newest segment may end in a record being written). `args` starts with the command
// name. Returns the exit status: 0 fine, 1 a bad record or unreadable file was found (import:
// or the log could not be written), 2 usage error.
int run_buffer_command(std::span<const std::string> args, std::ostream& out, std::ostream& err);

}  // namespace sluice::buffer
