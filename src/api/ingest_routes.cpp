#include "sluice/api/ingest_routes.hpp"

#include <memory>
#include <string>
#include <string_view>

#include "sluice/api/queue_name.hpp"
#include "sluice/core/ascii_lower.hpp"
#include "sluice/core/percent_decode.hpp"
#include "sluice/ingest/ingest_session.hpp"

#include <nlohmann/json.hpp>

namespace sluice::api {
namespace {

using json = nlohmann::json;

// transactionId is "<key>:<line>" and may be 256 bytes (push_request.hpp: max_id_bytes).
constexpr std::size_t max_idempotency_key_bytes = 200;

http::response bad_parameter(std::string_view name, std::string_view rule) {
  return http::error_response(400, "invalid_parameter",
                              std::string(name) + ": " + std::string(rule));
}

std::optional<ingest::body_format> format_of(std::string_view content_type) {
  const auto semicolon = content_type.find(';');
  auto media = content_type.substr(0, semicolon);
  while (!media.empty() && media.back() == ' ')
    media.remove_suffix(1);
  while (!media.empty() && media.front() == ' ')
    media.remove_prefix(1);
  const auto lower = ascii_lower(media);
  if (lower == "application/x-ndjson")
    return ingest::body_format::ndjson;
  if (lower == "text/csv")
    return ingest::body_format::csv;
  return std::nullopt;
}

json rejected_json(const ingest::ingest_result& r) {
  json list = json::array();
  for (const auto& e : r.rejected)
    list.push_back({{"line", e.line}, {"message", e.message}});
  return list;
}

json counts_json(const ingest::ingest_result& r) {
  return {{"accepted", r.accepted},
          {"duplicates", r.duplicates},
          {"buffered", r.buffered},
          {"rejected", rejected_json(r)},
          {"rejectedCount", r.rejected_count},
          {"durableThroughLine", r.durable_through_line},
          {"bytes", r.bytes_read}};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// What the caller's query asks for, or the 400 naming the bad parameter.
std::optional<http::response> read_parameters(const http::request& req,
                                              ingest::ingest_options& options) {
  if (const auto unknown =
          req.unknown_query_param({"partition_field", "time_field", "time_format", "strict"})) {
    return bad_parameter(*unknown,
                         "unknown parameter (partition_field, time_field, time_format, strict)");
  }
  if (auto v = req.query_param("partition_field")) {
    if (v->empty())
      return bad_parameter("partition_field", "expected the name of a key or column");
    options.rows.partition_field = std::move(*v);
  }
  if (auto v = req.query_param("time_field")) {
    if (v->empty())
      return bad_parameter("time_field", "expected the name of a key or column");
    options.rows.time_field = std::move(*v);
  }
  if (auto v = req.query_param("time_format")) {
    const auto format = ingest::parse_time_format(*v);
    if (!format)
      return bad_parameter("time_format", "expected rfc3339, epoch_s or epoch_ms");
    if (!options.rows.time_field)
      return bad_parameter("time_format", "needs time_field");
    options.rows.format = *format;
  }
  if (auto v = req.query_param("strict")) {
    if (*v != "true" && *v != "false")
      return bad_parameter("strict", "expected true or false");
    options.strict = *v == "true";
  }
  if (auto key = req.header("Idempotency-Key")) {
    if (key->empty() || key->size() > max_idempotency_key_bytes)
      return bad_parameter("Idempotency-Key",
                           "must be 1 to " + std::to_string(max_idempotency_key_bytes) + " bytes");
    for (char c : *key) {
      const auto byte = static_cast<unsigned char>(c);
      if (byte < 0x20 || byte >= 0x7f)
        return bad_parameter("Idempotency-Key", "must be printable ASCII");
    }
    options.rows.idempotency_key = std::string(*key);
  }
  return std::nullopt;
}

// Uploads in progress; the bound keeps many slow uploads from holding a batch each.
struct upload_slots {
  std::size_t in_use = 0;
};

class slot_guard {
 public:
  explicit slot_guard(upload_slots& s) : slots_(s) { ++slots_.in_use; }
  ~slot_guard() { --slots_.in_use; }
  slot_guard(const slot_guard&) = delete;
  slot_guard& operator=(const slot_guard&) = delete;

 private:
  upload_slots& slots_;
};

}  // namespace

void add_ingest_routes(http::router& routes, push::push_service& service, ingest_limits limits) {
  http::route_options route;
  route.required = http::access::write;
  route.resource_param = "queue";
  route.stream_body = true;
  route.max_body_bytes = limits.max_body_bytes;
  auto slots = std::make_shared<upload_slots>();
  routes.add(
      "POST", "/api/v1/queues/{queue}/ingest", "/api/v1/queues/{queue}/ingest",
      [&service, limits, slots](http::request& req) -> boost::asio::awaitable<http::response> {
        auto queue = queue_param(req);
        if (!queue)
          co_return invalid_queue();
        const auto content_type = req.header("Content-Type");
        const auto format = content_type ? format_of(*content_type) : std::nullopt;
        if (!format) {
          co_return http::error_response(415, "unsupported_media_type",
                                         "Content-Type must be application/x-ndjson or text/csv");
        }
        ingest::ingest_options options;
        options.format = *format;
        options.rows.queue = std::move(*queue);
        options.rows.max_row_bytes = limits.max_row_bytes;
        options.max_body_bytes = limits.max_body_bytes;
        if (auto bad = read_parameters(req, options))
          co_return std::move(*bad);
        if (slots->in_use >= limits.max_concurrent_uploads) {
          co_return http::overloaded_response(
              503, "overloaded",
              std::to_string(limits.max_concurrent_uploads) + " uploads are in progress", 1);
        }
        slot_guard slot(*slots);
        const ingest::push_function push = [&service](push::push_request r) {
          return service.push(std::move(r));
        };
        const auto result = co_await ingest::run_ingest(*req.body_stream, options, push);
        if (result.error_status == 0)
          co_return http::response::json(200, dump(counts_json(result)));
        json body = counts_json(result);
        body["error"] = {{"code", result.error_code}, {"message", result.error_message}};
        auto response = http::response::json(result.error_status, dump(body));
        if (result.retry_after_seconds > 0)
          response.with_header("Retry-After", std::to_string(result.retry_after_seconds));
        co_return response;
      },
      route);
}

}  // namespace sluice::api
