#include "sluice/delivery/breaker_board.hpp"

#include <spdlog/spdlog.h>

namespace sluice::delivery {

breaker_board::breaker_board(metrics::registry& metrics, breaker_options options)
    : options_(options),
      state_gauge_(metrics.add_gauge("sluice_delivery_circuit_state",
                                     "Circuit breaker of a delivery target (host:port): 0 closed, "
                                     "1 open (deliveries wait or are deferred), 2 half_open (one "
                                     "probe in flight).",
                                     {"target"})),
      transitions_(metrics.add_counter("sluice_delivery_circuit_transitions_total",
                                       "Circuit breaker state changes, by target and new state.",
                                       {"target", "state"})) {}

std::string breaker_board::key_of(const std::string& host, std::uint16_t port) {
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

circuit_breaker& breaker_board::get(const std::string& target) {
  auto it = breakers_.find(target);
  if (it == breakers_.end()) {
    it = breakers_.emplace(target, circuit_breaker(options_)).first;
    state_gauge_.with({target}).set(0);
  }
  return it->second;
}

void breaker_board::publish(const std::string& target, breaker_state before,
                            const circuit_breaker& b) {
  if (b.state() == before)
    return;
  state_gauge_.with({target}).set(static_cast<double>(static_cast<int>(b.state())));
  transitions_.with({target, to_string(b.state())}).inc();
  if (b.state() == breaker_state::open)
    spdlog::warn("delivery: circuit of target {} opened (was {})", target, to_string(before));
  else
    spdlog::info("delivery: circuit of target {} is {} (was {})", target, to_string(b.state()),
                 to_string(before));
  changed_.notify_all();
}

circuit_breaker::admission breaker_board::admit(const std::string& target, clock::time_point now) {
  auto& b = get(target);
  const auto before = b.state();
  const auto a = b.admit(now);
  publish(target, before, b);
  return a;
}

void breaker_board::on_success(const std::string& target, clock::time_point now) {
  auto& b = get(target);
  const auto before = b.state();
  b.on_success(now);
  publish(target, before, b);
}

void breaker_board::on_failure(const std::string& target, clock::time_point now) {
  auto& b = get(target);
  const auto before = b.state();
  b.on_failure(now);
  publish(target, before, b);
}

void breaker_board::release_probe(const std::string& target) {
  auto& b = get(target);
  const auto before = b.state();
  b.release_probe();
  publish(target, before, b);
  // A released probe slot is news even without a state change: a waiter may take it.
  changed_.notify_all();
}

breaker_state breaker_board::state(const std::string& target) const {
  const auto it = breakers_.find(target);
  return it == breakers_.end() ? breaker_state::closed : it->second.state();
}

breaker_board::clock::time_point breaker_board::probe_at(const std::string& target) const {
  const auto it = breakers_.find(target);
  return it == breakers_.end() ? clock::time_point::min() : it->second.probe_at();
}

}  // namespace sluice::delivery
