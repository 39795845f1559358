#pragma once

#include <optional>

#include "sluice/http/message.hpp"

namespace sluice::http {

// For routes that read a JSON body: the 415 to answer when the request says its body is
// something else (a Content-Type that is not JSON, or a Content-Encoding such as gzip that sluice
// would have to undo), else nothing. A request without Content-Type is read as JSON (scripts
// often omit it); a browser form always sends one, so a web page cannot push by posting a
// form to sluice.
std::optional<response> reject_non_json_body(const request& req);

}  // namespace sluice::http
