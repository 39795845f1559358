#include "sluice/store/pg_connection.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <poll.h>
#include <utility>
#include <variant>
#include <vector>

#include "sluice/store/conninfo_form.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

namespace sluice::store {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto as_awaitable_tuple = asio::as_tuple(asio::use_awaitable);

// libpq's messages span lines ("...refused\n\tIs the server running..."); logs want one line.
std::string trimmed(const char* text) {
  std::string out;
  for (const char* p = text ? text : ""; *p; ++p) {
    const bool space = *p == '\n' || *p == '\t' || *p == ' ';
    if (space && (out.empty() || out.back() == ' '))
      continue;
    out += space ? ' ' : *p;
  }
  while (!out.empty() && out.back() == ' ')
    out.pop_back();
  return out;
}

void log_notice(void*, const char* text) {
  spdlog::debug("store: notice {}", trimmed(text));
}

pg_result to_result(PGresult* res) {
  pg_result out;
  out.command_status = PQcmdStatus(res);
  const char* tuples = PQcmdTuples(res);
  out.affected_rows = tuples && *tuples ? std::strtoull(tuples, nullptr, 10) : 0;
  const int rows = PQntuples(res);
  const int cols = PQnfields(res);
  out.rows.resize(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    auto& row = out.rows[static_cast<std::size_t>(r)];
    row.reserve(static_cast<std::size_t>(cols));
    for (int c = 0; c < cols; ++c) {
      if (PQgetisnull(res, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::in_place, PQgetvalue(res, r, c),
                         static_cast<std::size_t>(PQgetlength(res, r, c)));
      }
    }
  }
  return out;
}

// Fills ec/sqlstate/message of `out` from an error result. A FATAL result that broke the
// connection (server crash, admin shutdown) is a lost connection, not a rejected statement.
void set_error(pg_result& out, PGconn* conn, PGresult* res) {
  const char* sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  out.sqlstate = sqlstate ? sqlstate : "";
  out.message = trimmed(PQresultErrorMessage(res));
  out.ec = PQstatus(conn) == CONNECTION_BAD ? make_error_code(errc::connection_lost)
                                            : make_error_code(errc::query_failed);
}

bool is_numeric_host(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// A host name to look up: not empty (libpq's default socket), not a socket directory, not an
// address.
bool is_name(const std::string& host) {
  return !host.empty() && host.front() != '/' && host.front() != '@' && !is_numeric_host(host);
}

// libpq's comma-separated lists (host=a,b port=1,2); a value without commas is one element.
std::vector<std::string> split_list(const std::string& value) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = value.find(',', start);
    out.push_back(value.substr(start, comma - start));
    if (comma == std::string::npos)
      return out;
    start = comma + 1;
  }
}

std::string option_or_env(PQconninfoOption* options, std::string_view keyword, const char* env) {
  for (auto* o = options; o && o->keyword; ++o) {
    if (keyword == o->keyword && o->val && *o->val)
      return o->val;
  }
  const char* value = std::getenv(env);
  return value ? value : "";
}

// Marks one operation in progress; is_idle() reads it.
class busy_guard {
 public:
  explicit busy_guard(bool& flag) : flag_(flag) { flag_ = true; }
  ~busy_guard() { flag_ = false; }
  busy_guard(const busy_guard&) = delete;
  busy_guard& operator=(const busy_guard&) = delete;

 private:
  bool& flag_;
};

}  // namespace

pg_connection::pg_connection(asio::any_io_executor executor)
    : executor_(executor), socket_(executor), timer_(executor) {}

pg_connection::~pg_connection() {
  close();
}

bool pg_connection::is_open() const {
  return conn_ && PQstatus(conn_) == CONNECTION_OK;
}

bool pg_connection::is_idle() const {
  return is_open() && !busy_ && PQtransactionStatus(conn_) == PQTRANS_IDLE &&
         PQpipelineStatus(conn_) == PQ_PIPELINE_OFF;
}

int pg_connection::backend_pid() const {
  return conn_ ? PQbackendPID(conn_) : 0;
}

