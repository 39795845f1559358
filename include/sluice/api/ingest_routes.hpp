#pragma once

#include <cstddef>

#include "sluice/http/router.hpp"
#include "sluice/push/push_service.hpp"

namespace sluice::api {

struct ingest_limits {
  std::size_t max_body_bytes = 16ULL << 30;  // INGEST_MAX_BYTES
  std::size_t max_row_bytes = 1024 * 1024;   // PUSH_MAX_PAYLOAD_BYTES: a row is a payload
  std::size_t max_concurrent_uploads = 16;   // more are answered 503 with Retry-After
};

// POST /api/v1/queues/{queue}/ingest: NDJSON or CSV streamed into the push path.
void add_ingest_routes(http::router& routes, push::push_service& service, ingest_limits limits);

}  // namespace sluice::api
