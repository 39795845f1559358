#include "sluice/routing/route_resolver.hpp"

#include <exception>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

namespace sluice::routing {
namespace asio = boost::asio;

namespace {

constexpr resolve_result all_results[] = {resolve_result::hit, resolve_result::miss,
                                          resolve_result::negative_hit, resolve_result::stale,
                                          resolve_result::unavailable};

// A hit takes microseconds, a miss a round trip: the buckets span both.
std::vector<double> resolve_buckets() {
  return {0.000'005, 0.000'01, 0.000'05, 0.000'1, 0.000'5, 0.001, 0.005,
          0.01,      0.05,     0.1,      0.5,     1.0,     5.0};
}

}  // namespace

route_resolver::route_resolver(asio::any_io_executor executor, route_lookup_fn lookup,
                               route_resolver_options options, metrics::registry& metrics,
                               std::function<clock::time_point()> now)
    : executor_(std::move(executor)),
      lookup_(std::move(lookup)),
      options_(options),
      now_(std::move(now)),
      cache_(options_.cache),
      entries_(metrics
                   .add_gauge("sluice_route_cache_entries",
                              "Routes cached by the resolver (positive and negative entries).")
                   .get()),
      invalidations_(metrics
                         .add_counter("sluice_route_invalidations_total",
                                      "Route change events and invalidations the resolver's "
                                      "cache applied (one per changed key).")
                         .get()),
      clears_(metrics
                  .add_counter(
                      "sluice_route_cache_clears_total",
                      "Times the route cache was emptied: by the follower's first catch-up after "
                      "start, and by a catch-up too long to replay.")
                  .get()),
      lookups_ok_(metrics
                      .add_counter("sluice_route_lookups_total",
                                   "Store lookups made by the resolver for cache misses (one per "
                                   "cold key however many resolve it at once).",
                                   {"result"})
                      .with({"ok"})),
      lookups_failed_(metrics
                          .add_counter("sluice_route_lookups_total",
                                       "Store lookups made by the resolver for cache misses (one "
                                       "per cold key however many resolve it at once).",
                                       {"result"})
                          .with({"failed"})),
      in_flight_(metrics
                     .add_gauge("sluice_route_lookups_in_flight",
                                "Keys the resolver is looking up in the store now.")
                     .get()),
      waiting_(metrics
                   .add_gauge("sluice_route_lookup_waiters",
                              "Resolves waiting for a store lookup of their key now.")
                   .get()) {
  auto& totals = metrics.add_counter("sluice_route_resolve_total",
                                     "Route resolves by how they were answered.", {"result"});
  auto& durations = metrics.add_histogram(
      "sluice_route_resolve_duration_seconds",
      "Time to resolve a route, by how it was answered (a hit is answered from memory).",
      {"result"}, resolve_buckets());
  for (const auto r : all_results) {
    by_result_[static_cast<int>(r)] = {&totals.with({to_string(r)}),
                                       &durations.with({to_string(r)})};
  }
}

route_resolver::~route_resolver() = default;

void route_resolver::update_gauges() {
  entries_.set(static_cast<double>(cache_.size()));
  in_flight_.set(static_cast<double>(flights_.size()));
  waiting_.set(static_cast<double>(waiters_));
}

resolve_outcome route_resolver::count(resolve_outcome out, clock::time_point start) {
  const auto& m = by_result_[static_cast<int>(out.result)];
  m.total->inc();
  m.duration->observe(std::chrono::duration<double>(now_() - start).count());
  return out;
}

std::optional<resolve_outcome> route_resolver::resolve_cached(const route_key& key) {
  const auto start = now_();
  cache_view v = cache_.find(key, start);
  if (v.state == cache_state::positive)
    return count({resolve_result::hit, std::move(v.url), {}}, start);
  if (v.state == cache_state::negative)
    return count({resolve_result::negative_hit, std::nullopt, {}}, start);
  return std::nullopt;
}

resolve_outcome route_resolver::answer_without_source(const route_key& key, clock::time_point now,
                                                      std::string error) {
  if (auto url = cache_.stale(key, now))
    return {resolve_result::stale, std::move(url), {}};
  return {resolve_result::unavailable, std::nullopt, std::move(error)};
}

asio::awaitable<resolve_outcome> route_resolver::resolve(route_key key) {
  const auto start = now_();
  cache_view v = cache_.find(key, start);
  if (v.state == cache_state::positive)
    co_return count({resolve_result::hit, std::move(v.url), {}}, start);
  if (v.state == cache_state::negative)
    co_return count({resolve_result::negative_hit, std::nullopt, {}}, start);
  // Finding may have dropped an entry past its bound.
  entries_.set(static_cast<double>(cache_.size()));

  if (stopping_)
    co_return count(answer_without_source(key, start, "shutting down"), start);
  auto found = flights_.find(key);
  if (found == flights_.end() && flights_.size() >= options_.max_inflight_keys) {
    co_return count(answer_without_source(key, start,
                                          "too many route lookups in flight (" +
                                              std::to_string(flights_.size()) + " keys)"),
                    start);
  }
  if (waiters_ >= options_.max_waiters) {
    co_return count(
        answer_without_source(
            key, start, "too many resolves waiting for lookups (" + std::to_string(waiters_) + ")"),
        start);
  }
  std::shared_ptr<flight> f;
  if (found == flights_.end()) {
    f = std::make_shared<flight>();
    flights_.emplace(key, f);
    cache_.begin_fill(key);
    ++lookups_;
    asio::co_spawn(executor_, run_flight(key, f), asio::detached);
  } else {
    f = found->second;
  }
  // A cancelled resolve (its worker's requests cancelled at a stop or a lost channel) leaves by
  // an exception from the co_await below: the count must drop on that way out too, or every
  // cancellation during a slow lookup would eat into max_waiters for good.
  struct waiter_count {
    route_resolver& r;
    explicit waiter_count(route_resolver& resolver) : r(resolver) {
      ++r.waiters_;
      r.update_gauges();
    }
    ~waiter_count() {
      --r.waiters_;
      r.update_gauges();
    }
    waiter_count(const waiter_count&) = delete;
    waiter_count& operator=(const waiter_count&) = delete;
  };
  {
    const waiter_count counted(*this);
    // The flight's lookup has its own deadline; this one only guards against a store call that
    // ignores it.
    const auto give_up =
        async_event::clock::now() + options_.lookup_timeout + std::chrono::seconds(1);
    while (!f->done) {
      const auto wake = co_await f->finished.wait_until(give_up);
      if (wake == async_event::wake::timed_out)
        break;
    }
  }
  const auto now = now_();
  if (!f->done)
    co_return count(answer_without_source(key, now, "route lookup did not finish in time"), start);
  if (!f->ok)
    co_return count(answer_without_source(key, now, f->error), start);
  co_return count({resolve_result::miss, f->url, {}}, start);
}

asio::awaitable<void> route_resolver::run_flight(route_key key, std::shared_ptr<flight> f) {
  lookup_result r;
  try {
    const auto deadline = store::clock::now() + options_.lookup_timeout;
    r = co_await lookup_(key, deadline);
  } catch (const std::exception& e) {
    // A waiter left without an answer would wait for its own deadline.
    r.status.ec = std::make_error_code(std::errc::io_error);
    r.status.message = e.what();
  }
  if (r.status) {
    cache_.abandon_fill(key);
    f->ok = false;
    f->error = r.status.message.empty() ? r.status.ec.message() : r.status.message;
    lookups_failed_.inc();
    spdlog::debug("routing: lookup of {} failed error=\"{}\"", to_string(key), f->error);
  } else {
    lookups_ok_.inc();
    const cache_view v = cache_.fill(key, r.found, r.registry_version, now_());
    f->ok = true;
    if (v.state == cache_state::positive) {
      f->url = v.url;
    } else if (v.state == cache_state::absent && r.found && r.found->is_active) {
      // Not cached (a change fenced it, or negatives are not cached): the read itself is the
      // answer, once.
      f->url = r.found->url;
    }
  }
  f->done = true;
  flights_.erase(key);
  update_gauges();
  f->finished.notify_all();
  if (flights_.empty())
    flights_ended_.notify_all();
}

void route_resolver::apply(const route_event& event) {
  cache_.apply(event, now_());
  invalidations_.inc();
  update_gauges();
}

void route_resolver::invalidate(const route_key& key, std::int64_t version) {
  cache_.invalidate(key, version);
  invalidations_.inc();
  update_gauges();
}

void route_resolver::clear(std::int64_t version) {
  cache_.clear(version);
  clears_.inc();
  update_gauges();
}

asio::awaitable<void> route_resolver::stop() {
  stopping_ = true;
  while (!flights_.empty())
    co_await flights_ended_.wait_until(async_event::clock::time_point::max());
}

}  // namespace sluice::routing
