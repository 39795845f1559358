#pragma once

#include <string>

namespace sluice::test {

// Installs `name@version` from the npm registry into
// ${SLUICE_TEST_NPM_CACHE:-/var/cache/sluice-npm} once (under a file lock: tests run in parallel,
// and npm must not write one prefix twice at a time) and returns that cache's node_modules
// directory, for NODE_PATH. Packages installed for other tests stay (the prefix's package.json
// lists them). Throws naming the install log when npm fails.
std::string ensure_npm_package(const std::string& name, const std::string& version);

}  // namespace sluice::test
