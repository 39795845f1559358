#include "sluice/delivery/subscription.hpp"

#include <tuple>

namespace sluice::delivery {
namespace {

auto spec_of(const subscription& s) {
  return std::tie(s.queue, s.name, s.url, s.method, s.headers, s.timeout, s.concurrency,
                  s.retry.max_attempts, s.retry.initial_backoff, s.retry.max_backoff,
                  s.rate_limit_per_sec, s.secrets, s.ordering, s.paused, s.route);
}

bool same_batch(const std::optional<batch_spec>& a, const std::optional<batch_spec>& b) {
  if (a.has_value() != b.has_value())
    return false;
  return !a || (a->max_items == b->max_items && a->max_wait == b->max_wait && a->url == b->url);
}

}  // namespace

bool subscription::same_as(const subscription& other) const {
  return spec_of(*this) == spec_of(other) && same_batch(batch, other.batch);
}

std::string consume_queue(std::string_view queue, std::string_view name, bool broadcast) {
  std::string out = "sluice.";
  out += queue;
  if (broadcast) {
    out += '~';
    out += name;
  }
  return out;
}

}  // namespace sluice::delivery
