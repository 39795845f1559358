#pragma once

#include <optional>
#include <string>
#include <vector>

namespace sluice::app {

struct command_line {
  enum class action {
    run,
    help,
    version,
    check_config,
    buffer_tool,
    ingest_tool
  } what = action::run;
  std::optional<std::string> config_file;
  std::vector<std::string> tool_args;  // for `sluice buffer ...` and `sluice ingest ...`
};

// Throws std::invalid_argument with a message for the user on unknown or incomplete flags.
command_line parse_command_line(int argc, char** argv);

std::string usage_text();

}  // namespace sluice::app
