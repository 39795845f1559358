#include "sluice/amqp/connection.hpp"

#include <algorithm>
#include <exception>
#include <openssl/ssl.h>
#include <tuple>
#include <utility>

#include "sluice/amqp/channel.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace sluice::amqp {

namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

#ifdef SLUICE_VERSION
constexpr const char* client_version = SLUICE_VERSION;
#else
constexpr const char* client_version = "0";
#endif

// How long a closing connection may take to flush its last frames (close-ok) before the socket
// is dropped anyway; a broker that stopped reading must not keep us half-open.
constexpr auto close_linger = std::chrono::seconds(2);

// Spec §4.2.6 / the Java client: 0 from one side means "no limit" there, so the other side's
// value stands; otherwise the lower one wins.
template <class T>
T negotiate(T client, T server) {
  if (client == 0 || server == 0) {
    return std::max(client, server);
  }
  return std::min(client, server);
}

bool offers_plain(std::string_view mechanisms) {
  while (!mechanisms.empty()) {
    const auto space = mechanisms.find(' ');
    if (mechanisms.substr(0, space) == "PLAIN") {
      return true;
    }
    if (space == std::string_view::npos) {
      break;
    }
    mechanisms.remove_prefix(space + 1);
  }
  return false;
}

void log_spawn_failure(std::exception_ptr e, const char* what) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("amqp: {} ended by exception what={}", what, ex.what());
  } catch (...) {
    spdlog::error("amqp: {} ended by unknown exception", what);
  }
}

}  // namespace

std::shared_ptr<connection> connection::create(asio::any_io_executor executor,
                                               connection_options options) {
  return std::shared_ptr<connection>(new connection(std::move(executor), std::move(options)));
}

// amqps://: the broker's certificate verified against RABBITMQ_CA_FILE or the system's store,
// its name checked against the URL's host, TLS 1.2 at least. The stream runs over socket_,
// which stays the object that is shut down and closed; no close_notify is sent, since AMQP's
// own connection.close/close-ok already tells a clean end from a cut one.
struct connection::tls_layer {
  explicit tls_layer(asio::ip::tcp::socket& socket) : stream(socket, context) {}
  asio::ssl::context context{asio::ssl::context::tls_client};
  asio::ssl::stream<asio::ip::tcp::socket&> stream;
};

connection::connection(asio::any_io_executor executor, connection_options options)
    : executor_(executor),
      options_(std::move(options)),
      resolver_(executor),
      socket_(executor),
      heartbeat_timer_(executor),
      watchdog_timer_(executor),
      read_buffer_(128 * 1024) {
  const url& u = options_.server;
  if (u.heartbeat) {
    options_.heartbeat = *u.heartbeat;
  }
  if (u.connection_timeout) {
    options_.connect_timeout = *u.connection_timeout;
  }
  if (u.frame_max) {
    options_.frame_max = *u.frame_max;
  }
  if (u.channel_max) {
    options_.channel_max = *u.channel_max;
  }
  if (options_.frame_max == 0) {
    options_.frame_max = default_frame_max;
  }
  options_.frame_max = std::max(options_.frame_max, frame_min_size);
}

connection::~connection() = default;

void connection::on_blocked(std::function<void(bool)> listener) {
  blocked_listeners_.push_back(std::move(listener));
}

void connection::on_closed(std::function<void(const close_reason&)> listener) {
  closed_listeners_.push_back(std::move(listener));
}

void connection::arm_watchdog(clock::time_point deadline) {
  watchdog_timer_.expires_at(deadline);
  const std::uint64_t generation = ++watchdog_generation_;
  asio::co_spawn(
      executor_,
      [self = shared_from_this(), generation]() -> asio::awaitable<void> {
        auto [ec] = co_await self->watchdog_timer_.async_wait(as_tuple(use_awaitable));
        if (ec || generation != self->watchdog_generation_ || self->socket_closed_) {
          co_return;
        }
        if (self->state_ != state::closed) {
          spdlog::warn("amqp: handshake timed out host={} port={}", self->options_.server.host,
                       self->options_.server.port);
        }
        self->abort(make_error_code(errc::timeout));
      },
      [](std::exception_ptr e) { log_spawn_failure(e, "watchdog"); });
}

