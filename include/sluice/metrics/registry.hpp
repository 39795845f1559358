#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::metrics {

// Values are atomics so a blocking-pool thread may update them; the exposition reads them
// without stopping writers (a scrape sees each value at some instant, as Prometheus expects).
class counter {
 public:
  void inc(double by = 1.0) { value_.fetch_add(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double by = 1.0) { value_.fetch_add(by, std::memory_order_relaxed); }
  void dec(double by = 1.0) { value_.fetch_sub(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class histogram {
 public:
  explicit histogram(std::vector<double> upper_bounds);
  void observe(double v);

  struct snapshot {
    std::vector<double> upper_bounds;
    std::vector<std::uint64_t> cumulative_counts;  // one per bound, then +Inf last
    double sum = 0;
  };
  snapshot read() const;

 private:
  std::vector<double> upper_bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, +Inf last; not cumulative
  std::atomic<double> sum_{0.0};
};

// Buckets for durations in seconds, 100 µs .. 10 s.
std::vector<double> latency_buckets();
// Buckets for batch sizes, 1 .. 10,000.
std::vector<double> size_buckets();

enum class metric_type { counter, gauge, histogram };

// All series of one metric name; each distinct label-value tuple is one child, created on first
// use and kept for the life of the registry. Hot paths keep the returned reference.
template <typename Metric>
class family {
 public:
  family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Metric>()> make)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  Metric& with(const std::vector<std::string>& label_values) {
    std::lock_guard lock(mutex_);
    auto& slot = children_[label_values];
    if (!slot)
      slot = make_();
    return *slot;
  }
  Metric& get() { return with({}); }
  // Drops one series (a gauge of something that no longer exists). Only for series nobody
  // keeps a reference to: callers that remove re-fetch with with() on every update.
  void remove(const std::vector<std::string>& label_values) {
    std::lock_guard lock(mutex_);
    children_.erase(label_values);
  }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  template <typename Visit>
  void for_each(Visit&& visit) const {
    std::lock_guard lock(mutex_);
    for (const auto& [labels, metric] : children_)
      visit(labels, *metric);
  }

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

// The process's metrics. Names must be unique; registering one twice returns the first family
// (so modules can share a family by name) unless the type differs, which throws.
class registry {
 public:
  family<counter>& add_counter(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names = {});
  family<gauge>& add_gauge(const std::string& name, const std::string& help,
                           std::vector<std::string> label_names = {});
  family<histogram>& add_histogram(const std::string& name, const std::string& help,
                                   std::vector<std::string> label_names,
                                   std::vector<double> buckets);

  // Runs before every exposition: for gauges that mirror state owned elsewhere (pool sizes,
  // buffer bytes) instead of updating them on every change.
  void on_collect(std::function<void()> refresh);

  // Prometheus text exposition format 0.0.4.
  std::string expose() const;

 private:
  struct entry {
    metric_type type;
    std::unique_ptr<family<counter>> counters;
    std::unique_ptr<family<gauge>> gauges;
    std::unique_ptr<family<histogram>> histograms;
  };
  entry& find_or_add(const std::string& name, metric_type type);

  mutable std::mutex mutex_;
  std::map<std::string, entry> entries_;  // sorted: stable output
  std::vector<std::function<void()>> collectors_;
};

}  // namespace sluice::metrics
