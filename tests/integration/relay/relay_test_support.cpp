#include "relay_test_support.hpp"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

#include "sluice/amqp/url.hpp"

#include "independent_client.hpp"
#include "sluice_test/env.hpp"
#include "sluice_test/http_client.hpp"
#include "sluice_test/npm.hpp"

#ifndef SLUICE_RELAY_TEST_DIR
#error "SLUICE_RELAY_TEST_DIR must point at tests/integration/relay"
#endif

namespace sluice::relay::test {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string amqp_url() {
  return sluice::test::require_env("SLUICE_TEST_AMQP_URL");
}

std::string unique_queue(const std::string& prefix) {
  static std::atomic<int> counter{0};
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  return prefix + "." + std::to_string(::getpid()) + "." + std::to_string(now % 100000000) + "." +
         std::to_string(counter++);
}

std::string ensure_amqplib() {
  return sluice::test::ensure_npm_package("amqplib", "0.10");
}

node_consumer::node_consumer(const std::string& amqp_url, const json& config,
                             std::chrono::seconds ready_timeout) {
  const std::string modules = ensure_amqplib();
  const std::string script = std::string(SLUICE_RELAY_TEST_DIR) + "/amqp_consumer.js";
  const std::string config_text = config.dump();
  char tmpl[] = "/tmp/sluice-node-consumer-XXXXXX";
  const int err_fd = ::mkstemp(tmpl);
  if (err_fd < 0)
    throw std::runtime_error("mkstemp failed");
  stderr_path_ = tmpl;
  int out[2];
  if (::pipe(out) != 0)
    throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    ::setenv("NODE_PATH", modules.c_str(), 1);
    ::execlp("node", "node", script.c_str(), amqp_url.c_str(), config_text.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err_fd);
  reader_ = std::thread([this, fd = out[0]] { read_loop(fd); });
  std::unique_lock lock(mutex_);
  if (!changed_.wait_for(lock, ready_timeout, [&] { return ready_ || eof_; }) || !ready_) {
    std::ifstream err(stderr_path_);
    std::stringstream text;
    text << err.rdbuf();
    std::string lines;
    for (const auto& l : lines_)
      lines += l.dump() + "\n";
    lock.unlock();
    throw std::runtime_error("amqp_consumer.js not ready: " + lines + text.str());
  }
}

node_consumer::~node_consumer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (reader_.joinable())
    reader_.join();
  std::error_code ignored;
  std::filesystem::remove(stderr_path_, ignored);
}

void node_consumer::read_loop(int fd) {
  std::string buffer;
  char chunk[65536];
  while (true) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    buffer.append(chunk, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl = buffer.find('\n'); nl != std::string::npos;
         nl = buffer.find('\n', start)) {
      json line = json::parse(buffer.substr(start, nl - start), nullptr, false);
      start = nl + 1;
      if (line.is_discarded())
        continue;
      std::lock_guard lock(mutex_);
      const std::string event = line.value("event", "");
      if (event == "ready")
        ready_ = true;
      if (event == "done" || event == "error")
        done_ = true;
      lines_.push_back(std::move(line));
      changed_.notify_all();
    }
    buffer.erase(0, start);
  }
  ::close(fd);
  std::lock_guard lock(mutex_);
  eof_ = true;
  changed_.notify_all();
}

std::vector<json> node_consumer::finish(std::chrono::seconds timeout) {
  {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return done_ || eof_; }))
      throw std::runtime_error("amqp_consumer.js did not finish in time");
  }
  if (reader_.joinable())
    reader_.join();
  if (pid_ > 0) {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  std::lock_guard lock(mutex_);
  for (const auto& l : lines_) {
    if (l.value("event", "") == "error")
      throw std::runtime_error("amqp_consumer.js: " + l.value("message", std::string()));
  }
  if (!done_) {
    std::ifstream err(stderr_path_);
    std::stringstream text;
    text << err.rdbuf();
    throw std::runtime_error("amqp_consumer.js ended without a result: " + text.str());
  }
  return lines_;
}

const json& done_line(const std::vector<json>& lines) {
  for (const auto& l : lines) {
    if (l.value("event", "") == "done")
      return l;
  }
  throw std::runtime_error("no done line");
}

void delete_rabbitmq_objects(const std::string& url, const std::string& sluice_queue) {
  const auto broker = amqp::url::parse(url);
  if (!broker)
    return;
  const std::string name = "sluice." + sluice_queue;
  try {
    amqp::test::independent_client c(*broker);
    c.delete_queue(name);
  } catch (const std::exception&) {
  }
  try {
    amqp::test::independent_client c(*broker);
    c.delete_exchange(name);
  } catch (const std::exception&) {
  }
}

