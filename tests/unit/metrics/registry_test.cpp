#include "sluice/metrics/registry.hpp"

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace sluice::metrics {
namespace {

TEST(registry, exposes_counters_gauges_and_histograms_in_text_format) {
  registry r;
  auto& requests = r.add_counter("sluice_test_requests_total", "Requests.", {"route", "code"});
  requests.with({"/a", "200"}).inc();
  requests.with({"/a", "200"}).inc(2);
  requests.with({"/b", "404"}).inc();
  r.add_gauge("sluice_test_connections", "Open connections.").get().set(7);
  auto& latency = r.add_histogram("sluice_test_seconds", "Latency.", {"route"}, {0.1, 1});
  latency.with({"/a"}).observe(0.05);
  latency.with({"/a"}).observe(0.5);
  latency.with({"/a"}).observe(5);

  const std::string text = r.expose();
  EXPECT_NE(text.find("# TYPE sluice_test_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_test_requests_total{route=\"/a\",code=\"200\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_test_requests_total{route=\"/b\",code=\"404\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_test_connections 7\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_test_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_test_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_test_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_test_seconds_sum{route=\"/a\"} 5.55\n"), std::string::npos);
  EXPECT_NE(text.find("sluice_test_seconds_count{route=\"/a\"} 3\n"), std::string::npos);
}

TEST(registry, escapes_label_values_and_help) {
  registry r;
  r.add_counter("sluice_test_total", "Help with \\ and\nnewline.", {"v"})
      .with({"a\"b\\c\nd"})
      .inc();
  const std::string text = r.expose();
  EXPECT_NE(text.find("# HELP sluice_test_total Help with \\\\ and\\nnewline.\n"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_test_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos);
}

TEST(registry, same_name_returns_same_family_and_different_type_throws) {
  registry r;
  auto& a = r.add_counter("sluice_x_total", "X.");
  auto& b = r.add_counter("sluice_x_total", "X.");
  EXPECT_EQ(&a, &b);
  EXPECT_THROW(r.add_gauge("sluice_x_total", "X."), std::logic_error);
}

TEST(registry, collectors_refresh_gauges_before_exposition) {
  registry r;
  auto& g = r.add_gauge("sluice_pending", "Pending.").get();
  int calls = 0;
  r.on_collect([&] { g.set(++calls * 10); });
  EXPECT_NE(r.expose().find("sluice_pending 10\n"), std::string::npos);
  EXPECT_NE(r.expose().find("sluice_pending 20\n"), std::string::npos);
}

TEST(registry, a_removed_series_leaves_the_exposition) {
  registry r;
  auto& f = r.add_gauge("sluice_valid_seconds", "Valid.", {"service"});
  f.with({"a"}).set(1);
  f.with({"b"}).set(2);
  f.remove({"a"});
  f.remove({"never"});
  const std::string text = r.expose();
  EXPECT_EQ(text.find("service=\"a\""), std::string::npos) << text;
  EXPECT_NE(text.find("sluice_valid_seconds{service=\"b\"} 2\n"), std::string::npos) << text;
}

TEST(registry, output_passes_promtool_check_metrics) {
  registry r;
  r.add_counter("sluice_http_requests_total", "HTTP requests.", {"route", "method", "code"})
      .with({"/api/v1/push", "POST", "201"})
      .inc();
  r.add_histogram("sluice_http_request_duration_seconds", "HTTP latency.", {"route"},
                  latency_buckets())
      .with({"/health"})
      .observe(0.002);
  r.add_gauge("sluice_http_connections", "Open connections.").get().set(1);
  const std::string path = ::testing::TempDir() + "/sluice_metrics_promtool.txt";
  std::ofstream(path) << r.expose();
  const int rc =
      std::system(("promtool check metrics < " + path + " > " + path + ".out 2>&1").c_str());
  std::ifstream out(path + ".out");
  const std::string report((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << report;
  std::remove(path.c_str());
  std::remove((path + ".out").c_str());
}

}  // namespace
}  // namespace sluice::metrics
