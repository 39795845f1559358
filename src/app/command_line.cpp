#include "sluice/app/command_line.hpp"

#include <stdexcept>

namespace sluice::app {

command_line parse_command_line(int argc, char** argv) {
  command_line out;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      out.what = command_line::action::help;
    } else if (arg == "--version") {
      out.what = command_line::action::version;
    } else if (arg == "--check-config") {
      out.what = command_line::action::check_config;
    } else if (arg == "--config") {
      if (i + 1 >= argc)
        throw std::invalid_argument("--config needs a file path");
      out.config_file = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      out.config_file = arg.substr(9);
    } else if (arg == "buffer" && i == 1) {
      out.what = command_line::action::buffer_tool;
      out.tool_args.assign(argv + i + 1, argv + argc);
      return out;
    } else if (arg == "ingest" && i == 1) {
      out.what = command_line::action::ingest_tool;
      out.tool_args.assign(argv + i + 1, argv + argc);
      return out;
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "' (see --help)");
    }
  }
  return out;
}

std::string usage_text() {
  return R"(sluice — HTTP-to-queue gateway

Usage:
  sluice [--config FILE]            run the daemon
  sluice --check-config [--config FILE]
                                    validate settings, print the effective values, exit
  sluice buffer stat|dump|verify DIR
                                    inspect a file buffer without the daemon
  sluice ingest FILE|- --queue NAME [--url URL] [--format ndjson|csv] [...]
                                    stream a CSV or NDJSON file into a running sluice
                                    (README: Streaming ingest)
  sluice --version | --help

Settings come from environment variables; --config FILE reads KEY=VALUE lines
(systemd EnvironmentFile syntax) and the process environment overrides them.

Settings (NAME default — description):
)";
}

}  // namespace sluice::app
