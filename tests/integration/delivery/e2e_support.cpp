#include "e2e_support.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <thread>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "independent_client.hpp"
#include "test_support.hpp"

namespace sluice::delivery::e2e {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using sluice::test::http_call;

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit,
                std::chrono::milliseconds poll) {
  const auto until = clock::now() + limit;
  while (clock::now() < until) {
    if (condition())
      return true;
    std::this_thread::sleep_for(poll);
  }
  return condition();
}

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> n{0};
  return prefix + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::system_clock::now().time_since_epoch().count() / 1000 %
                        100000000) +
         "-" + std::to_string(n++);
}

namespace {

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string hit::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequal(n, name))
      return v;
  }
  return {};
}

bool hit::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return iequal(h.first, name); });
}

int hit::attempt() const {
  const auto v = header("X-Sluice-Attempt");
  return v.empty() ? 0 : std::stoi(v);
}

hook_target::hook_target(sluice::test::loop_thread& loop, responder respond)
    : loop_(loop), respond_(std::move(respond)) {
  const http::handler h = [this](http::request& req) -> asio::awaitable<http::response> {
    ++running_;
    const int now_in_flight = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now_in_flight > seen && !max_in_flight_.compare_exchange_weak(seen, now_in_flight)) {
    }
    hit record;
    record.at = clock::now();
    record.method = req.method;
    record.target = req.target;
    record.headers = req.headers;
    record.body = req.body;
    if (const long d = delay_ms_.load(); d > 0) {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(d));
      co_await t.async_wait(asio::use_awaitable);
    }
    while (hanging_)
      co_await released_.wait_until(clock::time_point::max());
    http::response out;
    {
      std::lock_guard lock(mutex_);
      const std::size_t index = hits_.size();
      out = respond_ ? respond_(req, index) : http::response::text(200, "text/plain", "ok");
      record.status = out.status;
      hits_.push_back(std::move(record));
    }
    --in_flight_;
    if (--running_ == 0)
      idle_.notify_all();
    co_return out;
  };
  for (const char* m : {"POST", "PUT", "PATCH"})
    routes_.add(m, "/{rest*}", "any", h);
  http::server_options o;
  o.name = "hook-target";
  o.max_body_bytes = 16 * 1024 * 1024;
  server_ = std::make_unique<http::server>(loop_.io().get_executor(), o, routes_, metrics_);
  port_ = server_->listen("127.0.0.1", 0);
  server_->start();
}

hook_target::~hook_target() {
  loop_.run([](hook_target& t) -> asio::awaitable<void> {
    t.hanging_ = false;
    t.released_.notify_all();
    while (t.running_ > 0)
      co_await t.idle_.wait_until(clock::time_point::max());
    co_await t.server_->shutdown(0ms);
  }(*this));
}

void hook_target::hang(bool on) {
  loop_.run([](hook_target& t, bool hang_on) -> asio::awaitable<void> {
    t.hanging_ = hang_on;
    if (!hang_on)
      t.released_.notify_all();
    co_return;
  }(*this, on));
}

std::string hook_target::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void hook_target::set_responder(responder respond) {
  std::lock_guard lock(mutex_);
  respond_ = std::move(respond);
}

std::vector<hit> hook_target::hits() const {
  std::lock_guard lock(mutex_);
  return hits_;
}

std::size_t hook_target::count() const {
  std::lock_guard lock(mutex_);
  return hits_.size();
}

std::map<std::string, int> hook_target::successes_by_key() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, int> out;
  for (const auto& h : hits_) {
    if (h.status >= 200 && h.status < 300)
      ++out[h.header("Idempotency-Key")];
  }
  return out;
}

std::map<std::string, std::vector<hit>> hook_target::by_key() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, std::vector<hit>> out;
  for (const auto& h : hits_)
    out[h.header("Idempotency-Key")].push_back(h);
  return out;
}

double metric(std::uint16_t port, const std::string& series, double fallback) {
  const auto text = http_call(port, "GET", "/metrics").body;
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return fallback;
  return std::stod(text.substr(at + series.size() + 2));
}

delivery_e2e::~delivery_e2e() {
  try {
    amqp::test::independent_client admin(amqp::test::broker_url());
    for (const auto& q : queues_) {
      admin.delete_queue("sluice." + q);
      admin.delete_exchange("sluice." + q);
    }
    for (const auto& q : amqp_queues_)
      admin.delete_queue(q);
  } catch (const std::exception&) {
  }
}

