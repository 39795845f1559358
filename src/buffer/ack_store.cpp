#include "sluice/buffer/ack_store.hpp"

namespace sluice::buffer::detail {

bool ack_store::offer(const record_position& position) {
  std::lock_guard lock(mutex_);
  newest_ = position;
  if (queued_)
    return false;
  queued_ = true;
  return true;
}

std::error_code ack_store::store_newest() {
  record_position position;
  {
    std::lock_guard lock(mutex_);
    position = newest_;
    queued_ = false;
  }
  return file_.store(position);
}

}  // namespace sluice::buffer::detail
