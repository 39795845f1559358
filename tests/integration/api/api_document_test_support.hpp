#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice::test {

// Runs `command` through the shell; returns its exit code and combined output.
struct command_result {
  int exit_code = -1;
  std::string output;
};
command_result run_command(const std::string& command);

// The npm packages the API document's tests use, installed once into the shared npm cache at
// pinned versions (ensure_npm_package); returns its node_modules directory.
std::string api_document_npm_modules();

// Runs tests/integration/api/validate_responses.js on the document and the recorded
// exchanges (each {"method","target","status","contentType","body"}).
command_result validate_exchanges(const nlohmann::json& document,
                                  const std::vector<nlohmann::json>& exchanges,
                                  const std::string& dir);

// "METHOD /pattern" of every operation of the document.
std::vector<std::string> documented_operations(const nlohmann::json& document);

}  // namespace sluice::test
