#include "sluice/api/push_routes.hpp"

#include <charconv>
#include <chrono>
#include <string>

#include "sluice/http/caller_checks.hpp"
#include "sluice/http/json_body.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::api {
namespace {

using json = nlohmann::json;

http::response invalid(const push::parse_outcome& parsed) {
  json error = {{"code", parsed.error_code}, {"message", parsed.error_message}};
  if (!parsed.item_errors.empty()) {
    json items = json::array();
    for (const auto& e : parsed.item_errors) {
      items.push_back({{"index", e.index}, {"field", e.field}, {"message", e.message}});
    }
    error["items"] = std::move(items);
  }
  return http::response::json(
      400, json{{"error", std::move(error)}}.dump(-1, ' ', false, json::error_handler_t::replace));
}

http::response accepted(const push::push_outcome& out) {
  // Written by hand: this is the hot path's response, and ids and statuses need no escaping.
  std::string body;
  body.reserve(96 + out.items.size() * 96);
  body += R"({"pushed":true,"qos0":)";
  body += out.qos0 ? "true" : "false";
  body += R"(,"dbHealthy":)";
  body += out.db_healthy ? "true" : "false";
  body += R"(,"items":[)";
  for (std::size_t i = 0; i < out.items.size(); ++i) {
    const auto& item = out.items[i];
    if (i > 0)
      body.push_back(',');
    body += R"({"id":")";
    body += item.id.to_string();
    body += R"(","transactionId":)";
    body += item.transaction_id ? json(*item.transaction_id).dump() : "null";
    body += R"(,"status":")";
    body += push::to_string(item.status);
    body += "\"}";
  }
  body += "]}";
  return http::response::json(201, std::move(body));
}

json log_json(const push::log_status& s) {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return {{"pending", s.stats.pending_records},
          {"pendingBytes", s.stats.pending_bytes},
          {"diskBytes", s.stats.disk_bytes},
          {"segments", s.stats.segments},
          {"oldestPendingAgeMs", s.stats.oldest_pending_created_ms
                                     ? json(now_ms - *s.stats.oldest_pending_created_ms)
                                     : json(nullptr)},
          {"failed", s.stats.failed_records},
          {"appendedTotal", s.stats.appended_total},
          {"replayedTotal", s.stats.acked_total},
          {"replayRatePerSec", s.replay_rate_per_second},
          {"truncatedTails", s.stats.truncated_tails_total},
          {"quarantinedSegments", s.stats.quarantined_segments_total},
          {"quarantinedBytes", s.stats.quarantined_bytes_total},
          {"unreadableRanges", s.stats.unreadable_ranges_total},
          {"unreadableRecords", s.stats.unreadable_records_total},
          {"readErrors", s.stats.read_errors_total},
          {"failedBytes", s.stats.failed_bytes},
          {"failedFullRefusals", s.stats.failed_full_total},
          {"setAside", s.set_aside_total}};
}

}  // namespace

void add_push_routes(http::router& routes, push::push_service& service, push::push_limits limits) {
  routes.add(
      "POST", "/api/v1/push", "/api/v1/push",
      [&service, limits](http::request& req) -> boost::asio::awaitable<http::response> {
        if (auto rejected = http::reject_non_json_body(req))
          co_return std::move(*rejected);
        auto parsed = push::parse_push_request(req.body, limits);
        if (!parsed.request)
          co_return invalid(parsed);
        // A batch is stored whole or not at all: one queue the token does not cover
        // refuses all of it.
        for (const auto& item : parsed.request->items) {
          if (auto refused = http::refuse_uncovered(req, item.queue))
            co_return std::move(*refused);
        }
        const auto out = co_await service.push(std::move(*parsed.request));
        if (out.error_status != 0) {
          if (out.retry_after_seconds > 0) {
            co_return http::overloaded_response(out.error_status, out.error_code, out.error_message,
                                                out.retry_after_seconds);
          }
          co_return http::error_response(out.error_status, out.error_code, out.error_message);
        }
        co_return accepted(out);
      },
      http::needs(http::access::write));

  routes.add(
      "GET", "/api/v1/status/buffers", "/api/v1/status/buffers",
      [&service](http::request&) -> boost::asio::awaitable<http::response> {
        const auto s = service.status();
        json body = {{"pending", s.failover.stats.pending_records + s.qos0.stats.pending_records},
                     {"failed", s.failover.stats.failed_records + s.qos0.stats.failed_records},
                     {"dbHealthy", s.db_healthy},
                     {"schemaReady", s.schema_ready},
                     {"failoverActive", s.failover_active},
                     {"mode", push::to_string(s.mode)},
                     {"pendingTransactionIds", s.pending_index_entries},
                     {"logs", {{"failover", log_json(s.failover)}, {"qos0", log_json(s.qos0)}}}};
        co_return http::response::json(200, body.dump());
      },
      http::needs(http::access::read));

  routes.add(
      "POST", "/api/v1/status/buffers/retry-failed", "/api/v1/status/buffers/retry-failed",
      [&service](http::request& req) -> boost::asio::awaitable<http::response> {
        buffer::retry_filter filter;
        if (auto queue = req.query_param("queue")) {
          if (queue->empty()) {
            co_return http::error_response(400, "invalid_request", "queue: expected a queue name");
          }
          filter.queue = std::move(*queue);
        }
        if (auto refused = http::refuse_unfiltered(req, filter.queue, "queue"))
          co_return std::move(*refused);
        if (auto reason = req.query_param("reason")) {
          if (reason->empty()) {
            co_return http::error_response(400, "invalid_request",
                                           "reason: expected text the reason contains");
          }
          filter.reason_substring = std::move(*reason);
        }
        constexpr std::size_t max_limit = 100'000;
        if (auto limit = req.query_param("limit")) {
          std::size_t n = 0;
          const auto* end = limit->data() + limit->size();
          const auto [ptr, ec] = std::from_chars(limit->data(), end, n);
          if (limit->empty() || ec != std::errc{} || ptr != end || n > max_limit) {
            co_return http::error_response(
                400, "invalid_request",
                "limit: expected a whole number from 0 to " + std::to_string(max_limit));
          }
          filter.max_records = n;
        }
        const auto r = co_await service.retry_failed(std::move(filter));
        spdlog::info("push: {} failed records put back for replay by {}", r.retried,
                     http::actor_of(req));
        co_return http::response::json(
            200, json{{"retried", r.retried}, {"remaining", r.remaining}}.dump());
      },
      http::needs(http::access::admin));
}

}  // namespace sluice::api
