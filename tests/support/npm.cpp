#include "sluice_test/npm.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <stdexcept>
#include <sys/file.h>
#include <unistd.h>

namespace sluice::test {

std::string ensure_npm_package(const std::string& name, const std::string& version) {
  const char* env = std::getenv("SLUICE_TEST_NPM_CACHE");
  const std::string cache = env != nullptr && *env != '\0' ? env : "/var/cache/sluice-npm";
  const std::string modules = cache + "/node_modules";
  const std::string marker = modules + "/" + name + "/package.json";
  if (std::filesystem::exists(marker))
    return modules;
  std::filesystem::create_directories(cache);
  const std::string lock_path = cache + "/.install.lock";
  const int lock = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0) {
    if (lock >= 0)
      ::close(lock);
    throw std::runtime_error("cannot lock " + lock_path);
  }
  // Another test may have installed it while this one waited for the lock.
  if (!std::filesystem::exists(marker)) {
    const std::string spec = name + "@" + version;
    const std::string log = cache + "/npm-install.log";
    const std::string command = "npm install --no-audit --no-fund --silent --prefix '" + cache +
                                "' '" + spec + "' > '" + log + "' 2>&1";
    const int rc = std::system(command.c_str());
    if (rc != 0 || !std::filesystem::exists(marker)) {
      ::close(lock);
      throw std::runtime_error("npm install " + spec + " failed; see " + log);
    }
  }
  ::close(lock);
  return modules;
}

}  // namespace sluice::test
