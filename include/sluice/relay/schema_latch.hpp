#pragma once

#include <functional>

#include "sluice/core/async_event.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::relay {

// Opens once the schema is migrated (the push service applies the migrations); the relay's
// PostgreSQL loops wait on it instead of each polling the condition. Never closes again.
class schema_latch {
 public:
  // `ready` empty: open from the start.
  explicit schema_latch(std::function<bool()> ready);
  schema_latch(const schema_latch&) = delete;
  schema_latch& operator=(const schema_latch&) = delete;

  bool open() const { return open_; }
  // Until open or stopped.
  boost::asio::awaitable<void> wait();

  // Looks at `ready` again: the push service calls this (through relay_service) when the
  // schema is migrated, so nothing polls.
  void poke();
  // Until open (a poke that finds `ready` true) or stop().
  boost::asio::awaitable<void> run();
  void stop();

 private:
  std::function<bool()> ready_;
  bool open_ = false;
  bool stopping_ = false;
  async_event changed_;  // opened, or stopping
};

}  // namespace sluice::relay
