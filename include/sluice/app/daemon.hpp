#pragma once

#include "sluice/config/settings.hpp"

namespace sluice::app {

// Wires every module onto one io_context, serves until SIGTERM/SIGINT, then shuts down
// gracefully. Returns the process exit code.
int run_daemon(const config::settings& settings);

}  // namespace sluice::app