consumed consume_ids(const std::string& url, const std::string& sluice_queue, std::size_t expected,
                     std::chrono::milliseconds idle) {
  const auto broker = amqp::url::parse(url);
  if (!broker)
    throw std::runtime_error("bad AMQP URL " + url);
  amqp::test::independent_client c(*broker);
  consumed out;
  // consume() stops at `count` messages; duplicates count too, so ask again for what is
  // missing until every id is there or the queue stays quiet.
  while (out.by_id.size() < expected) {
    const auto batch = c.consume("sluice." + sluice_queue, expected - out.by_id.size(), idle);
    if (batch.empty())
      break;
    for (const auto& m : batch) {
      ++out.received;
      ++out.by_id[m.message_id.value_or("")];
    }
  }
  return out;
}

std::optional<double> metric(std::uint16_t port, const std::string& name) {
  const auto res = sluice::test::http_call(port, "GET", "/metrics");
  std::istringstream in(res.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    if (line.compare(0, name.size(), name) != 0)
      continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != ' ' && next != '{')
      continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (true) {
    if (predicate())
      return true;
    if (clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(50ms);
  }
}

namespace {

std::string push_body(const std::string& queue, const std::string& partition, int first,
                      int count) {
  std::string body = R"({"items":[)";
  for (int i = 0; i < count; ++i) {
    body += i ? "," : "";
    body += R"({"queue":")" + queue + R"(","partition":")" + partition + R"(","payload":{"n":)" +
            std::to_string(first + i) + "}}";
  }
  body += "]}";
  return body;
}

}  // namespace

std::vector<std::string> push_items(std::uint16_t port, const std::string& queue, int count,
                                    int batch, const std::string& partition) {
  std::vector<std::string> ids;
  sluice::test::http_connection conn(port);
  for (int first = 0; first < count; first += batch) {
    const int n = std::min(batch, count - first);
    const auto res = conn.request("POST", "/api/v1/push", push_body(queue, partition, first, n));
    if (res.status != 201)
      throw std::runtime_error("push answered " + std::to_string(res.status) + ": " + res.body);
    const json answer = res.json();  // named: a range-for over a temporary's member dangles
    for (const auto& item : answer["items"])
      ids.push_back(item["id"].get<std::string>());
  }
  return ids;
}

push_load::push_load(std::vector<std::uint16_t> ports, std::string queue, int threads_per_port,
                     int batch, std::chrono::milliseconds pause)
    : queue_(std::move(queue)), batch_(batch), pause_(pause) {
  int k = 0;
  for (const auto port : ports) {
    for (int t = 0; t < threads_per_port; ++t, ++k)
      threads_.emplace_back([this, port, k] { run(port, k); });
  }
}

push_load::~push_load() {
  stop();
}

void push_load::stop() {
  stopping_ = true;
  for (auto& t : threads_) {
    if (t.joinable())
      t.join();
  }
}

std::size_t push_load::acked() const {
  std::lock_guard lock(mutex_);
  return ids_.size();
}

std::map<int, std::size_t> push_load::statuses() const {
  std::lock_guard lock(mutex_);
  return statuses_;
}

std::vector<std::string> push_load::ids() const {
  std::lock_guard lock(mutex_);
  return ids_;
}

void push_load::run(std::uint16_t port, int k) {
  int seq = 0;
  const std::string partition = "p" + std::to_string(k);
  while (!stopping_) {
    try {
      sluice::test::http_connection conn(port);
      while (!stopping_) {
        const auto res =
            conn.request("POST", "/api/v1/push", push_body(queue_, partition, seq, batch_));
        const bool ok = res.status == 201;
        const json answer = ok ? res.json() : json();
        {
          std::lock_guard lock(mutex_);
          ++statuses_[res.status];
          if (ok) {
            for (const auto& item : answer["items"])
              ids_.push_back(item["id"].get<std::string>());
          }
        }
        if (ok)
          seq += batch_;
        std::this_thread::sleep_for(ok ? pause_ : 50ms);
      }
    } catch (const std::exception&) {
      std::lock_guard lock(mutex_);
      ++statuses_[0];
    }
    if (!stopping_)
      std::this_thread::sleep_for(20ms);
  }
}

}  // namespace sluice::relay::test
