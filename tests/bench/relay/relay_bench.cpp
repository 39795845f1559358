// End to end: POST /api/v1/push (batch 100) -> stored in PostgreSQL -> published by the relay
// -> confirmed by RabbitMQ, persistent messages into a quorum queue, next to the broker's own
// limit measured in the same run by node's amqplib publishing messages of the same shape with
// confirms and the same window as the relay (RABBITMQ_CONFIRM_WINDOW, 1000 by default).
// Also pushes the same load with the relay off, to show what the relay costs the push path.
//
// Needs SLUICE_TEST_PG_URL and SLUICE_TEST_AMQP_URL (its credentials; the broker itself is a
// private node on port 29872 unless SLUICE_BENCH_AMQP_URL names one). SLUICE_BENCH_MESSAGES sets
// the count (default 200000), SLUICE_BENCH_PUSHERS the HTTP clients (8). SLUICE_BENCH_REPORT names
// a file to write the Markdown section into (tests/bench/relay/run puts it in BENCHMARKS.md).
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "sluice/amqp/url.hpp"

#include <gtest/gtest.h>

#include "private_broker.hpp"
#include "relay_test_support.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/pg.hpp"
#include "sluice_test/sluice_process.hpp"
#include "sluice_test/tcp_proxy.hpp"

#ifndef SLUICE_RELAY_BENCH_DIR
#error "SLUICE_RELAY_BENCH_DIR must point at tests/bench/relay"
#endif

namespace sluice::relay::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using sluice::test::http_call;
using sluice::test::pg_session;
using sluice::test::scoped_database;
using sluice::test::sluice_process;
using sluice::test::temp_dir;

constexpr int batch = 100;
constexpr std::size_t payload_pad = 170;  // ≈ 200-byte payloads, like the push benchmark
// The latency run's rate, as a share of the broker's limit: a healthy, not saturated, broker.
constexpr double lat_share = 0.25;
constexpr double sustained_share = 0.75;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : fallback;
}

// CPU seconds (user + system) the process used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15)
      ticks += std::stod(field);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The process listening on `port` (the broker's Erlang VM), or -1.
pid_t listener_pid(std::uint16_t port);

double seconds_since(clock::time_point t) {
  return std::chrono::duration<double>(clock::now() - t).count();
}

std::string run_command(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr)
    throw std::runtime_error("popen failed: " + command);
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p) != nullptr)
    out += buf.data();
  ::pclose(p);
  return out;
}

pid_t listener_pid(std::uint16_t port) {
  const std::string out = run_command("ss -ltnpH 'sport = :" + std::to_string(port) +
                                      "' 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1");
  return out.size() > 4 ? static_cast<pid_t>(std::atoi(out.c_str() + 4)) : -1;
}

struct push_run {
  double seconds = 0;
  std::size_t messages = 0;
  std::size_t errors = 0;
  double rate() const { return seconds > 0 ? static_cast<double>(messages) / seconds : 0; }
};

