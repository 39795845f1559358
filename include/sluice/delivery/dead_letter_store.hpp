#pragma once

#include <system_error>

#include "sluice/delivery/dead_letter.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::delivery {

// sluice_dead_letters (migration 6) and the re-drives out of it.
class dead_letter_store {
 public:
  explicit dead_letter_store(store::pg_pool& pool);

  // Writes the dead letter (a redelivered message dead-lettered again replaces its row) and, in
  // the same transaction, deletes the message's retry row of this subscription if one exists.
  // Called before the RabbitMQ delivery is acked.
  boost::asio::awaitable<std::error_code> insert(const dead_letter& d,
                                                 store::clock::time_point deadline);

 private:
  store::pg_pool& pool_;
};

}  // namespace sluice::delivery
