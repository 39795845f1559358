#include "sluice/metrics/registry.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace sluice::metrics {
namespace {

void append_escaped(std::string& out, const std::string& text, bool quote_too) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote_too) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
}

std::string format_value(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

// Writes `{a="x",b="y"` + extra + `}`; nothing when there are no labels at all.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, const std::string& extra = {}) {
  if (names.empty() && extra.empty())
    return;
  out.push_back('{');
  bool first = true;
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (!first)
      out.push_back(',');
    first = false;
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out.push_back('"');
  }
  if (!extra.empty()) {
    if (!first)
      out.push_back(',');
    out += extra;
  }
  out.push_back('}');
}

void append_header(std::string& out, const std::string& name, const std::string& help,
                   const char* type) {
  out += "# HELP ";
  out += name;
  out.push_back(' ');
  append_escaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out.push_back(' ');
  out += type;
  out.push_back('\n');
}

}  // namespace

histogram::histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(upper_bounds_.size() + 1)) {
  if (!std::is_sorted(upper_bounds_.begin(), upper_bounds_.end())) {
    throw std::invalid_argument("histogram buckets must be sorted");
  }
}

void histogram::observe(double v) {
  const auto it = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), v);
  counts_[static_cast<std::size_t>(it - upper_bounds_.begin())].fetch_add(
      1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.upper_bounds = upper_bounds_;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= upper_bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative_counts.push_back(running);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

std::vector<double> size_buckets() {
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
}

registry::entry& registry::find_or_add(const std::string& name, metric_type type) {
  auto [it, inserted] = entries_.try_emplace(name);
  if (!inserted && it->second.type != type) {
    throw std::logic_error("metric " + name + " registered twice with different types");
  }
  it->second.type = type;
  return it->second;
}

family<counter>& registry::add_counter(const std::string& name, const std::string& help,
                                       std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  auto& e = find_or_add(name, metric_type::counter);
  if (!e.counters) {
    e.counters = std::make_unique<family<counter>>(name, help, std::move(label_names),
                                                   [] { return std::make_unique<counter>(); });
  }
  return *e.counters;
}

family<gauge>& registry::add_gauge(const std::string& name, const std::string& help,
                                   std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  auto& e = find_or_add(name, metric_type::gauge);
  if (!e.gauges) {
    e.gauges = std::make_unique<family<gauge>>(name, help, std::move(label_names),
                                               [] { return std::make_unique<gauge>(); });
  }
  return *e.gauges;
}

family<histogram>& registry::add_histogram(const std::string& name, const std::string& help,
                                           std::vector<std::string> label_names,
                                           std::vector<double> buckets) {
  std::lock_guard lock(mutex_);
  auto& e = find_or_add(name, metric_type::histogram);
  if (!e.histograms) {
    e.histograms = std::make_unique<family<histogram>>(
        name, help, std::move(label_names),
        [buckets = std::move(buckets)] { return std::make_unique<histogram>(buckets); });
  }
  return *e.histograms;
}

void registry::on_collect(std::function<void()> refresh) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::move(refresh));
}

std::string registry::expose() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard lock(mutex_);
    collectors = collectors_;
  }
  for (const auto& refresh : collectors)
    refresh();

  std::lock_guard lock(mutex_);
  std::string out;
  out.reserve(16 * 1024);
  for (const auto& [name, e] : entries_) {
    switch (e.type) {
      case metric_type::counter:
        append_header(out, name, e.counters->help(), "counter");
        e.counters->for_each([&](const std::vector<std::string>& labels, const counter& c) {
          out += name;
          append_labels(out, e.counters->label_names(), labels);
          out += ' ' + format_value(c.value()) + '\n';
        });
        break;
      case metric_type::gauge:
        append_header(out, name, e.gauges->help(), "gauge");
        e.gauges->for_each([&](const std::vector<std::string>& labels, const gauge& g) {
          out += name;
          append_labels(out, e.gauges->label_names(), labels);
          out += ' ' + format_value(g.value()) + '\n';
        });
        break;
      case metric_type::histogram:
        append_header(out, name, e.histograms->help(), "histogram");
        e.histograms->for_each([&](const std::vector<std::string>& labels, const histogram& h) {
          const auto s = h.read();
          const auto& names = e.histograms->label_names();
          for (std::size_t i = 0; i <= s.upper_bounds.size(); ++i) {
            const std::string le =
                i < s.upper_bounds.size() ? format_value(s.upper_bounds[i]) : std::string("+Inf");
            out += name + "_bucket";
            append_labels(out, names, labels, "le=\"" + le + "\"");
            out += ' ' + std::to_string(s.cumulative_counts[i]) + '\n';
          }
          out += name + "_sum";
          append_labels(out, names, labels);
          out += ' ' + format_value(s.sum) + '\n';
          out += name + "_count";
          append_labels(out, names, labels);
          out += ' ' + std::to_string(s.cumulative_counts.back()) + '\n';
        });
        break;
    }
  }
  return out;
}

}  // namespace sluice::metrics
