#include "sluice/proxy/reply_waiters.hpp"

namespace sluice::proxy {

const char* to_string(wait_outcome outcome) {
  switch (outcome) {
    case wait_outcome::replied:
      return "replied";
    case wait_outcome::failed:
      return "failed";
    case wait_outcome::timed_out:
      return "timed_out";
    case wait_outcome::disconnected:
      return "disconnected";
  }
  return "unknown";
}

std::shared_ptr<waiter> reply_waiters::add(std::string correlation_id, std::size_t body_bytes,
                                           clock::time_point deadline, refusal* why) {
  refusal refused = refusal::none;
  if (entries_.size() >= limits_.max_pending)
    refused = refusal::too_many;
  else if (!entries_.empty() && bytes_ + body_bytes > limits_.max_bytes)
    refused = refusal::too_many_bytes;
  if (why)
    *why = refused;
  if (refused != refusal::none)
    return nullptr;
  auto w = std::make_shared<waiter>(correlation_id, body_bytes, deadline);
  const auto [it, inserted] = entries_.emplace(std::move(correlation_id), w);
  if (!inserted)  // correlation ids are fresh uuids: a clash is a bug of the caller
    return nullptr;
  bytes_ += body_bytes;
  changed();
  return w;
}

bool reply_waiters::deliver(std::string_view correlation_id, rpc::rpc_reply reply) {
  const auto it = entries_.find(std::string(correlation_id));
  if (it == entries_.end() || it->second->reply || it->second->failure) {
    ++late_;
    changed();
    return false;
  }
  it->second->reply = std::move(reply);
  it->second->event.notify_all();
  return true;
}

void reply_waiters::fail(std::string_view correlation_id, http::response r) {
  const auto it = entries_.find(std::string(correlation_id));
  if (it == entries_.end() || it->second->reply || it->second->failure)
    return;
  it->second->failure = std::move(r);
  it->second->event.notify_all();
}

void reply_waiters::remove(const std::shared_ptr<waiter>& w) {
  if (!w || !w->registered)
    return;
  w->registered = false;
  const auto it = entries_.find(w->correlation_id);
  if (it != entries_.end() && it->second == w) {
    entries_.erase(it);
    bytes_ -= w->bytes;
    changed();
  }
}

boost::asio::awaitable<wait_outcome> reply_waiters::wait(const std::shared_ptr<waiter>& w,
                                                         http::client_watch* client) {
  if (client) {
    const std::weak_ptr<waiter> weak = w;
    client->on_close([weak] {
      if (const auto alive = weak.lock())
        alive->event.notify_all();
    });
  }
  wait_outcome outcome = wait_outcome::timed_out;
  for (;;) {
    if (w->reply) {
      outcome = wait_outcome::replied;
      break;
    }
    if (w->failure) {
      outcome = wait_outcome::failed;
      break;
    }
    if (client && client->closed()) {
      outcome = wait_outcome::disconnected;
      break;
    }
    if (clock::now() >= w->deadline) {
      outcome = wait_outcome::timed_out;
      break;
    }
    co_await w->event.wait_until(w->deadline);
  }
  if (client)
    client->on_close({});
  co_return outcome;
}

}  // namespace sluice::proxy
