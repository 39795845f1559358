#include "sluice/buffer/buffer_command.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <vector>

#include "sluice/buffer/ack_cursor.hpp"
#include "sluice/buffer/buffer_log.hpp"
#include "sluice/buffer/errc.hpp"
#include "sluice/buffer/log_layout.hpp"
#include "sluice/buffer/segment_reader.hpp"

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

namespace sluice::buffer {
namespace {

namespace fs = std::filesystem;

constexpr const char* usage =
    "usage: sluice buffer stat|dump|verify DIR\n"
    "       sluice buffer import LOG_DIR FILE\n"
    "  DIR is a buffer log directory (e.g. FILE_BUFFER_DIR/failover) or FILE_BUFFER_DIR itself\n"
    "  import appends the valid records of FILE (a segment, failed file or part of one, e.g.\n"
    "  from LOG_DIR/quarantine/) to the log LOG_DIR as new records; the daemon must be stopped\n";

std::string format_time(std::int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  const int millis = static_cast<int>(ms - static_cast<std::int64_t>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

// One record met while walking a log: where it is and what it holds.
struct visited_record {
  const fs::path& file;
  std::uint64_t offset;
  std::uint32_t size;
  const message& msg;
  bool acked;
  const failed_message* failed;  // set for records in failed/
};

struct file_problem {
  fs::path file;
  std::uint64_t offset;
  std::error_code error;
};

struct walk_totals {
  std::uint64_t files = 0;
  std::uint64_t file_bytes = 0;
  std::vector<file_problem> problems;
};

using record_visitor = std::function<void(const visited_record&)>;
using file_visitor = std::function<void(const fs::path&, std::uint64_t records, bool ok)>;

// Reads one segment or failed file to its end or its first bad record.
void walk_file(const fs::path& file, file_kind kind, const std::optional<record_position>& ack,
               const record_visitor& on_record, const file_visitor& on_file, walk_totals& totals) {
  segment_reader reader;
  std::error_code ec = reader.open(file);
  const std::string_view suffix =
      kind == file_kind::log_segment ? layout::segment_suffix : layout::failed_suffix;
  // As at start-up: a header that names another file is not this file's.
  if (!ec && (reader.header().kind != kind ||
              layout::parse_file_name(file.filename().string(), suffix) != reader.header().id)) {
    ec = errc::bad_segment_header;
    reader.close();
  }
  ++totals.files;
  std::error_code size_ec;
  totals.file_bytes += fs::file_size(file, size_ec);
  std::uint64_t records = 0;
  if (!ec) {
    const std::uint64_t segment = reader.header().id;
    record_view rec;
    while (reader.next(rec, ec)) {
      const bool acked =
          kind == file_kind::log_segment && ack && record_position{segment, rec.offset} < *ack;
      if (rec.kind == record_kind::message && kind == file_kind::log_segment) {
        auto m = decode_message_body(rec.body, ec);
        if (!m)
          break;
        on_record({file, rec.offset, rec.size, *m, acked, nullptr});
      } else if (rec.kind == record_kind::failed_message && kind == file_kind::failed_records) {
        auto f = decode_failed_body(rec.body, ec);
        if (!f)
          break;
        on_record({file, rec.offset, rec.size, f->msg, false, &*f});
      } else {
        ec = errc::malformed_record;
        break;
      }
      ++records;
    }
  }
  if (ec)
    totals.problems.push_back({file, reader.is_open() ? reader.offset() : 0, ec});
  if (on_file)
    on_file(file, records, !ec);
}

void walk_log(const fs::path& dir, const record_visitor& on_record, const file_visitor& on_file,
              walk_totals& totals) {
  const auto ack = load_ack_cursor(dir);
  std::error_code ec;
  for (const auto& [id, path] : layout::list_files(dir, layout::segment_suffix, ec)) {
    walk_file(path, file_kind::log_segment, ack, on_record, on_file, totals);
  }
  if (ec)
    totals.problems.push_back({dir, 0, ec});
  for (const auto& [id, path] :
       layout::list_files(dir / layout::failed_dir, layout::failed_suffix, ec)) {
    walk_file(path, file_kind::failed_records, std::nullopt, on_record, on_file, totals);
  }
}

std::vector<fs::path> find_logs(const fs::path& dir) {
  if (layout::is_log_dir(dir))
    return {dir};
  std::vector<fs::path> logs;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && layout::is_log_dir(it->path()))
      logs.push_back(it->path());
  }
  std::sort(logs.begin(), logs.end());
  return logs;
}

std::uint64_t count_quarantined(const fs::path& dir) {
  std::uint64_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir / layout::quarantine_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n;
}

void print_problem(std::ostream& out, const file_problem& p) {
  out << "bad " << p.file.string() << " offset=" << p.offset << " error=" << p.error.message()
      << '\n';
}

int stat_log(const fs::path& dir, std::ostream& out) {
  struct queue_totals {
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
  };
  std::uint64_t pending = 0, pending_bytes = 0, acked = 0, failed = 0, failed_files = 0;
  std::optional<std::int64_t> oldest, newest;
  std::map<std::string, queue_totals> queues;
  walk_totals totals;
  walk_log(
      dir,
      [&](const visited_record& r) {
        if (r.failed != nullptr) {
          ++failed;
          return;
        }
        if (r.acked) {
          ++acked;
          return;
        }
        ++pending;
        pending_bytes += r.size;
        auto& q = queues[r.msg.queue];
        ++q.records;
        q.bytes += r.size;
        if (!oldest || r.msg.created_ms < *oldest)
          oldest = r.msg.created_ms;
        if (!newest || r.msg.created_ms > *newest)
          newest = r.msg.created_ms;
      },
      [&](const fs::path& file, std::uint64_t, bool) {
        if (file.filename().string().ends_with(layout::failed_suffix))
          ++failed_files;
      },
      totals);
  out << "log " << dir.string() << '\n';
  out << "  segments: " << totals.files - failed_files << '\n';
  out << "  bytes on disk: " << totals.file_bytes << '\n';
  out << "  pending records: " << pending << " (" << pending_bytes << " bytes)\n";
  out << "  acknowledged, not yet deleted: " << acked << '\n';
  out << "  oldest: " << (oldest ? format_time(*oldest) : "-") << '\n';
  out << "  newest: " << (newest ? format_time(*newest) : "-") << '\n';
  for (const auto& [name, q] : queues) {
    out << "  queue " << name << ": " << q.records << " records, " << q.bytes << " bytes\n";
  }
  out << "  failed records: " << failed << " in " << failed_files << " files\n";
  out << "  quarantined files: " << count_quarantined(dir) << '\n';
  for (const auto& p : totals.problems) {
    out << "  ";
    print_problem(out, p);
  }
  return totals.problems.empty() ? 0 : 1;
}

std::string record_json(const fs::path& log, const visited_record& r) {
  nlohmann::json j;
  j["id"] = r.msg.id.to_string();
  j["queue"] = r.msg.queue;
  j["partition"] = r.msg.partition;
  const auto opt = [](const std::optional<std::string>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  j["namespace"] = opt(r.msg.namespace_);
  j["task"] = opt(r.msg.task);
  j["traceId"] = opt(r.msg.trace_id);
  j["transactionId"] = opt(r.msg.transaction_id);
  j["createdMs"] = r.msg.created_ms;
  j["log"] = log.filename().string();
  j["segment"] = r.file.filename().string();
  j["offset"] = r.offset;
  j["acked"] = r.acked;
  if (r.failed != nullptr) {
    j["reason"] = r.failed->reason;
    j["failedMs"] = r.failed->failed_ms;
  }
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.pop_back();
  line += ",\"payload\":";
  if (r.msg.payload.empty()) {
    line += "null";
  } else {
    // JSON text can hold a raw line break only as whitespace between tokens (inside a string
    // it must be escaped), so replacing them keeps the payload's meaning on one line.
    for (char c : r.msg.payload)
      line.push_back(c == '\n' || c == '\r' ? ' ' : c);
  }
  line += '}';
  return line;
}

// Records of `file` that pass every check, in order, with corrupt ranges skipped the way replay
// skips them (segment_reader::find_next_record). Calls `on_batch` every `batch` records.
struct import_totals {
  std::uint64_t records = 0;
  std::uint64_t corrupt_ranges = 0;
  std::uint64_t corrupt_records = 0;
};

std::error_code read_importable(const fs::path& file, std::size_t batch,
                                const std::function<bool(std::vector<message>&)>& on_batch,
                                import_totals& totals) {
  segment_reader reader;
  std::error_code ec = reader.open(file);
  if (ec == errc::bad_segment_header)
    ec = reader.open_headerless(file);
  if (ec)
    return ec;
  std::vector<message> pending;
  record_view rec;
  for (;;) {
    while (reader.next(rec, ec)) {
      std::optional<message> m;
      if (rec.kind == record_kind::message) {
        m = decode_message_body(rec.body, ec);
      } else if (auto f = decode_failed_body(rec.body, ec)) {
        m = std::move(f->msg);
      }
      if (!m) {
        ec = errc::malformed_record;
        reader.seek(rec.offset);
        break;
      }
      pending.push_back(std::move(*m));
      ++totals.records;
      if (pending.size() >= batch) {
        if (!on_batch(pending))
          return make_error_code(errc::closed);
        pending.clear();
      }
    }
    if (!ec)
      break;
    if (!proves_corruption(ec))
      return ec;
    const std::uint64_t bad = reader.offset();
    std::optional<std::uint64_t> next;
    if (!reader.find_next_record(bad, next, ec))
      return ec;
    const std::uint64_t end = next.value_or(reader.limit());
    ++totals.corrupt_ranges;
    totals.corrupt_records += reader.count_frames(bad, end);
    if (!next)
      break;
    reader.seek(*next);
  }
  if (!pending.empty() && !on_batch(pending))
    return make_error_code(errc::closed);
  return {};
}

int import_file(const fs::path& dir, const fs::path& file, std::ostream& out, std::ostream& err) {
  if (!fs::is_regular_file(file)) {
    err << "sluice buffer import: not a file: " << file.string() << '\n';
    return 2;
  }
  if (!layout::is_log_dir(dir)) {
    err << "sluice buffer import: not a buffer log directory: " << dir.string() << '\n';
    return 2;
  }
  boost::asio::io_context ioc;
  buffer_options options;
  options.max_total_bytes = 0;  // the operator asked for these records explicitly
  std::error_code ec;
  auto log = buffer_log::open(dir, options, ioc.get_executor(), ec);
  if (ec == errc::log_locked) {
    err << "sluice buffer import: " << dir.string()
        << " is in use by a running sluice; stop it first\n";
    return 1;
  }
  if (ec) {
    err << "sluice buffer import: cannot open " << dir.string() << ": " << ec.message() << '\n';
    return 1;
  }
  std::error_code append_ec;
  const auto append_batch = [&](std::vector<message>& batch) {
    log->append(std::move(batch), [&](std::error_code e) { append_ec = e; });
    ioc.restart();
    ioc.run();
    return !append_ec;
  };
  import_totals totals;
  ec = read_importable(file, 1000, append_batch, totals);
  log->close();
  if (append_ec) {
    err << "sluice buffer import: appending to " << dir.string()
        << " failed: " << append_ec.message() << '\n';
    return 1;
  }
  if (ec) {
    err << "sluice buffer import: reading " << file.string() << " failed: " << ec.message()
        << " (records before it were imported)\n";
  }
  out << "imported " << totals.records << " records from " << file.string() << " into "
      << dir.string() << "; corrupt: " << totals.corrupt_records << " records in "
      << totals.corrupt_ranges << " ranges\n";
  return ec || totals.corrupt_ranges > 0 ? 1 : 0;
}

}  // namespace

int run_buffer_command(std::span<const std::string> args, std::ostream& out, std::ostream& err) {
  if (args.size() == 1 && (args[0] == "help" || args[0] == "--help" || args[0] == "-h")) {
    out << usage;
    return 0;
  }
  if (args.size() == 3 && args[0] == "import")
    return import_file(args[1], args[2], out, err);
  if (args.size() != 2 || (args[0] != "stat" && args[0] != "dump" && args[0] != "verify")) {
    err << usage;
    return 2;
  }
  const std::string& command = args[0];
  const fs::path dir = args[1];
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    err << "sluice buffer " << command << ": not a directory: " << dir.string() << '\n';
    return 2;
  }
  const std::vector<fs::path> logs = find_logs(dir);
  if (logs.empty()) {
    err << "sluice buffer " << command << ": no buffer logs in " << dir.string() << '\n';
    return 0;
  }

  int status = 0;
  for (const auto& log : logs) {
    if (command == "stat") {
      status = std::max(status, stat_log(log, out));
    } else if (command == "dump") {
      walk_totals totals;
      walk_log(
          log, [&](const visited_record& r) { out << record_json(log, r) << '\n'; }, nullptr,
          totals);
      for (const auto& p : totals.problems)
        print_problem(err, p);
      if (!totals.problems.empty())
        status = 1;
    } else {
      walk_totals totals;
      walk_log(
          log, [](const visited_record&) {},
          [&](const fs::path& file, std::uint64_t records, bool ok) {
            if (ok)
              out << "ok " << file.string() << " records=" << records << '\n';
          },
          totals);
      for (const auto& p : totals.problems)
        print_problem(out, p);
      if (!totals.problems.empty())
        status = 1;
    }
  }
  return status;
}

}  // namespace sluice::buffer
