#pragma once

#include <vector>

#include "sluice/core/message.hpp"

namespace sluice::push {

// Receives every message the push path has just committed to PostgreSQL as a new row (not the
// duplicates), straight from memory, in commit order: the RabbitMQ relay publishes them without
// polling. Must not block; it may drop what it cannot take, because PostgreSQL stays the source
// of truth and a sweeper finds rows nobody published.
class stored_sink {
 public:
  virtual ~stored_sink() = default;
  virtual void stored(std::vector<message> batch) = 0;
};

}  // namespace sluice::push
