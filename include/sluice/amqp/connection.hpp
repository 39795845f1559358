#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include "sluice/amqp/error.hpp"
#include "sluice/amqp/field_table.hpp"
#include "sluice/amqp/frame_codec.hpp"
#include "sluice/amqp/url.hpp"
#include "sluice/core/async_event.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::amqp {

class channel;

struct connection_options {
  url server;
  // Our heartbeat proposal; the smaller of ours and the broker's wins. 0 disables heartbeats
  // (then a silently dead peer is only noticed when TCP gives up). A `heartbeat` query
  // parameter in the URL overrides this, as do the URL's connection_timeout, frame_max and
  // channel_max.
  std::chrono::seconds heartbeat{30};
  // Bounds TCP connect plus the whole AMQP handshake.
  std::chrono::milliseconds connect_timeout{10000};
  // Bounds every channel RPC (declare, bind, qos, consume, close, ...).
  std::chrono::milliseconds rpc_timeout{10000};
  std::uint32_t frame_max = default_frame_max;
  std::uint16_t channel_max = 2047;
  // amqps:// only: the CA certificates (PEM) the broker's certificate must chain to; empty =
  // the system's store. The broker's name (the URL's host) must match its certificate either
  // way, and is sent as SNI. Read at every connect, so a renewed file is picked up on reconnect.
  std::string ca_file;
  std::string connection_name = "sluice";  // shown by rabbitmqctl list_connections / the UI
};

// One AMQP 0-9-1 connection over a TCP socket that Asio owns (under TLS for amqps://). rabbitmq-c
// only encodes and decodes; every byte goes through this object's single reader and single writer
// coroutine, so frames of different channels never interleave and small frames queued in the same
// loop turn leave in one write. All of it runs on one io_context thread; nothing here is
// thread-safe.
//
// Lifetime: create(), open(), use, close(). While the socket is open the reader and writer keep
// the object alive, so an unused connection must be closed; channels only hold a weak pointer.
// There is no reconnect here: a lost connection stays lost (see client for that).
class connection : public std::enable_shared_from_this<connection> {
 public:
  using clock = std::chrono::steady_clock;
  enum class state { created, connecting, open, closing, closed };

  static std::shared_ptr<connection> create(boost::asio::any_io_executor executor,
                                            connection_options options);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // TCP connect and handshake within connect_timeout. On failure reason() holds the broker's
  // words, e.g. 403 "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN".
  boost::asio::awaitable<std::error_code> open();
  boost::asio::awaitable<std::tuple<std::error_code, std::shared_ptr<channel>>> open_channel();
  // connection.close and a wait for close-ok (bounded by rpc_timeout), then the socket closes.
  boost::asio::awaitable<std::error_code> close();
  // Drops the socket now; channels and listeners see `why`.
  void abort(std::error_code why);
  // Returns true once the connection is closed, false if the deadline passed first.
  boost::asio::awaitable<bool> wait_closed(clock::time_point deadline);

  state current_state() const { return state_; }
  bool is_open() const { return state_ == state::open; }
  // connection.blocked: the broker stopped reading from us (memory or disk alarm).
  bool is_blocked() const { return blocked_; }
  const std::string& blocked_reason() const { return blocked_reason_; }
  const close_reason& reason() const { return reason_; }
  const field_table& server_properties() const { return server_properties_; }
  std::uint32_t frame_max() const { return frame_max_; }
  std::uint16_t channel_max() const { return channel_max_; }
  std::chrono::seconds heartbeat() const { return heartbeat_; }
  const connection_options& options() const { return options_; }
  std::size_t buffered_write_bytes() const { return out_.size() + writing_.size(); }
  boost::asio::any_io_executor get_executor() const { return executor_; }

  // Listeners run on the loop thread, inline with the event; they must not block.
  void on_blocked(std::function<void(bool blocked)> listener);
  void on_closed(std::function<void(const close_reason&)> listener);

 private:
  friend class channel;

  connection(boost::asio::any_io_executor executor, connection_options options);

  // The TLS handshake on the connected socket (amqps://); an error names what failed.
  boost::asio::awaitable<std::error_code> start_tls();
  boost::asio::awaitable<void> read_loop();
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> heartbeat_loop();
  // Aborts the connection at `deadline` unless re-armed or the socket closed first.
  void arm_watchdog(clock::time_point deadline);

  bool on_frame(const amqp_frame_t& frame);
  void on_connection_method(const amqp_method_t& method);
  void on_start(const amqp_connection_start_t& start);
  void on_tune(const amqp_connection_tune_t& tune);

  // Queue frames for the writer; errors mean the frame could not be encoded.
  std::error_code send_method(std::uint16_t channel, amqp_method_number_t method, void* args);
  std::error_code send_method(std::uint16_t channel, amqp_method_number_t method, void* args,
                              amqp_table_t* table_slot, const field_table& table);
  std::error_code send_content(std::uint16_t channel, const message_properties& properties,
                               std::string_view body);
  void wake_writer();
  void release_channel(std::uint16_t id);
  // A channel recorded acks: the writer turns them into frames just before its next write, so
  // every ack recorded while the previous write was in flight leaves in one multiple ack.
  void request_ack_flush(std::weak_ptr<channel> ch);
  void flush_channel_acks();

  // Marks the connection closed and tells channels and listeners; the socket closes once the
  // writer has flushed what is queued (close-ok to the broker, typically).
  void fail(close_reason why);
  void close_socket();

  boost::asio::any_io_executor executor_;
  connection_options options_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  struct tls_layer;                 // OpenSSL stays in connection.cpp
  std::unique_ptr<tls_layer> tls_;  // set for amqps:// once connected
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer watchdog_timer_;
  frame_encoder encoder_;
  frame_decoder decoder_;

  state state_ = state::created;
  bool handshake_done_ = false;
  bool socket_closed_ = false;
  std::uint64_t watchdog_generation_ = 0;
  close_reason reason_;
  bool blocked_ = false;
  std::string blocked_reason_;
  field_table server_properties_;
  std::uint32_t frame_max_ = default_frame_max;
  std::uint16_t channel_max_ = 0;
  std::chrono::seconds heartbeat_{0};

  std::string out_;
  std::string writing_;
  std::vector<std::weak_ptr<channel>> ack_flushes_;
  std::vector<std::uint8_t> read_buffer_;
  clock::time_point last_read_;
  clock::time_point last_write_;
  async_event write_event_;
  async_event state_event_;

  std::map<std::uint16_t, std::shared_ptr<channel>> channels_;
  std::uint16_t next_channel_hint_ = 1;
  std::vector<std::function<void(bool)>> blocked_listeners_;
  std::vector<std::function<void(const close_reason&)>> closed_listeners_;
};

}  // namespace sluice::amqp
