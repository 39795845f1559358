#include "sluice/services/services_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <sys/inotify.h>
#include <unistd.h>

#include "sluice/services/layer_sync.hpp"
#include "sluice/services/service_json.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::services {
namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

constexpr auto as_awaitable_tuple = asio::as_tuple(asio::use_awaitable);

// Editors and kubelet write in several steps (truncate + write, write + rename, symlink swap):
// read once the directory has been quiet this long.
constexpr auto settle_time = std::chrono::milliseconds(50);

std::string prefixed(const std::string& prefix, const std::string& field) {
  return field.empty() ? prefix : prefix + "." + field;
}

}  // namespace

std::variant<std::vector<service>, file_error> parse_services_file(
    std::string_view text, const service_defaults& defaults) {
  // nlohmann keeps the last of a repeated key; the API refuses one (a typo'd copy must not
  // silently win), and so does the file. One set of keys per open object.
  std::vector<std::set<std::string>> open_objects;
  std::string repeated;
  const json::parser_callback_t track = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end && !open_objects.empty()) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() &&
               !open_objects.back().insert(parsed.get<std::string>()).second && repeated.empty()) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(text, track);
  } catch (const json::parse_error& e) {
    return file_error{"", std::string("not valid JSON: ") + e.what()};
  }
  if (!repeated.empty())
    return file_error{repeated, "is given twice in one object"};
  if (!doc.is_object())
    return file_error{"", R"(expected an object {"services":[...]})"};
  for (const auto& [key, value] : doc.items()) {
    if (key != "services")
      return file_error{key, "unknown field"};
  }
  const auto it = doc.find("services");
  if (it == doc.end())
    return file_error{"services", "required"};
  if (!it->is_array())
    return file_error{"services", "must be an array"};

  std::vector<service> out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const std::string at = "services[" + std::to_string(i) + "]";
    json item = (*it)[i];
    if (!item.is_object())
      return file_error{at, "must be an object"};
    const auto name_it = item.find("name");
    if (name_it == item.end())
      return file_error{at + ".name", "required"};
    if (!name_it->is_string() || !valid_name(name_it->get_ref<const std::string&>()))
      return file_error{at + ".name", "must be 1 to 100 bytes of letters, digits, '-' and '_'"};
    const std::string name = name_it->get<std::string>();
    if (!names.insert(name).second)
      return file_error{at + ".name", "service '" + name + "' is defined twice"};
    item.erase("name");
    auto parsed = parse_service(name, item.dump(), defaults);
    if (auto* error = std::get_if<parse_error>(&parsed))
      return file_error{prefixed(at, error->field), error->message};
    service s = std::move(std::get<service>(parsed));
    s.source = service_source::file;
    out.push_back(std::move(s));
  }
  return out;
}

services_file::services_file(asio::any_io_executor executor, std::string path,
                             service_defaults defaults, service_registry& registry,
                             metrics::registry& metrics)
    : executor_(executor),
      path_(std::move(path)),
      defaults_(std::move(defaults)),
      registry_(registry),
      errors_(metrics
                  .add_counter("sluice_services_file_errors_total",
                               "Reloads of SERVICES_FILE that failed (unreadable or invalid); the "
                               "previous services stay.")
                  .get()),
      reloads_total_(metrics
                         .add_counter("sluice_services_file_reloads_total",
                                      "Reloads of SERVICES_FILE that were applied.")
                         .get()),
      inotify_(executor),
      settle_(executor) {}

services_file::~services_file() {
  stop();
}

std::variant<std::vector<service>, file_error> services_file::read() {
  std::ifstream in(path_, std::ios::binary);
  if (!in)
    return file_error{"", std::string("cannot read: ") + std::strerror(errno)};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    return file_error{"", "read failed"};
  last_text_ = text.str();
  return parse_services_file(last_text_, defaults_);
}

