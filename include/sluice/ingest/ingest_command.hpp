#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>

namespace sluice::ingest {

// `sluice ingest FILE|- [options]`: streams a CSV or NDJSON file (or stdin) into a running
// sluice's POST /api/v1/queues/{queue}/ingest with a chunked body, showing progress on stderr
// when it is a terminal, and prints a summary of the answer.
//
//   --url URL               the sluice to send to (default http://127.0.0.1:8080)
//   --queue NAME            required
//   --format ndjson|csv     default: csv for a *.csv file, otherwise ndjson
//   --partition-field NAME, --time-field NAME, --time-format rfc3339|epoch_s|epoch_ms,
//   --strict, --idempotency-key KEY
//                           the ingest's parameters (README: Streaming ingest)
//   --token TOKEN           sent as Authorization: Bearer (default: $SLUICE_TOKEN)
//   --quiet                 no progress display
//
// Exit status: 0 every row accepted, 1 some rows rejected or the upload failed, 2 usage error.
struct ingest_command_options {
  std::string file;  // "-" = stdin
  std::string url = "http://127.0.0.1:8080";
  std::string queue;
  std::string format;  // ndjson | csv
  std::optional<std::string> partition_field;
  std::optional<std::string> time_field;
  std::optional<std::string> time_format;
  bool strict = false;
  std::optional<std::string> idempotency_key;
  std::optional<std::string> token;
  bool quiet = false;
};

// Parses the arguments after "ingest"; returns an error message for the user, or none.
std::optional<std::string> parse_ingest_command(std::span<const std::string> args,
                                                ingest_command_options& out);

// The request target for the options: /api/v1/queues/<queue>/ingest?... (values encoded).
std::string ingest_target(const ingest_command_options& options, const std::string& base_path);

// "1.5 MB", "12 KB", "3 B": decimal units, as file sizes are shown.
std::string format_bytes(std::uint64_t n);
// "0:42", "1:02:03".
std::string format_duration(double seconds);

int run_ingest_command(std::span<const std::string> args, std::ostream& out, std::ostream& err);

}  // namespace sluice::ingest
