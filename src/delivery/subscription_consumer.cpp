#include "sluice/delivery/subscription_consumer.hpp"

#include <algorithm>

#include "sluice/amqp/error.hpp"
#include "sluice/core/ascii_lower.hpp"
#include "sluice/delivery/attempt_verdict.hpp"
#include "sluice/delivery/batch_protocol.hpp"
#include "sluice/delivery/retry_delay.hpp"
#include "sluice/delivery/subscription_target.hpp"
#include "sluice/relay/message_format.hpp"
#include "sluice/store/errc.hpp"

#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

namespace sluice::delivery {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using system_clock = std::chrono::system_clock;

namespace {

constexpr milliseconds consume_retry_initial{500};
// Batch mode: how many batches' worth of messages the prefetch lets RabbitMQ hand out at once.
constexpr std::uint32_t batches_prefetched = 3;
constexpr milliseconds consume_retry_max{30'000};

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::optional<std::string_view> header_of(const http::client_response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k.size() == name.size() && ascii_lower(k) == name)
      return std::string_view(v);
  }
  return std::nullopt;
}

bool is_2xx(int status) {
  return status >= 200 && status < 300;
}

std::string random_hex(std::mt19937_64& rng) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (int word = 0; word < 2; ++word) {
    std::uint64_t r = rng();
    for (int i = 0; i < 16; ++i, r >>= 4)
      out += digits[r & 0xf];
  }
  return out;
}

}  // namespace

// A message from the moment it was received until it is acked or handed back: counted as held
// (in flight, lag) for exactly that long.
struct subscription_consumer::held_message
    : std::enable_shared_from_this<subscription_consumer::held_message> {
  held_message(subscription_consumer& c, amqp::delivery delivery, incoming_message message)
      : owner(c), d(std::move(delivery)), in(std::move(message)) {
    held_at = owner.held_.insert(in.message.created_ms);
    owner.last_lag_ms_ = std::max<std::int64_t>(0, unix_ms_now() - in.message.created_ms);
  }
  ~held_message() { owner.held_.erase(held_at); }
  held_message(const held_message&) = delete;
  held_message& operator=(const held_message&) = delete;

  subscription_consumer& owner;
  amqp::delivery d;
  incoming_message in;
  std::multiset<std::int64_t>::iterator held_at;
  partition_gate::ticket ticket = 0;
  clock::time_point received = clock::now();
};

// What one attempt came to, before the verdict.
struct subscription_consumer::attempt_outcome {
  bool cancelled = false;  // stopping before the request went out: left unacked
  bool deferred = false;   // the circuit stays open too long: parked, same attempt number
  system_clock::time_point defer_until{};
  int status = 0;  // 0: no response
  bool timed_out = false;
  bool batch_failed = false;  // the batch as a whole failed: every item retries
  std::string error;
  std::optional<milliseconds> retry_after;
  std::string excerpt;
  double latency_ms = 0;
  std::int64_t attempted_ms = 0;
};

// The batch being filled: its first message set when it goes (max_wait), the last one that
// fills it sends it at once.
struct subscription_consumer::batch {
  std::vector<std::shared_ptr<held_message>> items;
  std::vector<attempt_outcome> results;
  clock::time_point flush_at{};
  bool finished = false;
  async_event full;
  async_event done;
};

delivery_context::delivery_context(asio::any_io_executor ex, std::shared_ptr<amqp::client> client,
                                   http::client& http_client, metrics::registry& registry,
                                   breaker_board& board)
    : executor(std::move(ex)),
      amqp(std::move(client)),
      http(http_client),
      metrics(registry),
      breakers(board) {}

subscription_consumer::subscription_consumer(std::shared_ptr<delivery_context> context,
                                             std::shared_ptr<const subscription> definition,
                                             bool broadcast,
                                             std::shared_ptr<subscription_consumer> predecessor)
    : context_(std::move(context)),
      sub_(std::move(definition)),
      broadcast_(broadcast),
      predecessor_(std::move(predecessor)),
      amqp_queue_(consume_queue(sub_->queue, sub_->name, broadcast_)),
      target_(target_of(*sub_)),
      series_(context_->metrics, sub_->queue),
      limit_(std::max<std::uint32_t>(1, sub_->concurrency)),
      slots_(limit_),
      rate_(sub_->rate_limit_per_sec, std::max(1.0, sub_->rate_limit_per_sec)),
      hold_bound_(std::min(context_->options.max_hold, sub_->timeout)),
      handlers_(context_->executor, "delivery"),
      store_backoff_(context_->options.store_backoff_initial),
      rng_(std::random_device{}()) {
  std::size_t bad = 0;
  keys_ = signing_keys_of(*sub_, &bad);
  if (bad > 0)
    spdlog::error(
        "delivery: subscription {}/{} has {} secret(s) that are not whsec_<base64>; "
        "signing without them",
        sub_->queue, sub_->name, bad);
}