int pg_connection::server_version() const {
  return conn_ ? PQserverVersion(conn_) : 0;
}

void pg_connection::close() {
  // libpq owns the descriptor and closes it in PQfinish; Asio must only forget it.
  if (socket_.is_open())
    socket_.release();
  if (conn_)
    PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
  notifications_.clear();
}

std::error_code pg_connection::fail(std::error_code ec) {
  close();
  return ec;
}

std::error_code pg_connection::fail_from_libpq(std::error_code ec) {
  if (conn_)
    error_message_ = trimmed(PQerrorMessage(conn_));
  return fail(ec);
}

bool pg_connection::attach_socket() {
  if (socket_.is_open())
    socket_.release();
  const int fd = PQsocket(conn_);
  if (fd < 0)
    return false;
  boost::system::error_code ec;
  socket_.assign(fd, ec);
  return !ec;
}

bool pg_connection::check_alive() {
  if (!is_open() || busy_)
    return false;
  // An idle connection gets nothing but the odd notice; a server that ended it (restart,
  // pg_terminate_backend, idle timeout) leaves a FATAL message and EOF, which poll reports as
  // a read hang-up before libpq has looked at anything.
  pollfd p{PQsocket(conn_), POLLIN | POLLRDHUP, 0};
  bool alive = true;
  if (::poll(&p, 1, 0) > 0) {
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) {
      alive = false;
    } else if (!PQconsumeInput(conn_) || PQisBusy(conn_) || PQstatus(conn_) != CONNECTION_OK) {
      alive = false;
    }
  }
  if (!alive) {
    error_message_ = trimmed(PQerrorMessage(conn_));
    if (error_message_.empty())
      error_message_ = "server closed the connection";
    close();
  }
  return alive;
}

asio::awaitable<std::error_code> pg_connection::wait_io(bool want_read, bool want_write,
                                                        clock::time_point deadline) {
  // Asio's reactor is edge-triggered and does not remember readiness that arrived while no
  // wait was pending, and PQconsumeInput may leave bytes in the kernel buffer. Asking the
  // kernel first means a wait only starts when nothing is ready.
  pollfd p{PQsocket(conn_),
           static_cast<short>((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0)), 0};
  const int ready = ::poll(&p, 1, 0);
  if (ready > 0 || (ready < 0 && errno != EINTR))
    co_return std::error_code{};
  if (clock::now() >= deadline)
    co_return make_error_code(errc::timeout);

  using wait_type = asio::posix::stream_descriptor::wait_type;
  timer_.expires_at(deadline);
  std::size_t winner = 0;
  boost::system::error_code ec;
  if (want_read && want_write) {
    auto r = co_await (socket_.async_wait(wait_type::wait_read, as_awaitable_tuple) ||
                       socket_.async_wait(wait_type::wait_write, as_awaitable_tuple) ||
                       timer_.async_wait(as_awaitable_tuple));
    winner = r.index() == 2 ? 1 : 0;
    std::visit([&](auto& t) { ec = std::get<0>(t); }, r);
  } else {
    auto r = co_await (socket_.async_wait(want_read ? wait_type::wait_read : wait_type::wait_write,
                                          as_awaitable_tuple) ||
                       timer_.async_wait(as_awaitable_tuple));
    winner = r.index();
    std::visit([&](auto& t) { ec = std::get<0>(t); }, r);
  }
  // close() from elsewhere (pool shutdown) aborts the wait and leaves conn_ null.
  if (ec || !conn_)
    co_return make_error_code(errc::shut_down);
  if (winner == 1)
    co_return make_error_code(errc::timeout);
  co_return std::error_code{};
}

asio::awaitable<std::error_code> pg_connection::flush(clock::time_point deadline) {
  for (;;) {
    const int r = PQflush(conn_);
    if (r == 0)
      co_return std::error_code{};
    if (r < 0)
      co_return fail_from_libpq(errc::connection_lost);
    // The server may be blocked writing results to us while we write the pipeline to it:
    // read as well, or both sides wait forever.
    if (auto ec = co_await wait_io(true, true, deadline))
      co_return fail(ec);
    if (!PQconsumeInput(conn_))
      co_return fail_from_libpq(errc::connection_lost);
  }
}