// `pushers` keep-alive clients push `total` messages in batches, as fast as sluice answers or,
// with `rate` > 0, at about that many messages per second together; each payload carries the
// wall-clock time of its request in "t" (Unix epoch ms) for the consumer's latency.
push_run push_all(std::uint16_t port, const std::string& queue, int total, int pushers,
                  double rate = 0, const std::atomic<bool>* stop = nullptr) {
  std::atomic<int> next{0};
  std::atomic<std::size_t> done{0}, errors{0};
  const std::string pad(payload_pad, 'x');
  const auto started = clock::now();
  std::vector<std::thread> threads;
  for (int k = 0; k < pushers; ++k) {
    threads.emplace_back([&, k] {
      sluice::test::http_connection conn(port);
      const auto period = std::chrono::duration<double>(rate > 0 ? pushers * batch / rate : 0);
      auto next_at =
          clock::now() + std::chrono::duration_cast<clock::duration>(period * k / pushers);
      const std::string partition = "p" + std::to_string(k);
      std::string body;
      while (next.fetch_add(batch) < total && (stop == nullptr || !*stop)) {
        const double now_ms = std::chrono::duration<double, std::milli>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
        char t[32];
        std::snprintf(t, sizeof t, "%.3f", now_ms);
        body = R"({"items":[)";
        for (int i = 0; i < batch; ++i) {
          body += i ? "," : "";
          body += R"({"queue":")" + queue + R"(","partition":")" + partition +
                  R"(","payload":{"t":)" + t + R"(,"pad":")" + pad + "\"}}";
        }
        body += "]}";
        if (rate > 0) {
          std::this_thread::sleep_until(next_at);
          next_at += std::chrono::duration_cast<clock::duration>(period);
        }
        const auto res = conn.request("POST", "/api/v1/push", body);
        if (res.status == 201)
          done += batch;
        else
          ++errors;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  push_run r;
  r.seconds = seconds_since(started);
  r.messages = done;
  r.errors = errors;
  return r;
}

// The smallest bucket bound at or above the q-quantile of a Prometheus histogram.
double histogram_quantile(std::uint16_t port, const std::string& name, double q) {
  const auto body = http_call(port, "GET", "/metrics").body;
  std::istringstream in(body);
  std::string line;
  std::vector<std::pair<double, double>> buckets;
  while (std::getline(in, line)) {
    const std::string prefix = name + "_bucket{le=\"";
    if (line.compare(0, prefix.size(), prefix) != 0)
      continue;
    const auto end = line.find('"', prefix.size());
    const std::string le = line.substr(prefix.size(), end - prefix.size());
    const double bound = le == "+Inf" ? INFINITY : std::stod(le);
    buckets.emplace_back(bound, std::stod(line.substr(line.rfind(' ') + 1)));
  }
  if (buckets.empty() || buckets.back().second == 0)
    return NAN;
  const double target = q * buckets.back().second;
  for (const auto& [bound, count] : buckets) {
    if (count >= target)
      return bound;
  }
  return INFINITY;
}

// Ready, and pushes go straight to PostgreSQL: right after start-up they go through the
// failover log until its replayer finds it empty once.
bool direct(const sluice_process& s) {
  if (http_call(s.port(), "GET", "/health/ready?strict=true").status != 200)
    return false;
  const json status = http_call(s.port(), "GET", "/api/v1/status/buffers").json();
  return !status.value("failoverActive", true);
}

std::string fmt(double v, int decimals = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

TEST(relay_bench, push_to_confirm_next_to_the_broker_limit) {
  const int total = env_int("SLUICE_BENCH_MESSAGES", 200000);
  const int pushers = env_int("SLUICE_BENCH_PUSHERS", 8);
  // A broker of the benchmark's own (port 29872), so other tests publishing to the shared one
  // do not take part in the numbers; SLUICE_BENCH_AMQP_URL names another one instead.
  std::unique_ptr<amqp::test::private_broker> own_broker;
  std::string url;
  if (const char* given = std::getenv("SLUICE_BENCH_AMQP_URL"); given != nullptr && *given) {
    url = given;
  } else {
    own_broker = std::make_unique<amqp::test::private_broker>(29872, 29873, "relaytest@localhost");
    own_broker->start();
    url = sluice::test::url_with_port(amqp_url(), 29872);
  }
  const std::string modules = ensure_amqplib();

  const auto parsed_url = amqp::url::parse(url);
  ASSERT_TRUE(parsed_url);
  const pid_t broker_pid = listener_pid(parsed_url->port);
  const auto broker_cpu = [&] { return broker_pid > 0 ? cpu_seconds(broker_pid) : 0.0; };

  // Experiments: SLUICE_BENCH_RELAY_ENV="RABBITMQ_CONFIRM_WINDOW=2000 ..." (the report says so).
  std::map<std::string, std::string> extra_settings;
  std::string extra_env;
  if (const char* extra = std::getenv("SLUICE_BENCH_RELAY_ENV"); extra != nullptr) {
    std::istringstream words(extra);
    std::string word;
    while (words >> word) {
      const auto eq = word.find('=');
      if (eq != std::string::npos) {
        extra_settings[word.substr(0, eq)] = word.substr(eq + 1);
        extra_env += " " + word;
      }
    }
  }
  // The independent publisher keeps as many publishes unconfirmed as the relay does.
  const std::string window = extra_settings.count("RABBITMQ_CONFIRM_WINDOW")
                                 ? extra_settings["RABBITMQ_CONFIRM_WINDOW"]
                                 : std::string("1000");

  // 1. The broker's limit, measured by an independent publisher; again after the relay's
  // throughput runs, because the machine is shared and the broker's pace drifts.
  const auto measure_limit = [&] {
    const std::string limit_queue = "sluice-bench-limit." + unique_queue("q");
    const std::string out = run_command(
        "NODE_PATH='" + modules + "' node '" + std::string(SLUICE_RELAY_BENCH_DIR) +
        "/amqp_publisher.js' '" + url + "' '" + limit_queue + "' " + std::to_string(total) + " " +
        window + " " + std::to_string(payload_pad + 30) + " quorum");
    json limit = json::parse(out, nullptr, false);
    if (limit.is_discarded() || limit.contains("error"))
      throw std::runtime_error("amqp_publisher.js: " + out);
    return limit;
  };
  const json limit = measure_limit();
  double broker_rate = limit["rate"];

  // 2. The push path alone (relay off).
  push_run off, loaded;
  double off_cpu_per_100k = 0;
  json limit_loaded;
  {
    scoped_database db;
    temp_dir buffer;
    sluice_process s(
        {{"DATABASE_URL", db.url()}, {"FILE_BUFFER_DIR", buffer.path()}, {"LOG_LEVEL", "info"}});
    ASSERT_TRUE(eventually([&] { return direct(s); }, 60s));
    push_all(s.port(), "warmup", 20000, pushers);
    const double off_cpu_before = cpu_seconds(s.pid());
    off = push_all(s.port(), unique_queue("bench.off"), total, pushers);
    off_cpu_per_100k = (cpu_seconds(s.pid()) - off_cpu_before) / off.messages * 100000;
    // The broker's limit again, while the push path keeps PostgreSQL (CPU and the disk, which
    // quorum queues fsync to as well) as busy as it is in a relay run.
    std::atomic<bool> stop{false};
    std::thread load([&] {
      loaded = push_all(s.port(), unique_queue("bench.off"), total * 10, pushers, 0, &stop);
    });
    limit_loaded = measure_limit();
    stop = true;
    load.join();
  }

  // 3. Throughput: push -> stored -> published -> confirmed, as fast as it goes (no consumer,
  // like the broker-limit run).
  scoped_database db;
  temp_dir buffer;
  sluice_process::env_map relay_env = {{"DATABASE_URL", db.url()},
                                       {"RABBITMQ_URL", url},
                                       {"FILE_BUFFER_DIR", buffer.path()},
                                       {"LOG_LEVEL", "info"}};
  for (const auto& [name, value] : extra_settings)
    relay_env[name] = value;
  sluice_process s(relay_env);
  ASSERT_TRUE(eventually([&] { return direct(s); }, 60s));
  const auto published = [&] {
    return metric(s.port(), "sluice_relay_published_total").value_or(0);
  };
  const std::string warmup_queue = unique_queue("bench.warmup");
  push_all(s.port(), warmup_queue, 20000, pushers);
  ASSERT_TRUE(eventually([&] { return published() >= 20000; }, 60s));
  delete_rabbitmq_objects(url, warmup_queue);

  const std::string queue = unique_queue("bench.relay");
  const double published_before = published();
  const double deferred_before = metric(s.port(), "sluice_relay_deferred_total").value_or(0);
  const double swept_before = metric(s.port(), "sluice_relay_swept_total").value_or(0);
  const auto started = clock::now();
  const double cpu_before = cpu_seconds(s.pid());
  const double broker_cpu_before = broker_cpu();
  const push_run on = push_all(s.port(), queue, total, pushers);
  const double push_phase_broker_cpu = (broker_cpu() - broker_cpu_before) / on.seconds * 100;
  ASSERT_TRUE(eventually(
      [&] { return published() - published_before >= static_cast<double>(on.messages); }, 300s));
  const double e2e_seconds = seconds_since(started);
  const double e2e_cpu = (cpu_seconds(s.pid()) - cpu_before) / e2e_seconds * 100;
  const double on_cpu_per_100k = (cpu_seconds(s.pid()) - cpu_before) / on.messages * 100000;
  const double e2e_rate = static_cast<double>(on.messages) / e2e_seconds;
  const double deferred =
      metric(s.port(), "sluice_relay_deferred_total").value_or(0) - deferred_before;
  const double swept = metric(s.port(), "sluice_relay_swept_total").value_or(0) - swept_before;
  ASSERT_TRUE(eventually([&] { return metric(s.port(), "sluice_relay_backlog") == 0.0; }, 60s));
  delete_rabbitmq_objects(url, queue);

  const json limit_after = measure_limit();
  const double broker_rate_before = broker_rate;
  broker_rate = (broker_rate_before + limit_after["rate"].get<double>()) / 2;

  // 4. Sustained: pushes paced at 75% of the broker's limit for a while; the relay keeps up
  // if it publishes them as they come, without leaving any to the sweeper.
  const std::string sus_queue = unique_queue("bench.sustained");
  const double sus_rate = broker_rate * sustained_share;
  const int sus_total = std::max(20000, static_cast<int>(sus_rate * 10)) / batch * batch;
  const double sus_published_before = published();
  const double sus_deferred_before = metric(s.port(), "sluice_relay_deferred_total").value_or(0);
  const double sus_cpu_before = cpu_seconds(s.pid());
  const double sus_broker_cpu_before = broker_cpu();
  const auto sus_started = clock::now();
  // How full the confirm window is while pushing: full means RabbitMQ's confirms set the pace.
  std::atomic<bool> sampling{true};
  double window_sum = 0;
  int window_samples = 0;
  std::thread sampler([&] {
    while (sampling) {
      window_sum += metric(s.port(), "sluice_relay_unconfirmed").value_or(0);
      ++window_samples;
      std::this_thread::sleep_for(100ms);
    }
  });
  const push_run sus = push_all(s.port(), sus_queue, sus_total, pushers, sus_rate);
  sampling = false;
  sampler.join();
  const double window_avg = window_samples ? window_sum / window_samples : 0;
  const double sus_push_seconds = seconds_since(sus_started);
  const double sus_confirmed_in_time = published() - sus_published_before;
  const double sus_cpu = (cpu_seconds(s.pid()) - sus_cpu_before) / sus_push_seconds * 100;
  const double sus_broker_cpu = (broker_cpu() - sus_broker_cpu_before) / sus_push_seconds * 100;
  ASSERT_TRUE(eventually(
      [&] { return published() - sus_published_before >= static_cast<double>(sus.messages); },
      300s));
  const double sus_drain_seconds = seconds_since(sus_started) - sus_push_seconds;
  const double sus_deferred =
      metric(s.port(), "sluice_relay_deferred_total").value_or(0) - sus_deferred_before;
  ASSERT_TRUE(eventually([&] { return metric(s.port(), "sluice_relay_backlog") == 0.0; }, 60s));
  delete_rabbitmq_objects(url, sus_queue);

  // 5. Latency at half the broker's limit, with an independent consumer reading along.
  const std::string lat_queue = unique_queue("bench.latency");
  const double lat_rate = broker_rate * lat_share;
  const int lat_total = std::max(20000, static_cast<int>(lat_rate * 8)) / batch * batch;
  node_consumer consumer(url, {{"queue", "sluice." + lat_queue},
                               {"declare", "quorum"},
                               {"expect", lat_total},
                               {"idleMs", 15000},
                               {"timeoutMs", 600000},
                               {"output", "latency"}});
  const double lat_cpu_before = cpu_seconds(s.pid());
  const auto lat_started = clock::now();
  const push_run paced = push_all(s.port(), lat_queue, lat_total, pushers, lat_rate);
  const double lat_cpu = (cpu_seconds(s.pid()) - lat_cpu_before) / seconds_since(lat_started) * 100;
  const auto lines = consumer.finish(120s);
  const json done = done_line(lines);
  ASSERT_TRUE(eventually([&] { return metric(s.port(), "sluice_relay_backlog") == 0.0; }, 60s));
  const double confirm_p99 =
      histogram_quantile(s.port(), "sluice_relay_confirm_latency_seconds", 0.99);
  delete_rabbitmq_objects(url, lat_queue);

  const double share = e2e_rate / broker_rate * 100;
  std::ostringstream md;
  md << "| measurement | messages/s | notes |\n| --- | ---: | --- |\n";
  md << "| Broker limit: amqplib publisher, confirms, window " << window
     << ", persistent, quorum queue, " << limit["bodyBytes"].get<int>()
     << "-byte bodies with sluice's properties and headers, mandatory, no consumer; mean of a "
        "run before and "
     << "one after the relay's throughput runs | **" << fmt(broker_rate) << "** ("
     << fmt(broker_rate_before) << ", " << fmt(limit_after["rate"].get<double>())
     << ") | p99 confirm " << fmt(limit["p99ConfirmMs"].get<double>(), 1) << " ms, "
     << fmt(limit_after["p99ConfirmMs"].get<double>(), 1) << " ms |\n";
  md << "| Broker limit, same publisher, while the push path (relay off) stores "
     << fmt(loaded.rate()) << " messages/s | **" << fmt(limit_loaded["rate"].get<double>())
     << "** | p99 confirm " << fmt(limit_loaded["p99ConfirmMs"].get<double>(), 1) << " ms |\n";
  md << "| Push only (relay off), batch 100, " << pushers << " clients | " << fmt(off.rate())
     << " | " << off.messages << " messages |\n";
  md << "| Push with the relay on, same load, push phase | " << fmt(on.rate())
     << " | RabbitMQ used " << fmt(push_phase_broker_cpu)
     << "% of a core meanwhile, on the same 2 cores as sluice and PostgreSQL |\n";
  md << "| **End to end, relay on**: first push → last confirm | **" << fmt(e2e_rate) << "** ("
     << fmt(share) << "% of the broker limit, "
     << fmt(e2e_rate / limit_loaded["rate"].get<double>() * 100) << "% of it under push load) | "
     << on.messages << " messages; " << fmt(deferred)
     << " left to the sweeper by the in-memory path, " << fmt(swept)
     << " published by the sweeper; sluice used " << fmt(e2e_cpu) << "% of a core, "
     << fmt(on_cpu_per_100k, 2)
     << " CPU-s per 100k messages (relay off: " << fmt(off_cpu_per_100k, 2) << ") |\n";
  md << "| **Sustained, relay on**: pushes paced at " << fmt(sustained_share * 100)
     << "% of the broker limit for " << fmt(sus_push_seconds, 1) << " s | **"
     << fmt(sus_confirmed_in_time / sus_push_seconds) << "** confirmed while pushing ("
     << fmt(sus.rate()) << " pushed) | " << fmt(sus_deferred)
     << " left to the sweeper; the last confirm " << fmt(sus_drain_seconds * 1000)
     << " ms after the last push; confirm window on average " << fmt(window_avg) << " of " << window
     << " full; sluice used " << fmt(sus_cpu) << "%, RabbitMQ " << fmt(sus_broker_cpu)
     << "% of a core |\n";
  md << "| Latency at " << fmt(lat_rate) << " messages/s (" << fmt(lat_share * 100)
     << "% of the limit), independent consumer "
     << "(amqplib) reading along | " << fmt(paced.rate()) << " | push sent → consumer got it: "
     << "p50 " << fmt(done["latencyMs"]["p50"].get<double>(), 1) << " ms, **p99 "
     << fmt(done["latencyMs"]["p99"].get<double>(), 1) << " ms**; confirm window → ack p99 ≤ "
     << fmt(confirm_p99 * 1000, 1) << " ms (all runs); sluice used " << fmt(lat_cpu)
     << "% of a core |\n";
  md << "\nRabbitMQ " << (own_broker ? "3.10 node of the benchmark's own" : url)
     << ", PostgreSQL 15 (a database of its own), sluice (Release), the load generators and the "
     << "consumer all share the 2 cores and one disk. ";
  if (!extra_env.empty())
    md << "Relay settings changed for this run:" << extra_env << ". ";
  md << "Batches of " << batch << " items of ≈" << payload_pad + 30
     << " bytes; push errors: " << off.errors + on.errors + paced.errors << "; the consumer got "
     << done["unique"].get<int>() << " distinct messages of " << paced.messages << " ("
     << done["duplicates"].get<int>() << " duplicates).\n";
  std::printf("\n%s\n", md.str().c_str());
  if (const char* report = std::getenv("SLUICE_BENCH_REPORT"); report != nullptr && *report)
    std::ofstream(report) << md.str();
  EXPECT_EQ(on.errors + off.errors + paced.errors, 0u);
  EXPECT_EQ(static_cast<std::size_t>(done["unique"].get<int>()), paced.messages)
      << done.dump().substr(0, 500);
}

}  // namespace
}  // namespace sluice::relay::test
