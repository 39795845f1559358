#include "sluice/worker/batch_assembler.hpp"

#include <algorithm>

#include "sluice/worker/forward_outcome.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::worker {
namespace asio = boost::asio;

batch_assembler::batch_assembler(asio::any_io_executor executor, batch_limits limits, sender send)
    : executor_(executor),
      limits_(limits),
      send_(std::move(send)),
      tasks_(std::move(executor), "batch") {
  limits_.max_requests = std::max<std::size_t>(limits_.max_requests, 1);
}

batch_assembler::~batch_assembler() = default;

std::size_t batch_assembler::open_requests() const {
  return open_ ? open_->items.size() : 0;
}

asio::awaitable<rpc::rpc_reply> batch_assembler::submit(item request) {
  if (stopped_)
    co_return error_reply(503, "worker_stopping", "the worker is stopping");
  if (open_ && open_->ids.contains(request.correlation_id))
    flush();
  if (!open_) {
    open_ = std::make_shared<batch>(executor_);
    open_->timer.expires_after(limits_.max_wait);
    tasks_.spawn(time_out(open_));
  }
  auto s = std::make_shared<slot>();
  open_->ids.insert(request.correlation_id);
  open_->items.push_back(std::move(request));
  open_->slots.push_back(s);
  if (open_->items.size() >= limits_.max_requests)
    flush();
  while (!s->reply)
    co_await s->ready.wait_until(clock::time_point::max());
  co_return std::move(*s->reply);
}

void batch_assembler::flush() {
  if (!open_)
    return;
  auto b = std::move(open_);
  open_.reset();
  b->timer.cancel();
  ++in_flight_;
  ++sent_;
  tasks_.spawn(send(std::move(b)));
}

asio::awaitable<void> batch_assembler::time_out(std::shared_ptr<batch> b) {
  auto [ec] = co_await b->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  // Cancelled: this batch was sent by its size (or the assembler stopped).
  if (!ec && open_ == b)
    flush();
}

asio::awaitable<void> batch_assembler::send(std::shared_ptr<batch> b) {
  struct in_flight_guard {
    std::size_t& n;
    ~in_flight_guard() { --n; }
  } guard{in_flight_};
  clock::time_point deadline = clock::time_point::min();
  for (const auto& i : b->items)
    deadline = std::max(deadline, i.deadline);
  auto replies = co_await send_(b->items, deadline);
  if (replies.size() != b->items.size())
    replies.assign(b->items.size(),
                   error_reply(502, upstream_bad_batch, "the batch sender returned another count"));
  for (std::size_t i = 0; i < b->slots.size(); ++i) {
    b->slots[i]->reply = std::move(replies[i]);
    b->slots[i]->ready.notify_all();
  }
}

asio::awaitable<void> batch_assembler::stop(clock::time_point deadline) {
  stopped_ = true;
  if (open_) {
    open_->timer.cancel();
    open_.reset();
  }
  tasks_.cancel_all();
  co_await tasks_.wait(deadline);
}

}  // namespace sluice::worker