asio::awaitable<std::error_code> pg_connection::wait_result(clock::time_point deadline) {
  // PQisBusy parses what is already buffered; only go to the socket when that is not enough.
  for (;;) {
    if (!PQisBusy(conn_))
      co_return std::error_code{};
    if (!PQconsumeInput(conn_))
      co_return fail_from_libpq(errc::connection_lost);
    if (!PQisBusy(conn_))
      co_return std::error_code{};
    if (auto ec = co_await wait_io(true, false, deadline))
      co_return fail(ec);
  }
}

void pg_connection::drain_notifies() {
  while (PGnotify* n = PQnotifies(conn_)) {
    notifications_.push_back({n->relname ? n->relname : "", n->extra ? n->extra : "", n->be_pid});
    PQfreemem(n);
  }
}

std::vector<pg_notification> pg_connection::take_notifications() {
  if (conn_)
    drain_notifies();
  return std::exchange(notifications_, {});
}

asio::awaitable<std::error_code> pg_connection::wait_notification(clock::time_point deadline) {
  if (!is_open())
    co_return make_error_code(errc::connection_lost);
  busy_guard guard(busy_);
  for (;;) {
    // libpq queues notifications when it parses input, during a statement as much as here.
    drain_notifies();
    if (!notifications_.empty())
      co_return std::error_code{};
    if (!PQconsumeInput(conn_) || PQstatus(conn_) == CONNECTION_BAD)
      co_return fail_from_libpq(errc::connection_lost);
    drain_notifies();
    if (!notifications_.empty())
      co_return std::error_code{};
    if (auto ec = co_await wait_io(true, false, deadline)) {
      // Nothing arrived in time: a normal outcome that leaves the connection usable.
      if (ec == errc::timeout)
        co_return ec;
      co_return fail(ec);
    }
  }
}

asio::awaitable<std::error_code> pg_connection::resolve_hosts(const connection_options& options,
                                                              clock::time_point deadline,
                                                              resolved_hosts& out) {
  // libpq resolves host names with a blocking getaddrinfo inside PQconnectPoll, which would
  // stall the loop (worst when DNS is slow, as it often is in the failover a host list is there
  // for). Asio's resolver runs it off the loop; libpq then gets each name's addresses as
  // hostaddr, in order, and only connects, trying the entries as it would have itself.
  // A bare database name leaves the host to PGHOST.
  const bool expanded = is_connection_string(options.conninfo);
  char* parse_error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> parsed(
      PQconninfoParse(expanded ? options.conninfo.c_str() : "", &parse_error), &PQconninfoFree);
  if (parse_error)
    PQfreemem(parse_error);
  if (!parsed)
    co_return std::error_code{};  // libpq reports it
  const auto hosts = split_list(option_or_env(parsed.get(), "host", "PGHOST"));
  const auto ports = split_list(option_or_env(parsed.get(), "port", "PGPORT"));
  const bool needs_resolving =
      std::any_of(hosts.begin(), hosts.end(), [](const std::string& h) { return is_name(h); });
  // hostaddr given, or port and host lists that do not pair up: libpq's to use or to refuse.
  if (!needs_resolving || !option_or_env(parsed.get(), "hostaddr", "PGHOSTADDR").empty() ||
      (ports.size() > 1 && ports.size() != hosts.size())) {
    co_return std::error_code{};
  }

  std::string failures;
  std::size_t entries = 0;
  const auto add = [&](const std::string& host, const std::string& hostaddr, std::size_t i) {
    const char* sep = entries++ == 0 ? "" : ",";
    out.host.append(sep).append(host);
    out.hostaddr.append(sep).append(hostaddr);
    if (ports.size() > 1)
      out.port.append(sep).append(ports[i]);
  };
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    const std::string& host = hosts[i];
    if (!is_name(host)) {
      // A socket directory or an address: no lookup; an empty hostaddr lets libpq use host.
      add(host, is_numeric_host(host) ? host : "", i);
      continue;
    }
    asio::ip::tcp::resolver resolver(executor_);
    timer_.expires_at(deadline);
    auto r = co_await (resolver.async_resolve(host, "0", as_awaitable_tuple) ||
                       timer_.async_wait(as_awaitable_tuple));
    if (r.index() == 1) {
      error_message_ = "could not resolve host \"" + host + "\": timed out";
      co_return make_error_code(errc::timeout);
    }
    auto& [ec, endpoints] = std::get<0>(r);
    if (ec) {
      // The next host may do, as with libpq; only when none is left is it an error.
      failures += (failures.empty() ? "" : "; ") + ("could not resolve host \"" + host + "\": ") +
                  ec.message();
      continue;
    }
    std::vector<std::string> seen;
    for (const auto& entry : endpoints) {
      std::string address = entry.endpoint().address().to_string();
      if (std::find(seen.begin(), seen.end(), address) != seen.end())
        continue;
      add(host, address, i);
      seen.push_back(std::move(address));
    }
  }
  if (entries == 0) {
    error_message_ = failures;
    co_return make_error_code(errc::connection_failed);
  }
  co_return std::error_code{};
}

