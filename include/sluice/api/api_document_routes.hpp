#pragma once

#include <string>

#include "sluice/http/router.hpp"

namespace sluice::api {

// GET /openapi.yaml, /openapi.json (the API document), /docs and /swagger/index.html (the docs
// page), /docs/docs.js (its script). Open to anyone, like the probes.
void add_api_document_routes(http::router& routes);

// Every route of `routes` as one line of JSON, [{"method","pattern","name","access"},…]: the
// daemon logs it at start-up (debug level), and the API document's test compares it with the
// document's paths.
std::string route_table_json(const http::router& routes);

}  // namespace sluice::api