asio::awaitable<std::error_code> connection::open() {
  if (state_ != state::created) {
    co_return make_error_code(errc::invalid_argument);
  }
  auto self = shared_from_this();
  state_ = state::connecting;
  const auto deadline = clock::now() + options_.connect_timeout;
  arm_watchdog(deadline);

  auto [rec, endpoints] = co_await resolver_.async_resolve(
      options_.server.host, std::to_string(options_.server.port), as_tuple(use_awaitable));
  if (state_ == state::closed) {
    co_return reason_.error;
  }
  if (rec) {
    abort(rec);
    co_return reason_.error;
  }
  auto [cec, endpoint] = co_await asio::async_connect(socket_, endpoints, as_tuple(use_awaitable));
  if (state_ == state::closed) {
    co_return reason_.error;
  }
  if (cec) {
    abort(cec);
    co_return reason_.error;
  }
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  if (options_.server.tls) {
    const auto tec = co_await start_tls();
    if (state_ == state::closed) {
      co_return reason_.error;
    }
    if (tec) {
      close_reason r;
      r.error = make_error_code(errc::handshake_failed);
      r.reply_text = "TLS with the broker failed: " + tec.message();
      spdlog::warn("amqp: TLS handshake failed host={} port={}: {}", options_.server.host,
                   options_.server.port, tec.message());
      fail(std::move(r));
      close_socket();
      co_return reason_.error;
    }
  }

  last_read_ = last_write_ = clock::now();
  out_.append(protocol_header);
  asio::co_spawn(
      executor_, [self]() -> asio::awaitable<void> { co_await self->read_loop(); },
      [](std::exception_ptr e) { log_spawn_failure(e, "reader"); });
  asio::co_spawn(
      executor_, [self]() -> asio::awaitable<void> { co_await self->write_loop(); },
      [](std::exception_ptr e) { log_spawn_failure(e, "writer"); });

  while (!handshake_done_ && state_ != state::closed) {
    if (co_await state_event_.wait_until(deadline) == async_event::wake::timed_out &&
        !handshake_done_ && state_ != state::closed) {
      abort(make_error_code(errc::timeout));
    }
  }
  if (state_ != state::open) {
    co_return reason_.error ? reason_.error : make_error_code(errc::connection_closed);
  }
  ++watchdog_generation_;
  watchdog_timer_.cancel();
  spdlog::info("amqp: connected host={} port={} vhost={} heartbeat={}s frame_max={} channel_max={}",
               options_.server.host, options_.server.port, options_.server.vhost,
               heartbeat_.count(), frame_max_, channel_max_);
  co_return std::error_code{};
}

asio::awaitable<std::tuple<std::error_code, std::shared_ptr<channel>>> connection::open_channel() {
  auto self = shared_from_this();
  if (state_ != state::open) {
    co_return std::tuple{make_error_code(errc::connection_closed), std::shared_ptr<channel>{}};
  }
  std::uint16_t id = 0;
  const std::uint16_t limit = channel_max_ == 0 ? 65535 : channel_max_;
  for (std::uint32_t tries = 0; tries < limit; ++tries) {
    const std::uint16_t candidate = next_channel_hint_;
    next_channel_hint_ = candidate >= limit ? 1 : static_cast<std::uint16_t>(candidate + 1);
    if (!channels_.contains(candidate)) {
      id = candidate;
      break;
    }
  }
  if (id == 0) {
    co_return std::tuple{make_error_code(errc::channel_limit), std::shared_ptr<channel>{}};
  }
  auto ch = std::make_shared<channel>(weak_from_this(), id, options_.rpc_timeout);
  channels_.emplace(id, ch);
  const auto ec = co_await ch->open();
  if (ec) {
    co_return std::tuple{ec, std::shared_ptr<channel>{}};
  }
  co_return std::tuple{std::error_code{}, std::move(ch)};
}