std::string subscription_consumer::target_of(const subscription& s) {
  if (s.batch && s.batch_address)
    return breaker_board::key_of(s.batch_address->host, s.batch_address->port);
  if (s.url.empty())
    return {};
  return breaker_board::key_of(s.address.host, s.address.port);
}

asio::awaitable<bool> subscription_consumer::resolve_target(bool for_batch,
                                                            std::optional<target_address>& to,
                                                            std::string& target,
                                                            attempt_outcome& out) {
  subscription_target t = co_await choose_subscription_target(context_->routes, *sub_, for_batch);
  if (!t.error.empty()) {
    // Not the target's failure: the breaker and the concurrency limit learn nothing from it.
    out.attempted_ms = unix_ms_now();
    out.error = std::move(t.error);
    if (const auto suppressed = log_throttle_.admit())
      spdlog::warn("delivery: {}/{} has no target ({}); the delivery is retried{}", sub_->queue,
                   sub_->name, out.error,
                   *suppressed ? fmt::format(" ({} similar lines suppressed)", *suppressed) : "");
    co_return false;
  }
  target = breaker_board::key_of(t.address.host, t.address.port);
  // status() and the breakers' clean-up follow the target in use.
  target_ = target;
  to = std::move(t.address);
  co_return true;
}

asio::awaitable<bool> subscription_consumer::recheck_target(bool for_batch,
                                                            std::optional<target_address>& to,
                                                            std::string& target,
                                                            clock::time_point hold_until,
                                                            attempt_outcome& out, bool& probe) {
  std::optional<target_address> now_to;
  std::string now_target;
  const bool resolved = co_await resolve_target(for_batch, now_to, now_target, out);
  if (!resolved)
    co_return false;
  to = std::move(now_to);
  if (now_target == target)
    co_return true;
  // The admission was the old target's. Waiting for the new one's holds the slot meanwhile;
  // that only happens when the route moved during the wait.
  if (probe) {
    context_->breakers.release_probe(target);
    probe = false;
  }
  target = std::move(now_target);
  const bool admitted = co_await admit(target, hold_until, out, probe);
  co_return admitted;
}

subscription_consumer::~subscription_consumer() {
  // Before held_: a held message removes itself from it.
  waiting_.clear();
  open_batch_.reset();
}

void subscription_consumer::stop() {
  if (stopping_)
    return;
  stopping_ = true;
  stop_deadline_ = clock::now() + context_->options.stop_grace;
  event_.notify_all();
  context_->breakers.changed().notify_all();
  if (open_batch_)
    open_batch_->full.notify_all();
}

asio::awaitable<void> subscription_consumer::wait_finished() {
  auto self = shared_from_this();
  while (!finished_)
    co_await finished_event_.wait_until(clock::time_point::max());
}

consumer_status subscription_consumer::status() const {
  consumer_status s;
  s.queue = sub_->queue;
  s.name = sub_->name;
  s.amqp_queue = amqp_queue_;
  s.broadcast = broadcast_;
  s.consuming = consuming_;
  s.in_flight = held_.size();
  s.concurrency_limit = limit_.limit();
  s.circuit = to_string(context_->breakers.state(target_));
  s.last_error = last_error_;
  return s;
}

double subscription_consumer::lag_seconds(std::int64_t now_ms) const {
  const std::int64_t ms =
      held_.empty() ? last_lag_ms_ : std::max<std::int64_t>(0, now_ms - *held_.begin());
  return static_cast<double>(ms) / 1000.0;
}

store::clock::time_point subscription_consumer::store_deadline() const {
  return store::clock::now() + context_->options.store_timeout;
}

void subscription_consumer::defer(attempt_outcome& out, clock::duration wait, std::string why) {
  out.deferred = true;
  out.defer_until = system_clock::now() + std::chrono::duration_cast<system_clock::duration>(wait);
  out.attempted_ms = unix_ms_now();
  out.error = std::move(why);
}

asio::awaitable<bool> subscription_consumer::wait_for_rate(clock::time_point hold_until,
                                                           attempt_outcome& out) {
  const auto now = clock::now();
  const auto wait = rate_.reserve(now);
  if (wait <= clock::duration::zero())
    co_return true;
  if (now + wait > hold_until) {
    // Waiting for the token would hold the delivery unacknowledged past the bound: park it until
    // then instead, and leave the token to those that can wait for it.
    rate_.give_back();
    defer(out, wait, "rate limit of " + std::to_string(sub_->rate_limit_per_sec) + "/s");
    co_return false;
  }
  const auto until = now + wait;
  while (!stopping_ && clock::now() < until)
    co_await event_.wait_until(until);
  if (stopping_) {
    out.cancelled = true;
    co_return false;
  }
  co_return true;
}

