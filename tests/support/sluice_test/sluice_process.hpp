#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace sluice::test {

// The real `sluice` binary as a child process: started with an environment of our choosing,
// its log captured to a file, its HTTP port learnt from the "listening on" log line.
class sluice_process {
 public:
  using env_map = std::map<std::string, std::string>;

  // Starts the binary with SLUICE_HTTP_ADDR=127.0.0.1:0 unless `env` says otherwise, and waits
  // until it listens (or throws with the log if it exits or takes longer than `timeout`).
  explicit sluice_process(env_map env, std::vector<std::string> args = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // A process still running gets SIGTERM and must exit 0 in time, and one that exited without
  // being told to must have exited 0: otherwise the current test fails with the log. This is
  // how a sanitizer report, a leak found at exit or a crash during shutdown fails a test.
  ~sluice_process();
  sluice_process(const sluice_process&) = delete;
  sluice_process& operator=(const sluice_process&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }

  // Sends `signo` and waits for the exit; returns the exit status (128+n for a signal death),
  // which the caller then owns: the destructor does not judge it.
  int stop(int signo, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits for an exit the test caused otherwise (a signal of its own, a shutdown); as stop().
  int wait_for_exit(std::chrono::milliseconds timeout);
  void kill9();
  bool running();

  std::string log() const;
  // Waits until the log contains `text`; false on timeout.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout) const;

  static std::string binary_path();

 private:
  pid_t pid_ = -1;
  int exit_status_ = -1;
  bool stopped_by_test_ = false;
  std::uint16_t port_ = 0;
  std::string log_path_;
};

// Runs the binary to completion (for --help, --check-config, buffer tools); returns exit code
// and combined output.
struct run_result {
  int exit_code = -1;
  std::string output;
};
run_result run_sluice(const std::vector<std::string>& args,
                      const sluice_process::env_map& env = {});

}  // namespace sluice::test