asio::awaitable<std::error_code> connection::close() {
  auto self = shared_from_this();
  if (state_ == state::closed) {
    co_return std::error_code{};
  }
  if (state_ != state::open) {
    abort(make_error_code(errc::connection_closed));
    co_return std::error_code{};
  }
  flush_channel_acks();
  state_ = state::closing;
  const std::string text = "client closed the connection";
  amqp_connection_close_t args{200, to_amqp_bytes(text), 0, 0};
  if (auto ec = send_method(0, AMQP_CONNECTION_CLOSE_METHOD, &args)) {
    abort(ec);
    co_return ec;
  }
  const auto deadline = clock::now() + options_.rpc_timeout;
  while (state_ != state::closed) {
    if (co_await state_event_.wait_until(deadline) == async_event::wake::timed_out &&
        state_ != state::closed) {
      abort(make_error_code(errc::timeout));
      co_return make_error_code(errc::timeout);
    }
  }
  co_return std::error_code{};
}

void connection::abort(std::error_code why) {
  close_reason r;
  r.error = why;
  fail(std::move(r));
  close_socket();
}

asio::awaitable<bool> connection::wait_closed(clock::time_point deadline) {
  auto self = shared_from_this();
  while (state_ != state::closed) {
    if (co_await state_event_.wait_until(deadline) == async_event::wake::timed_out) {
      co_return state_ == state::closed;
    }
  }
  co_return true;
}

asio::awaitable<std::error_code> connection::start_tls() {
  // The context is made before the handshake (for its CA file) and lives with the stream.
  const std::string& host = options_.server.host;
  try {
    tls_ = std::make_unique<tls_layer>(socket_);
    SSL_CTX* ctx = tls_->context.native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (options_.ca_file.empty())
      tls_->context.set_default_verify_paths();
    else
      tls_->context.load_verify_file(options_.ca_file);
  } catch (const boost::system::system_error& e) {
    spdlog::error("amqp: RABBITMQ_CA_FILE {}: {}", options_.ca_file, e.code().message());
    co_return e.code();
  }
  tls_->stream.set_verify_mode(asio::ssl::verify_peer);
  tls_->stream.set_verify_callback(asio::ssl::host_name_verification(host));
  // SNI carries names only (RFC 6066 3): not for an address literal.
  boost::system::error_code not_address;
  asio::ip::make_address(host, not_address);
  if (not_address)
    SSL_set_tlsext_host_name(tls_->stream.native_handle(), host.c_str());
  auto [ec] = co_await tls_->stream.async_handshake(asio::ssl::stream_base::client,
                                                    as_tuple(use_awaitable));
  co_return ec;
}

asio::awaitable<void> connection::read_loop() {
  while (!socket_closed_) {
    boost::system::error_code ec;
    std::size_t n = 0;
    if (tls_) {
      auto got = co_await tls_->stream.async_read_some(asio::buffer(read_buffer_),
                                                       as_tuple(use_awaitable));
      std::tie(ec, n) = got;
    } else {
      auto got =
          co_await socket_.async_read_some(asio::buffer(read_buffer_), as_tuple(use_awaitable));
      std::tie(ec, n) = got;
    }
    if (ec) {
      if (state_ != state::closed) {
        close_reason r;
        if (!handshake_done_ &&
            (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)) {
          r.error = make_error_code(errc::handshake_failed);
          r.reply_text = "broker closed the socket during the handshake";
        } else {
          r.error = ec;
        }
        fail(std::move(r));
      }
      close_socket();
      co_return;
    }
    last_read_ = clock::now();
    const auto perr = decoder_.feed(read_buffer_.data(), n,
                                    [this](const amqp_frame_t& frame) { return on_frame(frame); });
    if (perr) {
      spdlog::error("amqp: undecodable frame from broker host={}", options_.server.host);
      close_reason r;
      r.error = perr;
      r.reply_text = handshake_done_ ? "undecodable frame from the broker"
                                     : "undecodable reply to the handshake (not AMQP 0-9-1?)";
      fail(std::move(r));
      close_socket();
      co_return;
    }
  }
}

