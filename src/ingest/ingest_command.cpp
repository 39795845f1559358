#include "sluice/ingest/ingest_command.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/ingest/csv_parser.hpp"
#include "sluice/ingest/ndjson_splitter.hpp"
#include "sluice/ingest/upload_client.hpp"

#include <nlohmann/json.hpp>

namespace sluice::ingest {
namespace {

using clock_type = std::chrono::steady_clock;

std::string encode_query_value(std::string_view v) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0xF]);
    }
  }
  return out;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Counts the rows sent as the server will count them (a quoted CSV field may hold line
// ends), for the progress display.
class row_counter {
 public:
  explicit row_counter(bool csv) : csv_(csv) {}
  void feed(std::string_view piece) {
    if (csv_) {
      records_.feed(piece, [this](const csv_record&) { ++rows_; });
    } else {
      lines_.feed(piece, [this](const ndjson_line& l) {
        if (l.too_long || l.text.find_first_not_of(" \t\r") != std::string_view::npos)
          ++rows_;
      });
    }
  }
  // Without the header row of a CSV file.
  std::uint64_t rows() const { return csv_ && rows_ > 0 ? rows_ - 1 : rows_; }

 private:
  bool csv_;
  // Only counted, never kept: no bound needed beyond one record of the file.
  csv_parser records_{0};
  ndjson_splitter lines_{0};
  std::uint64_t rows_ = 0;
};

}  // namespace

std::optional<std::string> parse_ingest_command(std::span<const std::string> args,
                                                ingest_command_options& out) {
  std::optional<std::string> file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& into) -> std::optional<std::string> {
      if (i + 1 >= args.size())
        return a + " needs a value";
      into = args[++i];
      return std::nullopt;
    };
    auto optional_value = [&](std::optional<std::string>& into) -> std::optional<std::string> {
      std::string v;
      if (auto e = value(v))
        return e;
      into = std::move(v);
      return std::nullopt;
    };
    std::optional<std::string> error;
    if (a == "--url") {
      error = value(out.url);
    } else if (a == "--queue") {
      error = value(out.queue);
    } else if (a == "--format") {
      error = value(out.format);
      if (!error && out.format != "ndjson" && out.format != "csv")
        error = "--format must be ndjson or csv";
    } else if (a == "--partition-field") {
      error = optional_value(out.partition_field);
    } else if (a == "--time-field") {
      error = optional_value(out.time_field);
    } else if (a == "--time-format") {
      error = optional_value(out.time_format);
    } else if (a == "--idempotency-key") {
      error = optional_value(out.idempotency_key);
    } else if (a == "--token") {
      error = optional_value(out.token);
    } else if (a == "--strict") {
      out.strict = true;
    } else if (a == "--quiet") {
      out.quiet = true;
    } else if (a == "-" || a.rfind("-", 0) != 0) {
      if (file)
        return "only one FILE may be given";
      file = a;
    } else {
      return "unknown option '" + a + "'";
    }
    if (error)
      return error;
  }
  if (!file)
    return "FILE (or - for stdin) is missing";
  if (out.queue.empty())
    return "--queue is missing";
  out.file = *file;
  if (out.format.empty())
    out.format = ends_with(out.file, ".csv") ? "csv" : "ndjson";
  if (!out.token) {
    if (const char* t = std::getenv("SLUICE_TOKEN"); t != nullptr && *t != '\0')
      out.token = t;
  }
  return std::nullopt;
}

std::string ingest_target(const ingest_command_options& o, const std::string& base_path) {
  std::string t = base_path + "/api/v1/queues/" + encode_query_value(o.queue) + "/ingest";
  char sep = '?';
  auto add = [&](std::string_view name, std::string_view value) {
    t.push_back(sep);
    sep = '&';
    t += name;
    t.push_back('=');
    t += encode_query_value(value);
  };
  if (o.partition_field)
    add("partition_field", *o.partition_field);
  if (o.time_field)
    add("time_field", *o.time_field);
  if (o.time_format)
    add("time_format", *o.time_format);
  if (o.strict)
    add("strict", "true");
  return t;
}

