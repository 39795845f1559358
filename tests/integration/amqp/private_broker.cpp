#include "private_broker.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pwd.h>
#include <signal.h>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "independent_client.hpp"

namespace sluice::amqp::test {
namespace {

bool alive(pid_t pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

void chown_to_rabbitmq(const std::string& path) {
  const passwd* pw = ::getpwnam("rabbitmq");
  if (pw == nullptr || ::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    throw std::runtime_error("private_broker: cannot chown " + path + " to rabbitmq");
  }
}

}  // namespace

private_broker::private_broker(std::uint16_t port, std::uint16_t dist_port, std::string node)
    : port_(port), dist_port_(dist_port), node_(std::move(node)) {
  char tmpl[] = "/tmp/sluice-amqp-broker-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    throw std::runtime_error("private_broker: mkdtemp failed");
  }
  dir_ = tmpl;
  for (const auto* sub : {"", "/mnesia", "/log"}) {
    std::filesystem::create_directories(dir_ + sub);
    chown_to_rabbitmq(dir_ + sub);
  }
}

private_broker::~private_broker() {
  try {
    if (running()) {
      resume();
      stop();
    }
  } catch (...) {
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void private_broker::enable_tls(tls_listener tls) {
  config_file_ = dir_ + "/rabbitmq.conf";
  std::ofstream(config_file_) << "listeners.ssl.default = " << tls.port << "\n"
                              << "ssl_options.cacertfile = " << tls.ca_file << "\n"
                              << "ssl_options.certfile = " << tls.cert_file << "\n"
                              << "ssl_options.keyfile = " << tls.key_file << "\n"
                              << "ssl_options.verify = verify_none\n"
                              << "ssl_options.fail_if_no_peer_cert = false\n";
  chown_to_rabbitmq(config_file_);
}

url private_broker::broker_url() const {
  url u;
  u.host = "127.0.0.1";
  u.port = port_;
  return u;
}

pid_t private_broker::read_pid_file(std::chrono::seconds timeout) const {
  const std::string path = dir_ + "/mnesia/" + node_ + ".pid";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    long pid = 0;
    if (in >> pid && pid > 0) {
      return static_cast<pid_t>(pid);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return -1;
}

void private_broker::start(std::chrono::seconds timeout) {
  if (running()) {
    return;
  }
  std::filesystem::remove(dir_ + "/mnesia/" + node_ + ".pid");
  const std::string script =
      "export HOME=/var/lib/rabbitmq RABBITMQ_NODENAME=" + node_ +
      " RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=" + std::to_string(port_) +
      " RABBITMQ_DIST_PORT=" + std::to_string(dist_port_) + " RABBITMQ_MNESIA_BASE=" + dir_ +
      "/mnesia RABBITMQ_LOG_BASE=" + dir_ + "/log RABBITMQ_ENABLED_PLUGINS_FILE=" + dir_ +
      "/enabled_plugins" +
      (config_file_.empty() ? std::string() : " RABBITMQ_CONFIG_FILE=" + config_file_) +
      "; exec /usr/lib/rabbitmq/bin/rabbitmq-server > " + dir_ + "/log/console.log 2>&1";
  launcher_ = ::fork();
  if (launcher_ < 0) {
    throw std::runtime_error("private_broker: fork failed");
  }
  if (launcher_ == 0) {
    ::setsid();
    ::execl("/bin/su", "su", "rabbitmq", "-s", "/bin/sh", "-c", script.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pid_ = read_pid_file(timeout);
  if (pid_ <= 0) {
    throw std::runtime_error("private_broker: no pid file; see " + dir_ + "/log");
  }
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      independent_client probe(broker_url());
      return;
    } catch (const std::exception&) {
      if (!alive(pid_)) {
        throw std::runtime_error("private_broker: node died during boot; see " + dir_ + "/log");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
  throw std::runtime_error("private_broker: node not accepting logins on port " +
                           std::to_string(port_));
}

void private_broker::stop(std::chrono::seconds timeout) {
  if (!running()) {
    return;
  }
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (alive(pid_) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (alive(pid_)) {
    ::kill(pid_, SIGKILL);
    while (alive(pid_)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (launcher_ > 0) {
    int status = 0;
    ::waitpid(launcher_, &status, 0);
    launcher_ = -1;
  }
  pid_ = -1;
}

void private_broker::pause() {
  if (running()) {
    ::kill(pid_, SIGSTOP);
  }
}

void private_broker::resume() {
  if (running()) {
    ::kill(pid_, SIGCONT);
  }
}

int private_broker::ctl(const std::string& args) const {
  const std::string command = "rabbitmqctl -q -n " + node_ + " " + args + " > /dev/null 2>&1";
  return std::system(command.c_str());
}

}  // namespace sluice::amqp::test
