#pragma once

#include <string>
#include <string_view>

namespace sluice {

// A client's bytes as they may go into a log line: anything outside printable ASCII (and the
// backslash) as \xNN, so a request path or header cannot forge log lines or put invalid UTF-8
// into them.
std::string printable(std::string_view text);

}  // namespace sluice