asio::awaitable<std::error_code> pg_connection::connect(const connection_options& options,
                                                        clock::time_point deadline) {
  close();
  error_message_.clear();
  busy_guard guard(busy_);
  const auto connect_deadline = std::min(deadline, clock::now() + options.connect_timeout);
  // Past the caller's own deadline the caller gave up (timeout); past connect_timeout the
  // server did not answer in time (connection_failed).
  const auto deadline_error = [&] {
    return connect_deadline < deadline ? make_error_code(errc::connection_failed)
                                       : make_error_code(errc::timeout);
  };

  resolved_hosts resolved;
  if (auto ec = co_await resolve_hosts(options, connect_deadline, resolved)) {
    co_return ec == errc::timeout ? deadline_error() : ec;
  }

  std::vector<const char*> keys{"dbname", "fallback_application_name", "client_encoding"};
  std::vector<const char*> values{options.conninfo.c_str(), options.application_name.c_str(),
                                  "UTF8"};
  if (!resolved.host.empty()) {
    keys.insert(keys.end(), {"host", "hostaddr"});
    values.insert(values.end(), {resolved.host.c_str(), resolved.hostaddr.c_str()});
  }
  if (!resolved.port.empty()) {
    keys.push_back("port");
    values.push_back(resolved.port.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  // Later keywords override what the expanded conninfo (dbname) says.
  conn_ = PQconnectStartParams(keys.data(), values.data(), 1);
  if (!conn_) {
    error_message_ = "out of memory";
    co_return make_error_code(errc::connection_failed);
  }
  PQsetNoticeProcessor(conn_, &log_notice, nullptr);
  if (PQstatus(conn_) == CONNECTION_BAD)
    co_return fail_from_libpq(errc::connection_failed);

  // As the libpq manual says: start as if PQconnectPoll had asked to write.
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED)
      co_return fail_from_libpq(errc::connection_failed);
    // libpq may close its socket and open another between polls (next address, SSL
    // fallback), possibly under the same number: register whatever it uses now.
    if (!attach_socket())
      co_return fail_from_libpq(errc::connection_failed);
    if (auto ec = co_await wait_io(status == PGRES_POLLING_READING, status == PGRES_POLLING_WRITING,
                                   connect_deadline)) {
      if (ec == errc::timeout) {
        error_message_ = "connect timed out";
        co_return fail(deadline_error());
      }
      co_return fail(ec);
    }
    status = PQconnectPoll(conn_);
  }
  if (!attach_socket() || PQsetnonblocking(conn_, 1) != 0) {
    co_return fail_from_libpq(errc::connection_failed);
  }

  std::string settings;
  if (options.statement_timeout.count() > 0) {
    settings +=
        "SET statement_timeout = " + std::to_string(options.statement_timeout.count()) + ";";
  }
  if (options.client_connection_check_interval.count() > 0 && PQserverVersion(conn_) >= 140000) {
    settings += "SET client_connection_check_interval = " +
                std::to_string(options.client_connection_check_interval.count()) + ";";
  }
  if (!settings.empty()) {
    pg_result r = co_await execute(settings, connect_deadline);
    if (r.ec) {
      error_message_ = r.message.empty() ? r.ec.message() : r.message;
      close();
      co_return r.ec == errc::timeout ? deadline_error() : make_error_code(errc::connection_failed);
    }
  }
  co_return std::error_code{};
}

