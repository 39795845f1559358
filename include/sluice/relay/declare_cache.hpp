#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "sluice/relay/queue_mode.hpp"

namespace sluice::relay {

// What the relay declared on the current AMQP connection (queues for queue mode, fanout
// exchanges for broadcast), and which declares the broker refused recently. Declarations live
// as long as the connection: a new one (a reconnect) starts from nothing. A refusal is kept for
// a while, so the rows of a queue the broker will not take do not cost a declare each.
class declare_cache {
 public:
  using clock = std::chrono::steady_clock;

  // Forgets every declaration when `generation`/`connection` name another connection than the
  // last call; true if they did.
  bool sync(std::uint64_t generation, const void* connection);
  std::uint64_t generation() const { return generation_; }
  bool is_current(std::uint64_t generation, const void* connection) const {
    return generation == generation_ && connection == connection_;
  }

  bool contains(std::string_view name, queue_mode mode) const;
  void insert(std::string name, queue_mode mode);
  // The broker lost a queue (basic.return) or definitions (404): declare again.
  void forget_queues() { queues_.clear(); }
  void forget_all();

  // True while a refusal of this declare runs; an expired one is forgotten.
  bool refused(std::string_view name, queue_mode mode, clock::time_point now);
  void refuse(std::string_view name, queue_mode mode, clock::time_point until);
  std::size_t refusals() const { return refused_until_.size(); }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using name_set = std::unordered_set<std::string, string_hash, std::equal_to<>>;

  static std::string refusal_key(std::string_view name, queue_mode mode);

  name_set queues_;
  name_set exchanges_;
  std::uint64_t generation_ = 0;
  const void* connection_ = nullptr;
  std::unordered_map<std::string, clock::time_point> refused_until_;
};

}  // namespace sluice::relay
