#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sluice/http/message.hpp"

namespace sluice::api {

// The rule of the push API's queue field (1 to 128 bytes of letters, digits and . _ : -),
// because the name becomes sluice.<queue> in RabbitMQ. Every route with a {queue} uses it.
bool valid_queue_name(std::string_view name);
// The percent-decoded {queue} path parameter, when it is a valid name.
std::optional<std::string> queue_param(const http::request& req);
// 400 invalid_queue, stating the rule.
http::response invalid_queue();

}  // namespace sluice::api
