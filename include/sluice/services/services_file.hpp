#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sluice/core/async_event.hpp"
#include "sluice/metrics/registry.hpp"
#include "sluice/services/service.hpp"
#include "sluice/services/service_registry.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace sluice::services {

// Why SERVICES_FILE was refused: the JSON field ("services[1].flavours[0].url"; empty for the
// file as a whole) and a sentence.
struct file_error {
  std::string field;
  std::string message;
};

// SERVICES_FILE's format:
//   {"services":[{"name":"payments", <the fields of PUT /api/v1/services/{name}>,
//                 "schedule":{<the body of PUT .../schedule>}}]}
// Every service valid or none: one bad entry refuses the file. Services come back with source
// file, in file order.
std::variant<std::vector<service>, file_error> parse_services_file(
    std::string_view text, const service_defaults& defaults);

// Keeps the registry's file layer equal to SERVICES_FILE. The file is re-read when it changes
// (inotify on its directory, and on the directory of the file it resolves to, so an edit in
// place, a rename over it and a Kubernetes ConfigMap's swap of the ..data symlink are all
// seen) and on reload() (SIGHUP). A file that fails to read or parse on a reload keeps the
// previous services, is logged and counted (sluice_services_file_errors_total). The file is
// small and local: it is read on the loop thread.
class services_file {
 public:
  services_file(boost::asio::any_io_executor executor, std::string path, service_defaults defaults,
                service_registry& registry, metrics::registry& metrics);
  ~services_file();
  services_file(const services_file&) = delete;
  services_file& operator=(const services_file&) = delete;

  // The first load, at start-up: throws std::runtime_error("SERVICES_FILE <path>: <field>:
  // <message>") when the file is missing or invalid, so sluice does not start with a wrong set.
  void load_or_throw();
  // Watches the file's directories until stop(); co_spawn it. Without inotify (an error from
  // inotify_init1) it logs a warning and only SIGHUP reloads.
  boost::asio::awaitable<void> watch();
  void stop();
  // Until watch() has returned (immediately when it never ran).
  boost::asio::awaitable<void> wait_stopped();

  // Re-reads the file now; false (and the previous services kept) when it is invalid.
  bool reload(std::string_view why);

  std::uint64_t reloads() const { return reloads_; }
  const std::string& path() const { return path_; }

 private:
  std::variant<std::vector<service>, file_error> read();
  void watch_directories();

  boost::asio::any_io_executor executor_;
  std::string path_;
  service_defaults defaults_;
  service_registry& registry_;
  metrics::counter& errors_;
  metrics::counter& reloads_total_;
  boost::asio::posix::stream_descriptor inotify_;
  boost::asio::steady_timer settle_;
  std::vector<std::string> watched_;
  std::string last_text_;
  bool loaded_ = false;
  bool stopping_ = false;
  bool watching_ = false;
  async_event watch_ended_;
  std::uint64_t reloads_ = 0;
};

}  // namespace sluice::services