asio::awaitable<pg_result> pg_connection::execute(std::string_view sql,
                                                  clock::time_point deadline) {
  pg_result out;
  if (!is_open()) {
    out.ec = errc::connection_lost;
    co_return out;
  }
  if (clock::now() >= deadline) {
    out.ec = errc::timeout;
    co_return out;
  }
  busy_guard guard(busy_);
  error_message_.clear();
  const std::string text(sql);
  if (!PQsendQuery(conn_, text.c_str())) {
    out.ec = fail_from_libpq(errc::connection_lost);
    out.message = error_message_;
    co_return out;
  }
  if (auto ec = co_await flush(deadline)) {
    out.ec = ec;
    out.message = error_message_;
    co_return out;
  }
  bool failed = false;
  for (;;) {
    if (auto ec = co_await wait_result(deadline)) {
      out.ec = ec;
      out.message = error_message_;
      co_return out;
    }
    PGresult* res = PQgetResult(conn_);
    if (!res)
      break;
    switch (PQresultStatus(res)) {
      case PGRES_TUPLES_OK:
      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY:
        if (!failed)
          out = to_result(res);
        break;
      case PGRES_FATAL_ERROR:
      case PGRES_BAD_RESPONSE:
      case PGRES_NONFATAL_ERROR:
        if (!failed) {
          out = pg_result{};
          set_error(out, conn_, res);
          failed = true;
        }
        break;
      default:
        // COPY and other streaming modes are not spoken here; the connection is unusable.
        PQclear(res);
        out = pg_result{};
        error_message_ = "unsupported result status from simple query";
        out.message = error_message_;
        out.ec = fail(errc::connection_lost);
        co_return out;
    }
    PQclear(res);
  }
  if (PQstatus(conn_) == CONNECTION_BAD) {
    if (!failed)
      out.message = trimmed(PQerrorMessage(conn_));
    out.ec = fail(errc::connection_lost);
  }
  co_return out;
}

asio::awaitable<pg_result> pg_connection::execute(const pg_statement& statement,
                                                  clock::time_point deadline) {
  pg_pipeline_result r = co_await execute_pipeline(std::span(&statement, 1), deadline);
  if (!r.results.empty() && (r.results.front().ec || !r.ec)) {
    co_return std::move(r.results.front());
  }
  pg_result out;
  out.ec = r.ec;
  out.sqlstate = std::move(r.sqlstate);
  out.message = std::move(r.message);
  co_return out;
}

