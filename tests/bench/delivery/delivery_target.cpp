// The HTTP target of tests/bench/delivery/run: answers sluice's deliveries as fast as one thread
// can, and measures each message's delivery lag (now - the send time its payload carries).
//
//   delivery_target --port N
//
// POST with a JSON array body (a batch, see README "Batch mode"): answers 200 with one status
// per item, `[200,200,…]`, in the numbers form of the batch response. Any other POST: 200, empty
// body. Every message's payload is expected to hold `"t":<Unix epoch µs>` (delivery_push writes
// it); its lag is the target's wall clock at receipt minus that.
// GET /stats answers {"requests","items","lagCount","lagP50Us","lagP99Us","lagMaxUs",
// "lastItemNs"} over the samples since the last GET /stats?reset=1 (which also clears them);
// lastItemNs is the wall-clock time (Unix ns) the last item arrived.
//
// Items are counted by their "payload" key and lags found by their `"t":` key, without parsing
// the JSON: the target must cost little next to sluice on the same two cores.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct stats {
  std::uint64_t requests = 0;
  std::uint64_t items = 0;
  std::int64_t last_item_ns = 0;
  std::vector<std::int64_t> lag_us;
};

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::size_t count_of(std::string_view body, std::string_view key) {
  std::size_t n = 0;
  for (auto at = body.find(key); at != std::string_view::npos; at = body.find(key, at + key.size()))
    ++n;
  return n;
}

// Every `"t":<digits>` of the body (whitespace after the colon allowed: PostgreSQL's jsonb
// writes one) becomes a lag sample.
void record_lags(std::string_view body, std::int64_t now_ns, stats& s) {
  constexpr std::string_view key = "\"t\":";
  for (auto at = body.find(key); at != std::string_view::npos; at = body.find(key, at)) {
    at += key.size();
    while (at < body.size() && body[at] == ' ')
      ++at;
    std::int64_t t = 0;
    bool digits = false;
    while (at < body.size() && body[at] >= '0' && body[at] <= '9') {
      t = t * 10 + (body[at] - '0');
      ++at;
      digits = true;
    }
    if (digits)
      s.lag_us.push_back(now_ns / 1000 - t);
  }
}

std::int64_t percentile(const std::vector<std::int64_t>& sorted, double q) {
  if (sorted.empty())
    return 0;
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(rank, sorted.size() - 1)];
}

std::string stats_json(stats& s, bool reset) {
  std::vector<std::int64_t> sorted = s.lag_us;
  std::sort(sorted.begin(), sorted.end());
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"requests\":%llu,\"items\":%llu,\"lagCount\":%zu,\"lagP50Us\":%lld,"
                "\"lagP99Us\":%lld,\"lagMaxUs\":%lld,\"lastItemNs\":%lld}\n",
                static_cast<unsigned long long>(s.requests),
                static_cast<unsigned long long>(s.items), sorted.size(),
                static_cast<long long>(percentile(sorted, 0.50)),
                static_cast<long long>(percentile(sorted, 0.99)),
                static_cast<long long>(sorted.empty() ? 0 : sorted.back()),
                static_cast<long long>(s.last_item_ns));
  if (reset)
    s = stats{};
  return buf;
}

http::response<http::string_body> answer(const http::request<http::string_body>& req, stats& s) {
  http::response<http::string_body> res(http::status::ok, req.version());
  res.keep_alive(req.keep_alive());
  if (req.method() == http::verb::get) {
    res.set(http::field::content_type, "application/json");
    res.body() = stats_json(s, req.target().find("reset=1") != std::string_view::npos);
  } else {
    const std::string_view body = req.body();
    const std::int64_t now = wall_ns();
    ++s.requests;
    record_lags(body, now, s);
    s.last_item_ns = now;
    if (!body.empty() && body.front() == '[') {
      const std::size_t n = count_of(body, "\"payload\":");
      s.items += n;
      std::string statuses = "[";
      statuses.reserve(n * 4 + 2);
      for (std::size_t i = 0; i < n; ++i)
        statuses += i ? ",200" : "200";
      statuses += ']';
      res.set(http::field::content_type, "application/json");
      res.body() = std::move(statuses);
    } else {
      ++s.items;
    }
  }
  res.prepare_payload();
  return res;
}

asio::awaitable<void> session(tcp::socket socket, stats& s) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    stream.expires_after(std::chrono::minutes(10));
    auto [ec, n] =
        co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (ec)
      break;  // end_of_stream included: sluice closed an idle connection
    auto res = answer(parser.get(), s);
    const bool keep = res.keep_alive();
    auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !keep)
      break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, stats& s) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec)
      co_return;
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), s), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || std::string_view(argv[1]) != "--port") {
    std::fprintf(stderr, "usage: delivery_target --port N\n");
    return 1;
  }
  const auto port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  asio::io_context io(1);
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  stats s;
  s.lag_us.reserve(1 << 20);
  asio::co_spawn(io, listen(acceptor, s), asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
  io.run();
  return 0;
}
