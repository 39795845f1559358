#include "sluice_test/env.hpp"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <stdlib.h>

namespace sluice::test {

std::string require_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    throw std::runtime_error(std::string(name) + " is not set: run the suite through tests/run");
  }
  return value;
}

temp_dir::temp_dir() {
  const char* base = std::getenv("SLUICE_TEST_TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/sluice-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

temp_dir::~temp_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

namespace {
void control(const char* variable, const std::string& action) {
  const std::string command = require_env(variable) + " " + action;
  if (std::system(command.c_str()) != 0)
    throw std::runtime_error("'" + command + "' failed");
}
}  // namespace

void control_postgres(const std::string& action) {
  control("SLUICE_TEST_PG_CONTROL", action);
}
void control_rabbitmq(const std::string& action) {
  control("SLUICE_TEST_AMQP_CONTROL", action);
}

}  // namespace sluice::test