asio::awaitable<void> connection::write_loop() {
  for (;;) {
    flush_channel_acks();
    if (out_.empty()) {
      if (state_ == state::closed || socket_closed_) {
        close_socket();
        co_return;
      }
      // The deadline only bounds one sleep; the loop re-checks and sleeps again.
      co_await write_event_.wait_until(clock::now() + std::chrono::hours(1));
      continue;
    }
    std::swap(out_, writing_);
    boost::system::error_code ec;
    if (tls_) {
      auto wrote =
          co_await asio::async_write(tls_->stream, asio::buffer(writing_), as_tuple(use_awaitable));
      ec = std::get<0>(wrote);
    } else {
      auto wrote =
          co_await asio::async_write(socket_, asio::buffer(writing_), as_tuple(use_awaitable));
      ec = std::get<0>(wrote);
    }
    writing_.clear();
    if (ec) {
      if (state_ != state::closed) {
        close_reason r;
        r.error = ec;
        fail(std::move(r));
      }
      close_socket();
      co_return;
    }
    last_write_ = clock::now();
  }
}

asio::awaitable<void> connection::heartbeat_loop() {
  const auto interval = std::chrono::duration_cast<clock::duration>(heartbeat_);
  const auto tick = interval / 2;
  while (!socket_closed_ && state_ != state::closed) {
    heartbeat_timer_.expires_after(tick);
    auto [ec] = co_await heartbeat_timer_.async_wait(as_tuple(use_awaitable));
    if (ec || socket_closed_ || state_ == state::closed) {
      co_return;
    }
    const auto now = clock::now();
    if (now - last_read_ >= 2 * interval) {
      // Bytes waiting in the kernel mean the peer is alive and only this loop was late.
      boost::system::error_code aec;
      if (socket_.available(aec) == 0 || aec) {
        spdlog::warn(
            "amqp: heartbeat timeout host={} silent_ms={}", options_.server.host,
            std::chrono::duration_cast<std::chrono::milliseconds>(now - last_read_).count());
        abort(make_error_code(errc::heartbeat_timeout));
        co_return;
      }
    }
    if (now - last_write_ >= tick) {
      frame_encoder::append_heartbeat(out_);
      wake_writer();
    }
  }
}

bool connection::on_frame(const amqp_frame_t& frame) {
  if (state_ == state::closed) {
    return false;
  }
  if (frame.channel == 0) {
    if (frame.frame_type == AMQP_FRAME_METHOD) {
      on_connection_method(frame.payload.method);
    } else if (frame.frame_type != AMQP_FRAME_HEARTBEAT) {
      abort(make_error_code(errc::protocol_error));
    }
    return state_ != state::closed;
  }
  // Spec §2.3.7: after sending connection.close only close/close-ok matter.
  if (state_ != state::open) {
    return true;
  }
  const auto it = channels_.find(frame.channel);
  if (it != channels_.end()) {
    const auto ch = it->second;
    if (const auto ec = ch->on_frame(frame)) {
      spdlog::error("amqp: protocol error on channel={} host={}", frame.channel,
                    options_.server.host);
      abort(ec);
    }
  }
  return state_ != state::closed;
}

