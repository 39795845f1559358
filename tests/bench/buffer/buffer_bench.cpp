// Throughput of the file buffer: appends with many in flight (group commit), then replay.
//
//   buffer_bench [--records N] [--inflight N] [--batch N] [--payload BYTES]
//                [--fsync always|interval|never] [--dir DIR]
//
// Prints records/s for both phases. The directory (a fresh one under /tmp by default) is
// removed at the end.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "sluice/buffer/buffer_log.hpp"
#include "sluice/core/uuid.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace sluice;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  std::size_t records = 500'000;
  std::size_t inflight = 2048;
  std::size_t batch = 1;
  std::size_t payload = 200;
  buffer::fsync_policy fsync = buffer::fsync_policy::always;
  fs::path dir;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: buffer_bench [--records N] [--inflight N] [--batch N] [--payload BYTES] "
               "[--fsync always|interval|never] [--dir DIR]\n");
  std::exit(2);
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc)
      usage();
    const std::string value = argv[++i];
    if (arg == "--records") {
      s.records = std::stoul(value);
    } else if (arg == "--inflight") {
      s.inflight = std::stoul(value);
    } else if (arg == "--batch") {
      s.batch = std::max<std::size_t>(1, std::stoul(value));
    } else if (arg == "--payload") {
      s.payload = std::stoul(value);
    } else if (arg == "--fsync") {
      const auto p = buffer::parse_fsync_policy(value);
      if (!p)
        usage();
      s.fsync = *p;
    } else if (arg == "--dir") {
      s.dir = value;
    } else {
      usage();
    }
  }
  return s;
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  settings s = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  bool remove_dir = false;
  if (s.dir.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "sluice-buffer-bench-XXXXXX").string();
    s.dir = ::mkdtemp(tmpl.data());
    remove_dir = true;
  }

  asio::io_context ioc;
  buffer::buffer_options options;
  options.fsync = s.fsync;
  options.max_total_bytes = 0;
  std::error_code ec;
  auto log = buffer::buffer_log::open(s.dir, options, ioc.get_executor(), ec);
  if (!log) {
    std::fprintf(stderr, "open %s: %s\n", s.dir.c_str(), ec.message().c_str());
    return 1;
  }

  message proto;
  proto.queue = "orders";
  proto.partition = "Default";
  proto.namespace_ = "shop";
  proto.transaction_id = "tx";
  proto.payload = "{\"data\":\"" + std::string(s.payload > 12 ? s.payload - 12 : 0, 'x') + "\"}";
  uuid_v7_generator ids;

  std::size_t started = 0, appended = 0, failures = 0;
  const auto append_start = clock_type::now();
  for (std::size_t w = 0; w < s.inflight; ++w) {
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          while (started < s.records) {
            const std::size_t n = std::min(s.batch, s.records - started);
            started += n;
            std::vector<message> batch(n, proto);
            for (auto& m : batch) {
              m.id = ids.next();
              m.created_ms = m.id.unix_ms();
            }
            auto [e] = co_await log->append(std::move(batch), asio::as_tuple(asio::use_awaitable));
            if (e)
              ++failures;
            appended += n;
          }
        },
        asio::detached);
  }
  ioc.run();
  const double append_secs = seconds_since(append_start);
  const auto after_append = log->stats();

  std::size_t replayed = 0;
  const auto replay_start = clock_type::now();
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto [e, records] =
              co_await log->read_batch(options.replay_batch, asio::as_tuple(asio::use_awaitable));
          if (e || records.empty())
            break;
          replayed += records.size();
          log->acknowledge(records.back().position);
        }
      },
      asio::detached);
  ioc.restart();
  ioc.run();
  const double replay_secs = seconds_since(replay_start);
  log->close();
  ioc.restart();
  ioc.run();

  const std::uint64_t record_bytes =
      after_append.pending_bytes / std::max<std::uint64_t>(1, appended);
  std::printf(
      "append: %zu records (%llu bytes each on disk) in %.3f s = %.0f records/s, "
      "fsync=%s inflight=%zu batch=%zu, %llu fsyncs (%.1f records/fsync), %zu failed\n",
      appended, static_cast<unsigned long long>(record_bytes), append_secs,
      static_cast<double>(appended) / append_secs, std::string(buffer::to_string(s.fsync)).c_str(),
      s.inflight, s.batch, static_cast<unsigned long long>(after_append.fsyncs_total),
      static_cast<double>(appended) /
          static_cast<double>(std::max<std::uint64_t>(1, after_append.fsyncs_total)),
      failures);
  std::printf("replay: %zu records in %.3f s = %.0f records/s (batches of %zu)\n", replayed,
              replay_secs, static_cast<double>(replayed) / replay_secs, options.replay_batch);
  if (remove_dir)
    fs::remove_all(s.dir);
  return failures == 0 && replayed == appended ? 0 : 1;
}
