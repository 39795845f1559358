#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/config/settings.hpp"

namespace sluice::config {

using env_map = std::map<std::string, std::string>;

// Raised at start-up only; the message names the variable and what was expected. main() prints
// it and exits 2.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads a KEY=VALUE file exactly as systemd 252's EnvironmentFile= does (comments, blanks,
// single quotes literal, double quotes unescaping only \" \\ \` \$, quoted values spanning lines,
// backslash line continuation), but rejects with file:line what systemd would skip or guess: a
// line without `=`, a key that is no variable name, a quote left open.
env_map read_env_file(const std::string& path);

// Builds settings from defaults overridden by `env`. Collects every problem before throwing, so
// a user fixes a broken file in one pass.
settings load_settings(const env_map& env);

// The process environment as a map.
env_map process_environment();

struct setting_info {
  std::string name;
  std::string value;  // effective value, secrets masked
  std::string default_value;
  std::string description;
};

// Every setting with its effective value, for --check-config and --help.
std::vector<setting_info> describe(const settings& effective);

}  // namespace sluice::config
