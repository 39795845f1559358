#pragma once

#include <string>
#include <string_view>

#include "sluice/http/message.hpp"

namespace sluice::http {

// Writes `r` as HTTP/1.x bytes (status line, headers, body) into `out`, replacing its content
// but keeping its capacity: a connection reuses one buffer for all its responses, so the hot
// path allocates nothing here. Connection handling follows RFC 9112: HTTP/1.1 says
// "Connection: close" when the connection ends, HTTP/1.0 says "Connection: keep-alive" when it
// stays. 1xx, 204 and 304 carry neither body nor Content-Length.
void serialize_response(const response& r, unsigned version, bool keep_alive,
                        std::string_view request_id, std::string& out);

}  // namespace sluice::http
