#include "sluice/http/response_wire.hpp"

#include <charconv>
#include <ostream>  // Boost 1.81's string_view.hpp uses std::ostream without including it

#include <boost/beast/http/status.hpp>

namespace sluice::http {
namespace {

void append_number(std::string& out, std::size_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

void serialize_response(const response& r, unsigned version, bool keep_alive,
                        std::string_view request_id, std::string& out) {
  namespace bhttp = boost::beast::http;
  const bool bodiless = r.status < 200 || r.status == 204 || r.status == 304;
  out.clear();
  out.reserve(160 + r.body.size());
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, static_cast<std::size_t>(r.status));
  out.push_back(' ');
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(r.status));
  out.append(reason.data(), reason.size());
  out.append("\r\nServer: sluice/" SLUICE_VERSION "\r\n");
  if (!bodiless && !r.content_type.empty())
    append_header(out, "Content-Type", r.content_type);
  append_header(out, "X-Request-Id", request_id);
  for (const auto& [name, value] : r.headers)
    append_header(out, name, value);
  if (version == 10 && keep_alive)
    out.append("Connection: keep-alive\r\n");
  else if (version != 10 && !keep_alive)
    out.append("Connection: close\r\n");
  if (!bodiless) {
    out.append("Content-Length: ");
    append_number(out, r.body.size());
    out.append("\r\n\r\n");
    out.append(r.body);
  } else {
    out.append("\r\n");
  }
}

}  // namespace sluice::http