std::string delivery_e2e::queue(const std::string& prefix) {
  queues_.push_back(unique_name(prefix));
  return queues_.back();
}

sluice_process::env_map delivery_e2e::env(sluice_process::env_map extra,
                                          const std::string& instance) {
  extra.try_emplace("DATABASE_URL", db_.url());
  extra.try_emplace("RABBITMQ_URL", sluice::test::require_env("SLUICE_TEST_AMQP_URL"));
  extra.try_emplace("FILE_BUFFER_DIR", dir_.path() + "/buffer-" + instance);
  extra.try_emplace("SLUICE_ROLES", "ingress,workers");
  extra.try_emplace("LOG_LEVEL", "info");
  return extra;
}

void delivery_e2e::put_subscription(const sluice_process& s, const std::string& q,
                                    const std::string& name, const json& body) {
  http_result r;
  eventually(
      [&] {
        r = http_call(s.port(), "PUT", "/api/v1/queues/" + q + "/subscriptions/" + name,
                      body.dump(), {{"Content-Type", "application/json"}});
        return r.status != 503;
      },
      20s, 50ms);
  if (r.status != 201 && r.status != 200)
    throw std::runtime_error("PUT subscription " + q + "/" + name + ": " +
                             std::to_string(r.status) + " " + r.body);
  wait_consuming(s, q, name);
}

void delivery_e2e::wait_consuming(const sluice_process& s, const std::string& q,
                                  const std::string& name) {
  if (!s.wait_for_log("delivery: consuming queue=" + q + " subscription=" + name + " ", 20s))
    throw std::runtime_error("no consumer of " + q + "/" + name + " within 20 s:\n" + s.log());
}

json delivery_e2e::get_subscription(const sluice_process& s, const std::string& q,
                                    const std::string& name) {
  const auto r = http_call(s.port(), "GET", "/api/v1/queues/" + q + "/subscriptions/" + name);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.status == 200 ? r.json() : json::object();
}

namespace {

// The ids of a push's answer; throws unless it is 201 with every item stored or buffered
// ("buffered" is durable too: replayed into PostgreSQL, then relayed; a push right after the
// start may see it).
std::vector<std::string> pushed_ids(const http_result& r) {
  if (r.status != 201)
    throw std::runtime_error("push answered " + std::to_string(r.status) + " " + r.body);
  std::vector<std::string> ids;
  const auto answer = r.json();
  for (const auto& item : answer["items"]) {
    if (item["status"] != "stored" && item["status"] != "buffered")
      throw std::runtime_error("push answered " + item.dump());
    ids.push_back(item["id"]);
  }
  return ids;
}

}  // namespace

std::vector<std::string> delivery_e2e::push(const sluice_process& s, const std::vector<json>& items,
                                            std::size_t batch) {
  std::vector<std::string> ids;
  sluice::test::http_connection conn(s.port());
  for (std::size_t from = 0; from < items.size(); from += batch) {
    json body{{"items", json::array()}};
    for (std::size_t i = from; i < std::min(items.size(), from + batch); ++i)
      body["items"].push_back(items[i]);
    const auto more = pushed_ids(
        conn.request("POST", "/api/v1/push", body.dump(), {{"Content-Type", "application/json"}}));
    ids.insert(ids.end(), more.begin(), more.end());
  }
  return ids;
}

std::vector<std::string> delivery_e2e::push_raw(const sluice_process& s, const std::string& body) {
  return pushed_ids(
      http_call(s.port(), "POST", "/api/v1/push", body, {{"Content-Type", "application/json"}}));
}

std::vector<json> delivery_e2e::dlq(const sluice_process& s, const std::string& query) {
  std::vector<json> rows;
  std::string cursor;
  for (;;) {
    const auto r =
        http_call(s.port(), "GET",
                  "/api/v1/dlq?limit=1000&" + query + (cursor.empty() ? "" : "&cursor=" + cursor));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200)
      return rows;
    const auto page = r.json();
    for (const auto& row : page["items"])
      rows.push_back(row);
    if (!page["next"].is_string())
      return rows;
    cursor = page["next"];
  }
}

std::size_t delivery_e2e::retry_rows() {
  sluice::test::pg_session pg(db_.url());
  return std::stoul(pg.scalar("SELECT count(*) FROM sluice_delivery_retries"));
}

}  // namespace sluice::delivery::e2e