asio::awaitable<pg_pipeline_result> pg_connection::execute_pipeline(
    std::span<const pg_statement> statements, clock::time_point deadline) {
  pg_pipeline_result out;
  const auto finish_with = [&](std::error_code ec) {
    out.ec = ec;
    if (out.message.empty())
      out.message = error_message_;
  };
  if (!is_open()) {
    finish_with(errc::connection_lost);
    co_return out;
  }
  if (clock::now() >= deadline) {
    finish_with(errc::timeout);
    co_return out;
  }
  busy_guard guard(busy_);
  error_message_.clear();
  if (!PQenterPipelineMode(conn_)) {
    finish_with(fail_from_libpq(errc::connection_lost));
    co_return out;
  }

  // What each result in the stream answers, in send order: a Prepare or a statement.
  struct pending {
    bool prepare;
    std::size_t statement;
  };
  std::vector<pending> sent;
  sent.reserve(statements.size() + 4);
  std::vector<std::string> preparing;
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  std::vector<Oid> types;
  std::string name, sql;

  for (std::size_t i = 0; i < statements.size(); ++i) {
    const pg_statement& s = statements[i];
    const pg_params& p = s.params;
    const int n = static_cast<int>(p.size());
    values.resize(p.size());
    lengths.resize(p.size());
    formats.resize(p.size());
    types.resize(p.size());
    for (std::size_t k = 0; k < p.size(); ++k) {
      values[k] = p.value(k);
      lengths[k] = p.length(k);
      formats[k] = p.format(k);
      types[k] = p.type(k);
    }
    int ok = 1;
    if (s.name.empty()) {
      sql.assign(s.sql);
      ok = PQsendQueryParams(conn_, sql.c_str(), n, types.data(), values.data(), lengths.data(),
                             formats.data(), 0);
    } else {
      name.assign(s.name);
      if (!prepared_.contains(name) &&
          std::find(preparing.begin(), preparing.end(), name) == preparing.end()) {
        sql.assign(s.sql);
        if (!PQsendPrepare(conn_, name.c_str(), sql.c_str(), n, types.data())) {
          finish_with(fail_from_libpq(errc::connection_lost));
          co_return out;
        }
        sent.push_back({true, i});
        preparing.push_back(name);
      }
      ok = PQsendQueryPrepared(conn_, name.c_str(), n, values.data(), lengths.data(),
                               formats.data(), 0);
    }
    if (!ok) {
      finish_with(fail_from_libpq(errc::connection_lost));
      co_return out;
    }
    sent.push_back({false, i});
  }
  if (!PQpipelineSync(conn_)) {
    finish_with(fail_from_libpq(errc::connection_lost));
    co_return out;
  }
  if (auto ec = co_await flush(deadline)) {
    finish_with(ec);
    co_return out;
  }

  out.results.resize(statements.size());
  std::size_t current = 0;  // index into `sent` of the command whose results arrive now
  for (;;) {
    if (auto ec = co_await wait_result(deadline)) {
      finish_with(ec);
      co_return out;
    }
    PGresult* res = PQgetResult(conn_);
    if (!res) {
      // A null result closes one command's results; the Sync's result has none after it.
      if (current >= sent.size()) {
        error_message_ = "pipeline: unexpected end of results";
        finish_with(fail(errc::connection_lost));
        co_return out;
      }
      ++current;
      continue;
    }
    const ExecStatusType status = PQresultStatus(res);
    if (status == PGRES_PIPELINE_SYNC) {
      PQclear(res);
      break;
    }
    if (current >= sent.size()) {
      PQclear(res);
      error_message_ = "pipeline: more results than commands";
      finish_with(fail(errc::connection_lost));
      co_return out;
    }
    const pending& cmd = sent[current];
    pg_result& target = out.results[cmd.statement];
    switch (status) {
      case PGRES_TUPLES_OK:
      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY:
        if (cmd.prepare) {
          prepared_.emplace(statements[cmd.statement].name);
        } else {
          target = to_result(res);
        }
        break;
      case PGRES_PIPELINE_ABORTED:
        if (!target.ec)
          target.ec = errc::pipeline_aborted;
        break;
      default:
        set_error(target, conn_, res);
        if (!out.ec) {
          out.ec = target.ec;
          out.sqlstate = target.sqlstate;
          out.message = target.message;
          if (target.ec == errc::query_failed)
            out.failed_index = cmd.statement;
        }
        break;
    }
    PQclear(res);
    if (PQstatus(conn_) == CONNECTION_BAD) {
      finish_with(fail_from_libpq(errc::connection_lost));
      co_return out;
    }
  }
  if (!PQexitPipelineMode(conn_)) {
    finish_with(fail_from_libpq(errc::connection_lost));
    co_return out;
  }
  co_return out;
}

}  // namespace sluice::store
