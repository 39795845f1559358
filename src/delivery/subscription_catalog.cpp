#include "sluice/delivery/subscription_catalog.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace sluice::delivery {
namespace asio = boost::asio;

namespace {

sluice::store::pool_options catalog_pool(sluice::store::pool_options o) {
  o.max_connections = 2;
  return o;
}

}  // namespace

subscription_catalog::subscription_catalog(asio::any_io_executor executor,
                                           metrics::registry& metrics,
                                           subscription_catalog_options options)
    : executor_(executor),
      options_(std::move(options)),
      pool_(executor, catalog_pool(options_.pool)),
      store_(pool_),
      follower_(executor, registry_, options_.follower, metrics) {}

subscription_catalog::~subscription_catalog() {
  follower_.stop();
  pool_.shutdown();
}

void subscription_catalog::start() {
  if (started_)
    return;
  started_ = true;
  asio::co_spawn(executor_, follower_.run(), asio::detached);
}

void subscription_catalog::schema_ready() {
  follower_.poke();
}

asio::awaitable<void> subscription_catalog::stop() {
  if (stopped_)
    co_return;
  stopped_ = true;
  follower_.stop();
  if (started_)
    co_await follower_.wait_stopped();
  pool_.shutdown();
}

}  // namespace sluice::delivery