void services_file::load_or_throw() {
  auto parsed = read();
  if (auto* error = std::get_if<file_error>(&parsed)) {
    throw std::runtime_error("SERVICES_FILE " + path_ + ": " +
                             (error->field.empty() ? "" : error->field + ": ") + error->message);
  }
  auto& defined = std::get<std::vector<service>>(parsed);
  spdlog::info("services: {} services loaded from SERVICES_FILE {}", defined.size(), path_);
  registry_.replace_source(service_source::file, std::move(defined));
  loaded_ = true;
}

bool services_file::reload(std::string_view why) {
  const std::string before = last_text_;
  auto parsed = read();
  if (auto* error = std::get_if<file_error>(&parsed)) {
    errors_.inc();
    spdlog::error(
        "services: SERVICES_FILE {} not reloaded ({}), keeping the previous services: "
        "{}{}",
        path_, why, error->field.empty() ? "" : error->field + ": ", error->message);
    // A later event with the same broken text must still be refused, not skipped as unchanged.
    last_text_.clear();
    return false;
  }
  // A directory event that left the file as it was (another file changed, a touch) is no reload.
  if (why != "SIGHUP" && loaded_ && last_text_ == before)
    return true;
  auto& defined = std::get<std::vector<service>>(parsed);
  const std::size_t count = defined.size();
  sync_layer(registry_, service_source::file, std::move(defined));
  loaded_ = true;
  ++reloads_;
  reloads_total_.inc();
  spdlog::info("services: SERVICES_FILE {} reloaded ({}): {} services", path_, why, count);
  // After a ConfigMap swap the file resolves into a new directory: watch that one too.
  watch_directories();
  return true;
}

void services_file::watch_directories() {
  if (!inotify_.is_open())
    return;
  namespace fs = std::filesystem;
  std::vector<std::string> dirs;
  const fs::path p(path_);
  dirs.push_back(p.has_parent_path() ? p.parent_path().string() : ".");
  std::error_code ec;
  const fs::path target = fs::canonical(p, ec);
  if (!ec && target.has_parent_path())
    dirs.push_back(target.parent_path().string());
  for (const auto& dir : dirs) {
    if (std::find(watched_.begin(), watched_.end(), dir) != watched_.end())
      continue;
    const int wd = ::inotify_add_watch(
        inotify_.native_handle(), dir.c_str(),
        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB);
    if (wd < 0) {
      spdlog::warn("services: cannot watch {} for changes of SERVICES_FILE: {}", dir,
                   std::strerror(errno));
      continue;
    }
    watched_.push_back(dir);
  }
}

asio::awaitable<void> services_file::watch() {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    spdlog::warn("services: inotify unavailable ({}): SERVICES_FILE is re-read on SIGHUP only",
                 std::strerror(errno));
    co_return;
  }
  inotify_.assign(fd);
  watch_directories();
  watching_ = true;
  // A change between the load at start-up and the first watch would go unseen until the next
  // one; comparing once costs a read of a small file.
  reload("changed");
  std::array<char, 4096> buffer{};
  while (!stopping_) {
    auto [ec, n] = co_await inotify_.async_read_some(asio::buffer(buffer), as_awaitable_tuple);
    if (ec || stopping_)
      break;
    // Any event in the watched directories may be ours (the file itself, a rename over it,
    // the ..data symlink of a ConfigMap); reading the small file and comparing is cheaper than
    // telling them apart. Wait until the writes settle.
    // Events that arrive meanwhile are read next time round and cost one more comparison.
    (void)n;
    settle_.expires_after(settle_time);
    co_await settle_.async_wait(as_awaitable_tuple);
    if (stopping_)
      break;
    reload("changed");
  }
  watching_ = false;
  watch_ended_.notify_all();
}

asio::awaitable<void> services_file::wait_stopped() {
  while (watching_)
    co_await watch_ended_.wait_until(async_event::clock::time_point::max());
}

void services_file::stop() {
  stopping_ = true;
  boost::system::error_code ignored;
  settle_.cancel();
  if (inotify_.is_open())
    inotify_.close(ignored);
}

}  // namespace sluice::services