asio::awaitable<std::error_code> subscription_consumer::declare_topology(
    std::shared_ptr<amqp::channel>& ch) {
  // A 406 (it exists with other arguments) closes the channel: the queue or exchange is there
  // and takes messages as it is, so go on on a fresh channel, as the relay publishes to it.
  const auto mismatch = [this](const char* what, const std::string& name, const amqp::channel& c) {
    spdlog::warn(
        "delivery: {} {} of subscription {}/{} exists with other arguments ({}); consuming it "
        "as it is",
        what, name, sub_->queue, sub_->name, c.reason().to_string());
  };
  amqp::queue_options qo;
  qo.arguments = amqp::queue_arguments(context_->options.queue_type);
  if (!broadcast_) {
    auto [ec, ok] = co_await ch->queue_declare(amqp_queue_, qo);
    if (ec == amqp::reply_code::precondition_failed) {
      mismatch("queue", amqp_queue_, *ch);
      auto [rec, fresh] = co_await context_->amqp->open_channel();
      if (!rec)
        ch = std::move(fresh);
      co_return rec;
    }
    co_return ec;
  }
  const std::string exchange = relay::amqp_name(sub_->queue);
  const amqp::exchange_options eo;
  std::error_code ec = co_await ch->exchange_declare(exchange, "fanout", eo);
  if (ec == amqp::reply_code::precondition_failed) {
    mismatch("exchange", exchange, *ch);
    auto [rec, fresh] = co_await context_->amqp->open_channel();
    if (rec)
      co_return rec;
    ch = std::move(fresh);
    ec = {};
  }
  if (ec)
    co_return ec;
  if (sub_->ordering == ordering::partition)
    qo.arguments.set("x-single-active-consumer", true);
  auto [qec, ok] = co_await ch->queue_declare(amqp_queue_, qo);
  if (qec == amqp::reply_code::precondition_failed) {
    // Typically: ordering changed on an existing queue (x-single-active-consumer cannot be
    // added to a queue). Deleting it would lose its messages; the operator decides.
    mismatch("queue", amqp_queue_, *ch);
    auto [rec, fresh] = co_await context_->amqp->open_channel();
    if (rec)
      co_return rec;
    ch = std::move(fresh);
  } else if (qec) {
    co_return qec;
  }
  co_return co_await ch->queue_bind(amqp_queue_, exchange, "");
}

