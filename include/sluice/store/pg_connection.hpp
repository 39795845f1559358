#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "sluice/store/pg_params.hpp"
#include "sluice/store/pg_result.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

struct pg_conn;

namespace sluice::store {

using clock = std::chrono::steady_clock;

struct connection_options {
  // libpq keyword/value string or postgresql:// URI; what it leaves out comes from the PG*
  // environment variables, through libpq itself.
  std::string conninfo;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds statement_timeout{30000};  // 0 keeps the server's setting
  // A connection whose deadline passed is closed, not cancelled (libpq 15 has no non-blocking
  // cancel). PostgreSQL 14+ notices the vanished client this soon and aborts its query instead
  // of running it to the end. 0 keeps the server's setting.
  std::chrono::milliseconds client_connection_check_interval{1000};
  std::string application_name = "sluice";
};

// One statement for the extended protocol. `sql` and `name` are copied when sent.
// One NOTIFY received on a connection that LISTENs.
struct pg_notification {
  std::string channel;
  std::string payload;
  int sender_pid = 0;
};

struct pg_statement {
  std::string_view sql;
  pg_params params{};
  // Non-empty: prepared under this name the first time a connection runs it, then only bound
  // and executed. Statements sharing a name must share the SQL and parameter types.
  std::string_view name{};
};

// One PostgreSQL connection driven by non-blocking libpq on the caller's io_context: libpq
// does the protocol, Asio only tells it when the socket is ready. One operation at a time.
// Every operation takes a deadline; when it passes, the connection is closed (a half-read
// pipeline cannot be resumed) and the operation fails with errc::timeout.
class pg_connection {
 public:
  explicit pg_connection(boost::asio::any_io_executor executor);
  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  // Connects and applies the session settings. errc::timeout when `deadline` cut it short,
  // errc::connection_failed otherwise (including options.connect_timeout); error_message()
  // says why.
  boost::asio::awaitable<std::error_code> connect(const connection_options& options,
                                                  clock::time_point deadline);

  // Simple query protocol: `sql` may hold several statements (one implicit transaction unless
  // it says BEGIN/COMMIT). Returns the last statement's result or the first error.
  boost::asio::awaitable<pg_result> execute(std::string_view sql, clock::time_point deadline);

  // One statement with parameters (extended protocol).
  boost::asio::awaitable<pg_result> execute(const pg_statement& statement,
                                            clock::time_point deadline);

  // Sends all statements and one Sync in pipeline mode: one round trip. Unless the
  // statements say BEGIN/COMMIT themselves they run as one transaction; a failure rolls all
  // of them back.
  boost::asio::awaitable<pg_pipeline_result> execute_pipeline(
      std::span<const pg_statement> statements, clock::time_point deadline);

  // For a connection that ran LISTEN: waits until at least one notification is queued (then
  // take_notifications() has it), the connection breaks (connection_lost, closed) or
  // `deadline` passes (errc::timeout; unlike the other operations the connection stays open,
  // as waiting for nothing is the normal case). close() from elsewhere ends the wait with
  // shut_down.
  boost::asio::awaitable<std::error_code> wait_notification(clock::time_point deadline);
  // Notifications received so far, oldest first, including those that arrived while a
  // statement ran; empties the queue.
  std::vector<pg_notification> take_notifications();

  // Cheap, non-blocking: reads anything the server sent while the connection sat idle and
  // reports whether it is still usable (a restarted server leaves EOF on idle sockets).
  bool check_alive();

  bool is_open() const;
  // Open, outside any transaction, no operation running: safe to hand to another user.
  bool is_idle() const;
  void close();

  int backend_pid() const;
  int server_version() const;
  const std::string& error_message() const { return error_message_; }

 private:
  // host, hostaddr and port lists for libpq with every host name already resolved; empty when
  // libpq needs no help (no names, or options it must report as wrong itself).
  struct resolved_hosts {
    std::string host;
    std::string hostaddr;
    std::string port;
  };
  boost::asio::awaitable<std::error_code> resolve_hosts(const connection_options& options,
                                                        clock::time_point deadline,
                                                        resolved_hosts& out);
  boost::asio::awaitable<std::error_code> wait_io(bool want_read, bool want_write,
                                                  clock::time_point deadline);
  boost::asio::awaitable<std::error_code> flush(clock::time_point deadline);
  boost::asio::awaitable<std::error_code> wait_result(clock::time_point deadline);
  bool attach_socket();
  void drain_notifies();
  std::error_code fail(std::error_code ec);
  std::error_code fail_from_libpq(std::error_code ec);

  boost::asio::any_io_executor executor_;
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer timer_;
  pg_conn* conn_ = nullptr;
  bool busy_ = false;
  std::unordered_set<std::string> prepared_;
  std::vector<pg_notification> notifications_;
  std::string error_message_;
};

}  // namespace sluice::store