void connection::on_connection_method(const amqp_method_t& method) {
  switch (method.id) {
    case AMQP_CONNECTION_START_METHOD:
      on_start(*static_cast<const amqp_connection_start_t*>(method.decoded));
      return;
    case AMQP_CONNECTION_TUNE_METHOD:
      on_tune(*static_cast<const amqp_connection_tune_t*>(method.decoded));
      return;
    case AMQP_CONNECTION_OPEN_OK_METHOD:
      handshake_done_ = true;
      state_ = state::open;
      state_event_.notify_all();
      return;
    case AMQP_CONNECTION_CLOSE_METHOD: {
      close_reason r =
          close_reason_from(*static_cast<const amqp_connection_close_t*>(method.decoded));
      spdlog::warn("amqp: broker closed the connection host={} code={} text=\"{}\"",
                   options_.server.host, r.reply_code, r.reply_text);
      amqp_connection_close_ok_t ok{};
      send_method(0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      fail(std::move(r));
      return;
    }
    case AMQP_CONNECTION_CLOSE_OK_METHOD: {
      close_reason r;
      r.error = make_error_code(errc::connection_closed);
      r.reply_text = "closed by the client";
      fail(std::move(r));
      return;
    }
    case AMQP_CONNECTION_BLOCKED_METHOD: {
      const auto& b = *static_cast<const amqp_connection_blocked_t*>(method.decoded);
      blocked_ = true;
      blocked_reason_ = to_string(b.reason);
      spdlog::warn("amqp: connection blocked by broker host={} reason=\"{}\"", options_.server.host,
                   blocked_reason_);
      for (const auto& l : std::vector(blocked_listeners_)) {
        l(true);
      }
      return;
    }
    case AMQP_CONNECTION_UNBLOCKED_METHOD:
      blocked_ = false;
      blocked_reason_.clear();
      spdlog::info("amqp: connection unblocked host={}", options_.server.host);
      for (const auto& l : std::vector(blocked_listeners_)) {
        l(false);
      }
      return;
    case AMQP_CONNECTION_SECURE_METHOD:
      abort(make_error_code(errc::unsupported_mechanism));
      return;
    default:
      abort(make_error_code(errc::protocol_error));
      return;
  }
}

void connection::on_start(const amqp_connection_start_t& start) {
  server_properties_ = from_amqp_table(start.server_properties);
  if (start.version_major != 0 || start.version_minor != 9) {
    abort(make_error_code(errc::protocol_error));
    return;
  }
  if (!offers_plain(to_string(start.mechanisms))) {
    abort(make_error_code(errc::unsupported_mechanism));
    return;
  }
  const field_table capabilities{
      {"publisher_confirms", true}, {"exchange_exchange_bindings", true},
      {"basic.nack", true},         {"consumer_cancel_notify", true},
      {"connection.blocked", true}, {"authentication_failure_close", true},
      {"per_consumer_qos", true},
  };
  const field_table client_properties{
      {"product", "sluice"},
      {"version", client_version},
      {"platform", "C++20 Boost.Asio"},
      {"connection_name", options_.connection_name},
      {"capabilities", capabilities},
  };
  std::string response;
  response.push_back('\0');
  response += options_.server.user;
  response.push_back('\0');
  response += options_.server.password;
  const std::string mechanism = "PLAIN";
  const std::string locale = "en_US";
  amqp_connection_start_ok_t args{amqp_empty_table, to_amqp_bytes(mechanism),
                                  to_amqp_bytes(response), to_amqp_bytes(locale)};
  if (const auto ec = send_method(0, AMQP_CONNECTION_START_OK_METHOD, &args,
                                  &args.client_properties, client_properties)) {
    abort(ec);
  }
}

void connection::on_tune(const amqp_connection_tune_t& tune) {
  channel_max_ = negotiate<std::uint16_t>(options_.channel_max, tune.channel_max);
  frame_max_ =
      std::max(negotiate<std::uint32_t>(options_.frame_max, tune.frame_max), frame_min_size);
  const auto client_heartbeat =
      static_cast<std::uint16_t>(std::clamp<std::int64_t>(options_.heartbeat.count(), 0, 65535));
  heartbeat_ = std::chrono::seconds(
      client_heartbeat == 0 ? 0 : negotiate<std::uint16_t>(client_heartbeat, tune.heartbeat));

  if (const auto ec =
          decoder_.tune(channel_max_, frame_max_, static_cast<std::uint16_t>(heartbeat_.count()))) {
    abort(ec);
    return;
  }
  encoder_.set_frame_max(frame_max_);
  amqp_connection_tune_ok_t ok{channel_max_, frame_max_,
                               static_cast<std::uint16_t>(heartbeat_.count())};
  amqp_connection_open_t open{to_amqp_bytes(options_.server.vhost), amqp_empty_bytes, 0};
  if (auto ec = send_method(0, AMQP_CONNECTION_TUNE_OK_METHOD, &ok);
      ec || (ec = send_method(0, AMQP_CONNECTION_OPEN_METHOD, &open))) {
    abort(ec);
    return;
  }
  if (heartbeat_.count() > 0) {
    asio::co_spawn(
        executor_,
        [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->heartbeat_loop(); },
        [](std::exception_ptr e) { log_spawn_failure(e, "heartbeat"); });
  }
}

std::error_code connection::send_method(std::uint16_t channel, amqp_method_number_t method,
                                        void* args) {
  if (socket_closed_) {
    return make_error_code(errc::connection_closed);
  }
  if (auto ec = encoder_.append_method(out_, channel, method, args)) {
    return ec;
  }
  wake_writer();
  return {};
}

std::error_code connection::send_method(std::uint16_t channel, amqp_method_number_t method,
                                        void* args, amqp_table_t* table_slot,
                                        const field_table& table) {
  if (socket_closed_) {
    return make_error_code(errc::connection_closed);
  }
  if (auto ec = encoder_.append_method(out_, channel, method, args, table_slot, table)) {
    return ec;
  }
  wake_writer();
  return {};
}

std::error_code connection::send_content(std::uint16_t channel,
                                         const message_properties& properties,
                                         std::string_view body) {
  if (socket_closed_) {
    return make_error_code(errc::connection_closed);
  }
  if (auto ec = encoder_.append_content(out_, channel, properties, body)) {
    return ec;
  }
  wake_writer();
  return {};
}

void connection::wake_writer() {
  if (write_event_.waiters() != 0) {
    write_event_.notify_all();
  }
}

void connection::request_ack_flush(std::weak_ptr<channel> ch) {
  ack_flushes_.push_back(std::move(ch));
  wake_writer();
}

void connection::flush_channel_acks() {
  if (ack_flushes_.empty()) {
    return;
  }
  for (const auto& weak : std::exchange(ack_flushes_, {})) {
    if (const auto ch = weak.lock()) {
      ch->flush_acks();
    }
  }
}

void connection::release_channel(std::uint16_t id) {
  channels_.erase(id);
}

void connection::fail(close_reason why) {
  if (state_ == state::closed) {
    return;
  }
  const bool was_open = handshake_done_;
  state_ = state::closed;
  reason_ = std::move(why);
  if (!reason_.error) {
    reason_.error = make_error_code(errc::connection_closed);
  }
  if (was_open && reason_.error != errc::connection_closed) {
    spdlog::warn("amqp: connection lost host={} port={} reason=\"{}\"", options_.server.host,
                 options_.server.port, reason_.to_string());
  }
  heartbeat_timer_.cancel();
  resolver_.cancel();
  if (!socket_closed_) {
    arm_watchdog(clock::now() + close_linger);
  }
  auto channels = std::exchange(channels_, {});
  for (auto& [id, ch] : channels) {
    ch->on_connection_closed(reason_);
  }
  write_event_.notify_all();
  state_event_.notify_all();
  for (const auto& l : std::vector(closed_listeners_)) {
    l(reason_);
  }
}

void connection::close_socket() {
  if (socket_closed_) {
    return;
  }
  socket_closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  resolver_.cancel();
  heartbeat_timer_.cancel();
  ++watchdog_generation_;
  watchdog_timer_.cancel();
  write_event_.notify_all();
}

}  // namespace sluice::amqp
