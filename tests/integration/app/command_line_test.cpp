// The binary's command line: --help, --version, --check-config, --config files, exit codes.
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "sluice_test/env.hpp"
#include "sluice_test/sluice_process.hpp"

namespace sluice::test {
namespace {

TEST(command_line, version_and_help) {
  auto version = run_sluice({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.output.rfind("sluice ", 0), 0u);
  auto help = run_sluice({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("DATABASE_URL"), std::string::npos);
  EXPECT_NE(help.output.find("FILE_BUFFER_FSYNC"), std::string::npos);
}

TEST(command_line, unknown_flags_exit_2) {
  auto r = run_sluice({"--frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown argument '--frobnicate'"), std::string::npos) << r.output;
}

TEST(command_line, check_config_prints_effective_settings_with_secrets_masked) {
  auto r = run_sluice({"--check-config"}, {{"DATABASE_URL", "postgresql://app:s3cret@db/sluice"},
                                           {"SLUICE_HTTP_ADDR", "127.0.0.1:9999"}});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("DATABASE_URL=user=app password=**** dbname=sluice host=db"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("s3cret"), std::string::npos);
  EXPECT_NE(r.output.find("SLUICE_HTTP_ADDR=127.0.0.1:9999"), std::string::npos);
}

TEST(command_line, invalid_value_exits_2_naming_the_variable) {
  auto r = run_sluice({"--check-config"}, {{"HTTP_IDLE_TIMEOUT_MS", "soon"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("HTTP_IDLE_TIMEOUT_MS='soon': expected an integer"), std::string::npos)
      << r.output;
  auto daemon = run_sluice({}, {{"FILE_BUFFER_FSYNC", "maybe"}});
  EXPECT_EQ(daemon.exit_code, 2) << "the daemon refuses to start too";
}

TEST(command_line, config_file_is_read_and_the_environment_overrides_it) {
  temp_dir dir;
  const std::string path = dir.path() + "/sluice.env";
  std::ofstream(path) << "# settings\nDB_POOL_MAX=17\nLOG_LEVEL=\"warn\"\nHTTP_MAX_BODY_BYTES=1m\n";
  auto r = run_sluice({"--config", path, "--check-config"}, {{"LOG_LEVEL", "error"}});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("DB_POOL_MAX=17"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("HTTP_MAX_BODY_BYTES=1m"), std::string::npos);
  EXPECT_NE(r.output.find("LOG_LEVEL=error"), std::string::npos);

  std::ofstream(path) << "DB_POOL_MAX=17\nthis line is broken\n";
  auto bad = run_sluice({"--config", path, "--check-config"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("sluice.env:2: expected KEY=VALUE"), std::string::npos) << bad.output;
}

// Boost's system_error is not a std::system_error: a port already taken once escaped the
// daemon's catch and aborted it (a core dump instead of a clear message and exit 1).
TEST(command_line, a_taken_port_exits_1_with_a_message) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto r = run_sluice({}, {{"SLUICE_HTTP_ADDR", taken}, {"RABBITMQ_URL", ""}});
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot listen"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace sluice::test