std::string format_bytes(std::uint64_t n) {
  static constexpr const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  std::size_t u = 0;
  while (v >= 1000 && u + 1 < std::size(units)) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else
    std::snprintf(buf, sizeof buf, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(seconds < 0 ? 0 : seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

int run_ingest_command(std::span<const std::string> args, std::ostream& out, std::ostream& err) {
  ingest_command_options options;
  if (auto error = parse_ingest_command(args, options)) {
    err << "sluice ingest: " << *error
        << "\nusage: sluice ingest FILE|- --queue NAME [--url URL] [--format ndjson|csv]\n"
           "         [--partition-field NAME] [--time-field NAME] [--time-format "
           "rfc3339|epoch_s|epoch_ms]\n"
           "         [--strict] [--idempotency-key KEY] [--token TOKEN] [--quiet]\n";
    return 2;
  }
  parsed_url url;
  std::string url_error;
  if (!parse_http_url(options.url, url, url_error)) {
    err << "sluice ingest: --url: " << url_error << "\n";
    return 2;
  }
  std::FILE* in = options.file == "-" ? stdin : std::fopen(options.file.c_str(), "rb");
  if (in == nullptr) {
    err << "sluice ingest: cannot open " << options.file << "\n";
    return 1;
  }
  std::optional<std::uint64_t> total_bytes;
  struct stat st {};
  if (::fstat(::fileno(in), &st) == 0 && S_ISREG(st.st_mode))
    total_bytes = static_cast<std::uint64_t>(st.st_size);

  upload_target to;
  to.host = url.host;
  to.port = url.port;
  to.target = ingest_target(options, url.base_path);
  to.headers.emplace_back("Content-Type",
                          options.format == "csv" ? "text/csv" : "application/x-ndjson");
  if (options.idempotency_key)
    to.headers.emplace_back("Idempotency-Key", *options.idempotency_key);
  if (options.token)
    to.headers.emplace_back("Authorization", "Bearer " + *options.token);

  const bool show_progress = !options.quiet && ::isatty(STDERR_FILENO) == 1;
  row_counter rows(options.format == "csv");
  std::uint64_t sent = 0;
  const auto started = clock_type::now();
  auto last_shown = started;
  bool read_failed = false;
  auto show = [&](bool final_line) {
    const double elapsed = std::chrono::duration<double>(clock_type::now() - started).count();
    const double rate = elapsed > 0 ? static_cast<double>(rows.rows()) / elapsed : 0;
    std::string line = "\r" + format_bytes(sent);
    if (total_bytes)
      line += " / " + format_bytes(*total_bytes);
    line += "  " + std::to_string(rows.rows()) + " rows  " +
            std::to_string(static_cast<long long>(rate)) + " rows/s";
    if (total_bytes && sent > 0 && sent < *total_bytes && elapsed > 0) {
      const double bytes_per_s = static_cast<double>(sent) / elapsed;
      line += "  ETA " + format_duration(static_cast<double>(*total_bytes - sent) / bytes_per_s);
    }
    line += "\033[K";
    if (final_line)
      line += "\n";
    err << line << std::flush;
  };

  const body_source next = [&](std::string& piece, std::size_t max) {
    piece.resize(max);
    const std::size_t n = std::fread(piece.data(), 1, max, in);
    piece.resize(n);
    if (n == 0 && std::ferror(in))
      read_failed = true;
    sent += n;
    rows.feed(piece);
    if (show_progress && clock_type::now() - last_shown > std::chrono::milliseconds(200)) {
      last_shown = clock_type::now();
      show(false);
    }
  };

  upload_response res;
  try {
    res = post_chunked(to, next);
  } catch (const std::exception& e) {
    if (in != stdin)
      std::fclose(in);
    if (show_progress)
      show(true);
    err << "sluice ingest: " << e.what() << "\n";
    return 1;
  }
  if (in != stdin)
    std::fclose(in);
  if (show_progress)
    show(true);
  if (read_failed) {
    err << "sluice ingest: reading " << options.file
        << " failed; the server saw the body end there\n";
  }

  const double elapsed = std::chrono::duration<double>(clock_type::now() - started).count();
  const auto body = nlohmann::json::parse(res.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    err << "sluice ingest: HTTP " << res.status << ": " << res.body.substr(0, 500) << "\n";
    return 1;
  }
  const auto number = [&](const char* key) -> std::uint64_t {
    const auto it = body.find(key);
    return it != body.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
  };
  const auto accepted = number("accepted");
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.0f",
                elapsed > 0 ? static_cast<double>(accepted) / elapsed : 0);
  out << "accepted " << accepted << " rows (" << number("duplicates") << " already stored, "
      << number("buffered") << " in the file buffer), rejected " << number("rejectedCount") << "; "
      << format_bytes(sent) << " in " << format_duration(elapsed) << " (" << rate << " rows/s)\n";
  if (const auto it = body.find("rejected"); it != body.end() && it->is_array()) {
    for (const auto& r : *it)
      out << "  line " << r.value("line", 0) << ": " << r.value("message", "") << "\n";
    if (number("rejectedCount") > it->size())
      out << "  ... (" << number("rejectedCount") - it->size() << " more)\n";
  }
  if (res.status != 200) {
    std::string message = res.body;
    if (const auto e = body.find("error"); e != body.end() && e->is_object())
      message = e->value("code", "") + ": " + e->value("message", "");
    err << "sluice ingest: HTTP " << res.status << " " << message << "; rows through line "
        << number("durableThroughLine") << " are durable"
        << (options.idempotency_key ? ", a retry with the same --idempotency-key stores "
                                      "nothing twice"
                                    : "")
        << "\n";
    return 1;
  }
  return number("rejectedCount") == 0 && !read_failed ? 0 : 1;
}

}  // namespace sluice::ingest