asio::awaitable<void> subscription_consumer::run() {
  auto self = shared_from_this();
  if (predecessor_) {
    co_await predecessor_->wait_finished();
    predecessor_.reset();
  }
  milliseconds delay = consume_retry_initial;
  const std::weak_ptr<subscription_consumer> weak = weak_from_this();
  const bool ordered = sub_->ordering == ordering::partition;
  std::uint32_t prefetch = sub_->concurrency;
  // Batch mode: room for a few batches (one being answered, the next ones filling), or the next
  // batch only starts to fill once the previous one is answered and acked: with a prefetch of
  // maxItems the bench measured one batch in flight at any concurrency.
  if (sub_->batch) {
    const std::uint64_t batches = std::min<std::uint32_t>(sub_->concurrency, batches_prefetched);
    prefetch = static_cast<std::uint32_t>(std::max<std::uint64_t>(
        prefetch, std::min<std::uint64_t>(65'535, batches * sub_->batch->max_items)));
  }
  const auto prefetch16 =
      static_cast<std::uint16_t>(std::clamp<std::uint32_t>(prefetch, 1, 65'535));
  while (!stopping_) {
    while (!context_->amqp->ready() && !stopping_)
      co_await event_.wait_until(clock::time_point::max());
    if (stopping_)
      break;
    auto [ec, ch] = co_await context_->amqp->open_channel();
    if (!ec)
      ec = co_await declare_topology(ch);
    std::set<std::string> blocked;
    if (!ec && ordered) {
      // The partitions blocked by parked messages are rows: without them, order cannot be kept,
      // so an ordered subscription does not consume while PostgreSQL cannot say.
      if (!context_->retries) {
        ec = make_error_code(store::errc::connection_failed);
      } else {
        auto [bec, parts] = co_await context_->retries->blocked_partitions(sub_->queue, sub_->name,
                                                                           store_deadline());
        ec = bec;
        blocked = std::move(parts);
      }
    }
    if (!ec)
      ec = co_await ch->basic_qos(prefetch16);
    if (!ec) {
      ended_ = false;
      if (ordered)
        gate_.emplace(std::move(blocked));
      // Named, not temporaries inside the co_await: g++ 12 may destroy such temporaries twice.
      amqp::delivery_handler on_delivery = [weak](amqp::delivery d) {
        if (const auto c = weak.lock())
          c->handlers_.spawn(c->handle(std::move(d)), c);
      };
      amqp::consumer_end_handler on_end = [weak](const amqp::close_reason& why) {
        if (const auto c = weak.lock()) {
          c->ended_ = true;
          c->last_error_ = why.to_string();
          c->event_.notify_all();
        }
      };
      const amqp::consume_options options;
      auto [cec, tag] = co_await ch->basic_consume(amqp_queue_, std::move(on_delivery), options,
                                                   std::move(on_end));
      ec = cec;
      if (!ec) {
        delay = consume_retry_initial;
        consuming_ = true;
        last_error_.clear();
        spdlog::info(
            "delivery: consuming queue={} subscription={} amqp_queue={} prefetch={} "
            "target={}{}{}",
            sub_->queue, sub_->name, amqp_queue_, prefetch16,
            sub_->route ? "route " + routing::to_string(*sub_->route) +
                              (sub_->url.empty() && !sub_->batch ? "" : ", fallback " + target_)
                        : target_,
            sub_->batch ? " (batch mode)" : "", ordered ? " (ordered by partition)" : "");
        while (!stopping_ && !ended_ && ch->is_open())
          co_await event_.wait_until(clock::time_point::max());
        consuming_ = false;
        if (stopping_ && ch->is_open() && !ended_)
          co_await ch->basic_cancel(tag);
        if (stopping_) {
          co_await handlers_.wait(stop_deadline_);
        } else {
          spdlog::warn(
              "delivery: consumer of {} (subscription {}/{}) ended reason=\"{}\"; {} deliveries "
              "in flight are left to the broker",
              amqp_queue_, sub_->queue, sub_->name, ch->reason().to_string(), held_.size());
        }
        // Their deliveries can no longer be acked (the channel is gone, or closes now): the
        // broker gives them out again.
        handlers_.cancel_all();
        co_await handlers_.wait(clock::time_point::max());
        waiting_.clear();
        gate_.reset();
        open_batch_.reset();
        if (ch->is_open())
          co_await ch->close();
        continue;
      }
    }
    last_error_ = ch && ch->reason().error ? ch->reason().to_string() : ec.message();
    if (ch && ch->is_open())
      co_await ch->close();
    const auto half = delay.count() / 2;
    std::uniform_int_distribution<std::int64_t> jitter(0, half);
    const auto pause = milliseconds(delay.count() - half + jitter(rng_));
    spdlog::warn("delivery: cannot consume {} (subscription {}/{}) reason=\"{}\" retry_in_ms={}",
                 amqp_queue_, sub_->queue, sub_->name, last_error_, pause.count());
    const auto until = clock::now() + pause;
    while (!stopping_ && clock::now() < until)
      co_await event_.wait_until(until);
    delay = std::min(delay * 2, consume_retry_max);
  }
  handlers_.cancel_all();
  co_await handlers_.wait(clock::time_point::max());
  waiting_.clear();
  open_batch_.reset();
  if (delete_queue_ && broadcast_)
    co_await delete_own_queue();
  finished_ = true;
  finished_event_.notify_all();
}

asio::awaitable<void> subscription_consumer::delete_own_queue() {
  if (!context_->amqp->ready())
    co_return;
  auto [ec, ch] = co_await context_->amqp->open_channel();
  if (ec)
    co_return;
  // Taken over while the channel opened: the queue is the successor's (it waits for this end).
  if (delete_queue_) {
    auto [dec, count] = co_await ch->queue_delete(amqp_queue_);
    if (!dec)
      spdlog::info("delivery: deleted queue {} of a removed subscription ({} messages in it)",
                   amqp_queue_, count);
  }
  if (ch->is_open())
    co_await ch->close();
}

asio::awaitable<void> subscription_consumer::handle(amqp::delivery d) {
  auto self = shared_from_this();
  std::string why;
  auto in = decode_delivery(d, sub_->queue, sub_->name, &why);
  if (!in) {
    d.reject(false);
    series_.malformed.inc();
    if (const auto suppressed = log_throttle_.admit())
      spdlog::warn("delivery: a delivery of {} is no sluice message ({}); rejected{}", amqp_queue_,
                   why,
                   *suppressed ? fmt::format(" ({} similar lines suppressed)", *suppressed) : "");
    co_return;
  }
  auto h = std::make_shared<held_message>(*this, std::move(d), std::move(*in));
  if (!gate_) {
    co_await deliver(*h);
    co_return;
  }
  h->ticket = next_ticket_++;
  const auto step = gate_->arrive(h->in.message.partition, h->ticket, h->in.released);
  if (!step) {
    waiting_.emplace(h->ticket, std::move(h));
    co_return;
  }
  co_await run_step(std::move(h), *step);
}

asio::awaitable<void> subscription_consumer::run_step(std::shared_ptr<held_message> h,
                                                      partition_gate::step s) {
  auto self = shared_from_this();
  settled r = settled::abandoned;
  if (s == partition_gate::step::park_behind) {
    r = co_await park_behind(*h);
  } else if (!stopping_ && clock::now() - h->received > hold_bound_) {
    // It waited in its partition's line (held, unacknowledged) longer than the hold bound: it
    // is parked as its head instead, and the ones behind it are parked behind it.
    attempt_outcome out;
    defer(out, std::chrono::seconds(1), "waited in its partition's line past the hold bound");
    r = co_await settle(*h, out);
  } else {
    r = co_await deliver(*h);
  }
  if (!gate_)
    co_return;
  partition_gate::result gr = partition_gate::result::done;
  switch (r) {
    case settled::acked:
      gr = partition_gate::result::done;
      break;
    case settled::acked_unblocked:
      gr = partition_gate::result::released_none;
      break;
    case settled::parked:
      gr = partition_gate::result::parked;
      break;
    case settled::abandoned:
      gr = partition_gate::result::abandoned;
      break;
  }
  const std::string partition = h->in.message.partition;
  h.reset();
  auto after = gate_->finish(partition, gr);
  for (const auto t : after.abandon) {
    const auto it = waiting_.find(t);
    if (it == waiting_.end())
      continue;
    // Behind a message that went back to RabbitMQ: back too, after it, so none overtakes it.
    // While stopping nothing is handed back: the channel's close returns all, in order.
    if (!stopping_) {
      it->second->d.nack(true);
      series_.requeued_ordering.inc();
    }
    waiting_.erase(it);
  }
  if (after.next) {
    const auto it = waiting_.find(after.next->t);
    if (it != waiting_.end()) {
      auto next = std::move(it->second);
      waiting_.erase(it);
      handlers_.spawn(run_step(std::move(next), after.next->what), self);
    }
  }
}

asio::awaitable<subscription_consumer::settled> subscription_consumer::deliver(held_message& h) {
  const attempt_outcome o = co_await attempt(h);
  if (o.cancelled)
    co_return settled::abandoned;
  co_return co_await settle(h, o);
}

asio::awaitable<subscription_consumer::settled> subscription_consumer::park_behind(
    held_message& h) {
  if (stopping_)
    co_return settled::abandoned;
  std::error_code ec = make_error_code(store::errc::connection_failed);
  if (context_->retries)
    ec = co_await context_->retries->park_behind(h.in.message, store_deadline());
  if (ec)
    co_return co_await give_back(h, "park behind its partition's head", ec);
  stored_ok();
  h.d.ack();
  co_return settled::acked;
}

asio::awaitable<subscription_consumer::attempt_outcome> subscription_consumer::attempt(
    held_message& h) {
  if (stopping_) {
    attempt_outcome out;
    out.cancelled = true;
    co_return out;
  }
  if (sub_->batch)
    co_return co_await join_batch(h);
  co_return co_await send_one(h);
}

asio::awaitable<bool> subscription_consumer::admit(const std::string& target,
                                                   clock::time_point bound, attempt_outcome& out,
                                                   bool& probe) {
  breaker_board& board = context_->breakers;
  while (true) {
    if (stopping_) {
      out.cancelled = true;
      co_return false;
    }
    const auto now = clock::now();
    const auto a = board.admit(target, now);
    if (a == circuit_breaker::admission::allowed)
      co_return true;
    if (a == circuit_breaker::admission::probe) {
      probe = true;
      co_return true;
    }
    clock::time_point wake = bound;
    const auto probe_at = board.probe_at(target);
    if (board.state(target) == breaker_state::open && probe_at < bound)
      wake = probe_at;
    if (now >= bound || (board.state(target) == breaker_state::open && probe_at >= bound)) {
      // Holding the delivery longer would keep it unacknowledged past the bound: park it until
      // the probe could go (at least a second: a half-open probe's outcome is not known yet).
      defer(out, std::max<clock::duration>(probe_at - now, std::chrono::seconds(1)),
            "circuit of " + target + " is " + to_string(board.state(target)));
      co_return false;
    }
    co_await board.changed().wait_until(wake);
  }
}

asio::awaitable<bool> subscription_consumer::take_slot(clock::time_point hold_until,
                                                       attempt_outcome& out) {
  // The AIMD limit bounds requests in flight; the prefetch (the subscription's concurrency)
  // bounds the messages held. Once the limit shrank below the prefetch the ones held wait for
  // a slot, unacknowledged: at most until the hold bound, then they are parked.
  if (co_await slots_.acquire(hold_until))
    co_return true;
  const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() != asio::cancellation_type::none)
    throw boost::system::system_error(asio::error::operation_aborted);
  if (stopping_) {
    out.cancelled = true;
    co_return false;
  }
  defer(out, std::chrono::seconds(1),
        "no request slot within the hold bound (concurrency limit " +
            std::to_string(limit_.limit()) + ")");
  co_return false;
}

void subscription_consumer::release_slot() {
  slots_.release();
}

void subscription_consumer::learn(const std::string& target, const attempt_outcome& o, bool) {
  const auto now = clock::now();
  // The breaker asks "is the target there?": a 4xx is an answer, so it counts as a success, and
  // so does a 2xx whose body is not a batch answer (its items retry, the target is there).
  if (classify(o.status) == verdict::retry)
    context_->breakers.on_failure(target, now);
  else
    context_->breakers.on_success(target, now);
  if (is_2xx(o.status) && !o.batch_failed)
    limit_.on_success();
  if (is_overload(o.status, o.timed_out))
    limit_.on_overload(now);
  slots_.limit_changed();
}

namespace {

// Gives an unused probe back when the attempt ends without an outcome (cancelled, stopping).
struct probe_guard {
  breaker_board& board;
  const std::string& target;
  bool armed;
  ~probe_guard() {
    if (armed)
      board.release_probe(target);
  }
};

template <class Release>
struct slot_guard {
  Release release;
  bool armed = true;
  void done() {
    if (armed) {
      armed = false;
      release();
    }
  }
  ~slot_guard() { done(); }
};

}  // namespace

asio::awaitable<subscription_consumer::attempt_outcome> subscription_consumer::send_one(
    held_message& h) {
  attempt_outcome out;
  std::optional<target_address> to;
  std::string target = target_;
  if (sub_->route) {
    const bool resolved = co_await resolve_target(false, to, target, out);
    if (!resolved)
      co_return out;
  }
  // Everything before the request goes out waits at most this long (README: no delivery stays
  // unacknowledged longer than its timeout plus this bound).
  const auto hold_until = clock::now() + hold_bound_;
  if (!co_await wait_for_rate(hold_until, out))
    co_return out;
  bool probe = false;
  if (!co_await admit(target, hold_until, out, probe))
    co_return out;
  probe_guard pg{context_->breakers, target, probe};
  if (!co_await take_slot(hold_until, out))
    co_return out;
  const auto release = [this] { release_slot(); };
  slot_guard<decltype(release)> slot{release};
  if (stopping_) {
    out.cancelled = true;
    co_return out;
  }
  if (sub_->route) {
    // The guard's flag itself: a cancellation inside must find it naming the probe held now.
    const bool still = co_await recheck_target(false, to, target, hold_until, out, pg.armed);
    probe = pg.armed;
    if (!still)
      co_return out;
  }
  http::client_request request =
      compose_delivery(*sub_, keys_, h.in, unix_ms_now() / 1000, rng_(), to ? &*to : nullptr);
  const auto started = clock::now();
  out.attempted_ms = unix_ms_now();
  auto [ec, response] = co_await context_->http.send(std::move(request), started + sub_->timeout);
  slot.done();
  out.latency_ms = std::chrono::duration<double, std::milli>(clock::now() - started).count();
  if (ec == http::client_errc::cancelled)
    throw boost::system::system_error(asio::error::operation_aborted);
  series_.duration.observe(out.latency_ms / 1000.0);
  if (ec) {
    out.timed_out = ec == http::client_errc::timeout;
    out.error = ec.message();
  } else {
    out.status = response.status;
    if (const auto ra = header_of(response, "retry-after"))
      out.retry_after = parse_retry_after(*ra, system_clock::now());
    if (!is_2xx(response.status))
      out.excerpt = excerpt_of(response.body);
  }
  pg.armed = false;
  learn(target, out, probe);
  co_return out;
}

asio::awaitable<subscription_consumer::attempt_outcome> subscription_consumer::join_batch(
    held_message& h) {
  auto self = shared_from_this();
  if (!open_batch_) {
    open_batch_ = std::make_shared<batch>();
    open_batch_->flush_at = clock::now() + sub_->batch->max_wait;
    handlers_.spawn(flush_batch(open_batch_), self);
  }
  const auto b = open_batch_;
  const std::size_t index = b->items.size();
  b->items.push_back(h.shared_from_this());
  if (b->items.size() >= std::max<std::uint32_t>(1, sub_->batch->max_items)) {
    open_batch_.reset();
    b->full.notify_all();
  }
  while (!b->finished)
    co_await b->done.wait_until(clock::time_point::max());
  co_return b->results.at(index);
}

asio::awaitable<void> subscription_consumer::flush_batch(std::shared_ptr<batch> b) {
  auto self = shared_from_this();
  struct finish_guard {
    batch& b;
    ~finish_guard() {
      // Cancelled: the items' coroutines are cancelled with it; the flag only ends their wait.
      if (b.results.size() < b.items.size()) {
        attempt_outcome cancelled;
        cancelled.cancelled = true;
        b.results.resize(b.items.size(), cancelled);
      }
      b.finished = true;
      b.done.notify_all();
    }
  } guard{*b};
  while (open_batch_ == b && !stopping_ && clock::now() < b->flush_at)
    co_await b->full.wait_until(b->flush_at);
  if (open_batch_ == b)
    open_batch_.reset();

  attempt_outcome common;
  if (stopping_) {
    common.cancelled = true;
    b->results.assign(b->items.size(), common);
    co_return;
  }
  std::optional<target_address> to;
  std::string target = target_;
  if (sub_->route) {
    const bool resolved = co_await resolve_target(true, to, target, common);
    if (!resolved) {
      b->results.assign(b->items.size(), common);
      co_return;
    }
  }
  const auto hold_until = clock::now() + hold_bound_;
  if (!co_await wait_for_rate(hold_until, common)) {
    b->results.assign(b->items.size(), common);
    co_return;
  }
  bool probe = false;
  if (!co_await admit(target, hold_until, common, probe)) {
    b->results.assign(b->items.size(), common);
    co_return;
  }
  probe_guard pg{context_->breakers, target, probe};
  if (!co_await take_slot(hold_until, common)) {
    b->results.assign(b->items.size(), common);
    co_return;
  }
  const auto release = [this] { release_slot(); };
  slot_guard<decltype(release)> slot{release};
  if (stopping_) {
    common.cancelled = true;
    b->results.assign(b->items.size(), common);
    co_return;
  }
  if (sub_->route) {
    // The guard's flag itself: a cancellation inside must find it naming the probe held now.
    const bool still = co_await recheck_target(true, to, target, hold_until, common, pg.armed);
    probe = pg.armed;
    if (!still) {
      b->results.assign(b->items.size(), common);
      co_return;
    }
  }
  std::vector<batch_item> items;
  std::vector<std::string> ids;
  items.reserve(b->items.size());
  ids.reserve(b->items.size());
  for (const auto& h : b->items) {
    batch_item it;
    it.id = h->in.message.message_id.to_string();
    it.partition = h->in.message.partition;
    it.attempt = h->in.message.attempt;
    it.payload = &h->in.message.payload;
    ids.push_back(it.id);
    items.push_back(std::move(it));
  }
  http::client_request request =
      compose_batch(*sub_, keys_, encode_batch(sub_->queue, items), items.size(),
                    "batch_" + random_hex(rng_), unix_ms_now() / 1000, to ? &*to : nullptr);
  const auto started = clock::now();
  common.attempted_ms = unix_ms_now();
  auto [ec, response] = co_await context_->http.send(std::move(request), started + sub_->timeout);
  slot.done();
  common.latency_ms = std::chrono::duration<double, std::milli>(clock::now() - started).count();
  if (ec == http::client_errc::cancelled)
    throw boost::system::system_error(asio::error::operation_aborted);
  series_.duration.observe(common.latency_ms / 1000.0);
  std::optional<std::vector<int>> statuses;
  if (ec) {
    common.timed_out = ec == http::client_errc::timeout;
    common.error = "batch: " + ec.message();
    common.batch_failed = true;
  } else {
    common.status = response.status;
    if (const auto ra = header_of(response, "retry-after"))
      common.retry_after = parse_retry_after(*ra, system_clock::now());
    if (!is_2xx(response.status)) {
      common.batch_failed = true;
      common.excerpt = excerpt_of(response.body);
      common.error = "batch answered " + std::to_string(response.status);
    } else {
      std::string why;
      statuses = parse_batch_response(response.body, ids, &why);
      if (!statuses) {
        common.batch_failed = true;
        common.excerpt = excerpt_of(response.body);
        common.error = "bad batch response: " + why;
      }
    }
  }
  if (common.batch_failed) {
    if (const auto suppressed = log_throttle_.admit())
      spdlog::warn("delivery: batch of {} to {} for {}/{} failed ({}); every item is retried{}",
                   items.size(), target, sub_->queue, sub_->name, common.error,
                   *suppressed ? fmt::format(" ({} similar lines suppressed)", *suppressed) : "");
  }
  pg.armed = false;
  learn(target, common, probe);
  if (!statuses) {
    b->results.assign(b->items.size(), common);
    co_return;
  }
  b->results.clear();
  for (const int s : *statuses) {
    attempt_outcome o = common;
    o.status = s;
    if (is_2xx(s))
      o.retry_after.reset();
    b->results.push_back(std::move(o));
  }
}

asio::awaitable<subscription_consumer::settled> subscription_consumer::settle(
    held_message& h, const attempt_outcome& o) {
  const parked_message& m = h.in.message;
  const std::int64_t first_ms =
      m.first_attempt_ms.value_or(o.attempted_ms > 0 ? o.attempted_ms : unix_ms_now());
  if (o.deferred || classify(o.status) == verdict::retry || o.batch_failed) {
    if (!o.deferred && m.attempt >= sub_->retry.max_attempts)
      co_return co_await dead_letter(h, o,
                                     o.batch_failed ? "bad_batch_response" : "attempts_exhausted");
    parked_message next = m;
    system_clock::time_point due = o.defer_until;
    if (!o.deferred) {
      next.attempt = m.attempt + 1;
      next.first_attempt_ms = first_ms;
      due = system_clock::now() + retry_delay(sub_->retry, m.attempt, o.retry_after,
                                              context_->options.retry_after_max, rng_());
    } else if (m.first_attempt_ms) {
      next.first_attempt_ms = m.first_attempt_ms;
    }
    std::error_code ec = make_error_code(store::errc::connection_failed);
    if (context_->retries)
      ec = co_await context_->retries->park(next, due, store_deadline());
    if (ec) {
      record(h, o, "retry");
      co_return co_await give_back(h, "park it for a retry", ec);
    }
    stored_ok();
    record(h, o, o.deferred ? "deferred" : "retry");
    if (context_->on_parked)
      context_->on_parked(due);
    h.d.ack();
    co_return settled::parked;
  }
  switch (classify(o.status)) {
    case verdict::delivered:
      record(h, o, "delivered");
      co_return co_await finish_acked(h);
    case verdict::gone:
      co_return co_await dead_letter(h, o, "gone");
    case verdict::dead_letter:
    case verdict::retry:
      break;
  }
  co_return co_await dead_letter(h, o, "rejected");
}

asio::awaitable<subscription_consumer::settled> subscription_consumer::dead_letter(
    held_message& h, const attempt_outcome& o, const char* reason) {
  const parked_message& m = h.in.message;
  delivery::dead_letter d;
  d.message = m;
  d.reason = reason;
  if (o.status != 0)
    d.last_status = o.status;
  d.last_attempt_ms = o.attempted_ms > 0 ? o.attempted_ms : unix_ms_now();
  d.first_attempt_ms = m.first_attempt_ms.value_or(d.last_attempt_ms);
  d.response_excerpt = o.excerpt.empty() ? excerpt_of(o.error) : o.excerpt;
  std::error_code ec = make_error_code(store::errc::connection_failed);
  if (context_->dead_letters)
    ec = co_await context_->dead_letters->insert(d, store_deadline());
  if (ec) {
    record(h, o, "retry");
    co_return co_await give_back(h, "dead-letter it", ec);
  }
  const bool is_gone = std::string_view(reason) == "gone";
  if (is_gone) {
    subscription_change_result r;
    r.status.ec = make_error_code(store::errc::connection_failed);
    if (context_->subscriptions)
      r = co_await context_->subscriptions->set_paused(
          sub_->queue, sub_->name, true, "gone: " + std::to_string(o.status), store_deadline());
    if (r.status) {
      record(h, o, "retry");
      co_return co_await give_back(h, "pause the subscription after a 410", r.status.ec);
    }
    // Stop at once: every further delivery would only be another 410.
    gone_ = true;
    spdlog::warn(
        "delivery: subscription {}/{} paused: its target {} answered 410 Gone (message {}); "
        "resume it with POST /api/v1/queues/{}/subscriptions/{}/resume",
        sub_->queue, sub_->name, target_, m.message_id.to_string(), sub_->queue, sub_->name);
    stop();
  }
  stored_ok();
  record(h, o, "dead_lettered");
  series_.families.dead_letters.with({sub_->queue, reason}).inc();
  co_return co_await finish_acked(h);
}

asio::awaitable<subscription_consumer::settled> subscription_consumer::finish_acked(
    held_message& h) {
  if (gate_ && h.in.released) {
    // The head of its partition is done: the next one behind it becomes due before the ack, so
    // a crash in between repeats this delivery rather than leaving the partition blocked.
    std::tuple<std::error_code, bool> r{make_error_code(store::errc::connection_failed), false};
    if (context_->retries)
      r = co_await context_->retries->release_next(sub_->queue, sub_->name, h.in.message.partition,
                                                   store_deadline());
    if (std::get<0>(r))
      co_return co_await give_back(h, "release the next message of its partition", std::get<0>(r));
    stored_ok();
    h.d.ack();
    co_return std::get<1>(r) ? settled::acked : settled::acked_unblocked;
  }
  h.d.ack();
  co_return settled::acked;
}

asio::awaitable<subscription_consumer::settled> subscription_consumer::give_back(
    held_message& h, const char* what, const std::error_code& ec) {
  series_.requeued_store.inc();
  if (const auto suppressed = log_throttle_.admit())
    spdlog::warn(
        "delivery: PostgreSQL could not {} (message {} of {}/{}): {}; it goes back to RabbitMQ "
        "in {} ms{}",
        what, h.in.message.message_id.to_string(), sub_->queue, sub_->name, ec.message(),
        store_backoff_.count(),
        *suppressed ? fmt::format(" ({} similar lines suppressed)", *suppressed) : "");
  // Held meanwhile (the prefetch bounds how many), so a database that is down is not spun on.
  const auto until = clock::now() + store_backoff_;
  store_backoff_ = std::min(store_backoff_ * 2, context_->options.store_backoff_max);
  while (!stopping_ && clock::now() < until)
    co_await event_.wait_until(until);
  if (!stopping_)
    h.d.nack(true);
  co_return settled::abandoned;
}

void subscription_consumer::record(const held_message& h, const attempt_outcome& o,
                                   const char* outcome) {
  const std::string_view what(outcome);
  if (what == "delivered")
    series_.delivered.inc();
  else if (what == "retry")
    series_.retry.inc();
  else if (what == "dead_lettered")
    series_.dead_lettered.inc();
  else if (what == "deferred")
    series_.deferred.inc();
  if (!context_->recorder)
    return;
  attempt_record r;
  r.message_id = h.in.message.message_id;
  r.queue = sub_->queue;
  r.subscription = sub_->name;
  r.attempt = h.in.message.attempt;
  r.attempted_ms = o.attempted_ms > 0 ? o.attempted_ms : unix_ms_now();
  r.outcome = outcome;
  if (o.status != 0)
    r.status = o.status;
  r.latency_ms = o.latency_ms;
  r.error = o.error;
  context_->recorder->record(std::move(r));
}

}  // namespace sluice::delivery
