#pragma once

#include <map>
#include <memory>
#include <string>

#include "sluice/core/async_event.hpp"
#include "sluice/delivery/circuit_breaker.hpp"
#include "sluice/metrics/registry.hpp"

namespace sluice::delivery {

// The circuit breakers of this instance, one per target host:port, shared by every
// subscription delivering there (a target that is down is down for all of them). Each breaker's
// state is the gauge sluice_delivery_circuit_state{target} (0 closed, 1 open, 2 half_open).
// changed() wakes the deliveries waiting for a probe slot. Loop-thread only.
class breaker_board {
 public:
  using clock = circuit_breaker::clock;

  breaker_board(metrics::registry& metrics, breaker_options options);
  breaker_board(const breaker_board&) = delete;
  breaker_board& operator=(const breaker_board&) = delete;

  static std::string key_of(const std::string& host, std::uint16_t port);

  circuit_breaker::admission admit(const std::string& target, clock::time_point now);
  void on_success(const std::string& target, clock::time_point now);
  void on_failure(const std::string& target, clock::time_point now);
  void release_probe(const std::string& target);

  breaker_state state(const std::string& target) const;
  // While open: when the next probe may go. time_point::min() for a breaker never used.
  clock::time_point probe_at(const std::string& target) const;
  async_event& changed() { return changed_; }

 private:
  circuit_breaker& get(const std::string& target);
  void publish(const std::string& target, breaker_state before, const circuit_breaker& b);

  breaker_options options_;
  metrics::family<metrics::gauge>& state_gauge_;
  metrics::family<metrics::counter>& transitions_;
  std::map<std::string, circuit_breaker, std::less<>> breakers_;
  async_event changed_;
};

}  // namespace sluice::delivery
