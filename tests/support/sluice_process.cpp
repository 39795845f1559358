#include "sluice_test/sluice_process.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <regex>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"

namespace sluice::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int decode_status(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

pid_t spawn(const std::vector<std::string>& args, const sluice_process::env_map& env,
            const std::string& log_path) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const auto key = entry.substr(0, entry.find('='));
    if (env.count(key) == 0)
      env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env)
    env_strings.push_back(k + "=" + v);
  std::vector<char*> argv;
  std::string binary = sluice_process::binary_path();
  argv.push_back(binary.data());
  std::vector<std::string> args_copy = args;
  for (auto& a : args_copy)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings)
    envp.push_back(e.data());
  envp.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0)
    throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    // Nothing else the test process holds (proxy sockets, pipes) may live on in the child.
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

std::string make_log_path() {
  const char* base = std::getenv("SLUICE_TEST_TMPDIR");
  std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/sluice-log-XXXXXX";
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0)
    throw std::runtime_error("mkstemp failed");
  ::close(fd);
  return pattern;
}

}  // namespace

std::string sluice_process::binary_path() {
  // SLUICE_TEST_BINARY runs a test against another build (an older commit, to show that a test
  // fails there).
  if (const char* other = std::getenv("SLUICE_TEST_BINARY"); other != nullptr && *other != '\0')
    return other;
  return SLUICE_BINARY_PATH;
}

sluice_process::sluice_process(env_map env, std::vector<std::string> args,
                               std::chrono::milliseconds timeout)
    : log_path_(make_log_path()) {
  env.try_emplace("SLUICE_HTTP_ADDR", "127.0.0.1:0");
  env.try_emplace("LOG_LEVEL", "debug");
  pid_ = spawn(args, env, log_path_);
  const std::regex listening(R"(http\[api\]: listening on \S*:(\d+))");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    const std::string text = log();
    if (std::regex_search(text, m, listening)) {
      port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
      return;
    }
    if (!running())
      throw std::runtime_error("sluice exited with " + std::to_string(exit_status_) + ":\n" + text);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill9();
  throw std::runtime_error("sluice did not start listening in time:\n" + log());
}

sluice_process::~sluice_process() {
  std::string problem;
  if (running()) {
    ::kill(pid_, SIGTERM);
    // SHUTDOWN_GRACE_MS is 10 s by default; a clean stop takes milliseconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (running()) {
      kill9();
      problem = "did not exit within 30 s of SIGTERM";
    } else if (exit_status_ != 0) {
      problem =
          "exited with " + std::to_string(exit_status_) + " on SIGTERM at the end of the test";
    }
  } else if (!stopped_by_test_ && exit_status_ != 0) {
    problem = "exited with " + std::to_string(exit_status_) + " while the test ran";
  }
  if (!problem.empty()) {
    const std::string text = log();
    const auto tail = text.size() > 20000 ? text.substr(text.size() - 20000) : text;
    ADD_FAILURE() << "sluice (pid " << pid_ << ") " << problem << "; log:\n" << tail;
  }
  std::remove(log_path_.c_str());
}

bool sluice_process::running() {
  if (exit_status_ >= 0)
    return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = decode_status(status);
    return false;
  }
  return true;
}

int sluice_process::stop(int signo, std::chrono::milliseconds timeout) {
  stopped_by_test_ = true;
  if (!running())
    return exit_status_;
  ::kill(pid_, signo);
  return wait_for_exit(timeout);
}

int sluice_process::wait_for_exit(std::chrono::milliseconds timeout) {
  stopped_by_test_ = true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running())
      return exit_status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill9();
  throw std::runtime_error("sluice did not exit within " + std::to_string(timeout.count()) +
                           " ms:\n" + log());
}

void sluice_process::kill9() {
  stopped_by_test_ = true;
  if (!running())
    return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exit_status_ = decode_status(status);
}

std::string sluice_process::log() const {
  return read_file(log_path_);
}

bool sluice_process::wait_for_log(const std::string& text,
                                  std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    if (log().find(text) != std::string::npos)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

run_result run_sluice(const std::vector<std::string>& args, const sluice_process::env_map& env) {
  const std::string log_path = make_log_path();
  const pid_t pid = spawn(args, env, log_path);
  int status = 0;
  ::waitpid(pid, &status, 0);
  run_result r{decode_status(status), read_file(log_path)};
  std::remove(log_path.c_str());
  return r;
}

}  // namespace sluice::test
