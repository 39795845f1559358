#include "api_document_test_support.hpp"

#include <array>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <sys/wait.h>

#include "sluice_test/npm.hpp"

namespace sluice::test {

command_result run_command(const std::string& command) {
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr)
    throw std::runtime_error("popen failed: " + command);
  command_result out;
  std::array<char, 4096> buf{};
  while (const std::size_t n = std::fread(buf.data(), 1, buf.size(), p))
    out.output.append(buf.data(), n);
  const int status = ::pclose(p);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

std::string api_document_npm_modules() {
  ensure_npm_package("ajv", "8.20.0");
  ensure_npm_package("ajv-formats", "3.0.1");
  return ensure_npm_package("@redocly/cli", "2.77.0");
}

command_result validate_exchanges(const nlohmann::json& document,
                                  const std::vector<nlohmann::json>& exchanges,
                                  const std::string& dir) {
  const std::string modules = api_document_npm_modules();
  const std::string path = dir + "/exchanges.json";
  std::ofstream(path) << nlohmann::json{{"document", document}, {"exchanges", exchanges}}.dump();
  return run_command("NODE_PATH='" + modules +
                     "' node '" SLUICE_API_TEST_DIR "/validate_responses.js' '" + path + "'");
}

std::vector<std::string> documented_operations(const nlohmann::json& document) {
  std::vector<std::string> out;
  for (const auto& [path, item] : document.at("paths").items()) {
    for (const char* method : {"get", "put", "post", "delete", "options", "head", "patch"}) {
      if (!item.contains(method))
        continue;
      std::string upper = method;
      for (auto& c : upper)
        c = static_cast<char>(c - 'a' + 'A');
      out.push_back(upper + " " + path);
    }
  }
  return out;
}

}  // namespace sluice::test
