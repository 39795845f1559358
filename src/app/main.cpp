#include <csignal>
#include <cstdlib>
#include <iostream>

#include "sluice/amqp/url.hpp"
#include "sluice/app/command_line.hpp"
#include "sluice/app/daemon.hpp"
#include "sluice/buffer/buffer_command.hpp"
#include "sluice/config/loader.hpp"
#include "sluice/ingest/ingest_command.hpp"

namespace {

int print_settings(const sluice::config::settings& s, bool with_defaults) {
  for (const auto& info : sluice::config::describe(s)) {
    if (with_defaults) {
      std::cout << "  " << info.name << " "
                << (info.default_value.empty() ? "(empty)" : info.default_value) << "\n      "
                << info.description << "\n";
    } else {
      std::cout << info.name << "=" << info.value << "\n";
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdout or stderr (a log reader that went away) must not kill the daemon; sockets
  // get EPIPE as an error code instead.
  std::signal(SIGPIPE, SIG_IGN);
  using sluice::app::command_line;
  command_line cmd;
  try {
    cmd = sluice::app::parse_command_line(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "sluice: " << e.what() << "\n";
    return 2;
  }
  switch (cmd.what) {
    case command_line::action::help:
      std::cout << sluice::app::usage_text();
      return print_settings(sluice::config::settings{}, true);
    case command_line::action::version:
      std::cout << "sluice " << SLUICE_VERSION << "\n";
      return 0;
    case command_line::action::buffer_tool:
      return sluice::buffer::run_buffer_command(cmd.tool_args, std::cout, std::cerr);
    case command_line::action::ingest_tool:
      return sluice::ingest::run_ingest_command(cmd.tool_args, std::cout, std::cerr);
    default:
      break;
  }

  sluice::config::settings settings;
  try {
    auto env = sluice::config::process_environment();
    if (cmd.config_file) {
      // The file fills in what the environment does not set; its entries also reach the
      // environment so libpq sees PG* variables written there.
      for (const auto& [key, value] : sluice::config::read_env_file(*cmd.config_file)) {
        if (env.emplace(key, value).second)
          ::setenv(key.c_str(), value.c_str(), 0);
      }
    }
    settings = sluice::config::load_settings(env);
  } catch (const sluice::config::config_error& e) {
    std::cerr << "sluice: " << e.what() << "\n";
    return 2;
  }
  // The config module checks only the scheme (it does not depend on the amqp module); the full
  // parse runs here, so --check-config catches a bad port or vhost too. Its messages never
  // quote the password.
  if (std::string error;
      !settings.rabbitmq_url.empty() && !sluice::amqp::url::parse(settings.rabbitmq_url, &error)) {
    std::cerr << "sluice: invalid RABBITMQ_URL: " << error << "\n";
    return 2;
  }
  if (cmd.what == command_line::action::check_config) {
    std::cout << "configuration OK\n";
    return print_settings(settings, false);
  }
  return sluice::app::run_daemon(settings);
}
