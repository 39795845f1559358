#include "sluice/api/readiness.hpp"

#include <nlohmann/json.hpp>

namespace sluice::api {

void readiness::add(std::string name, check c) {
  checks_.emplace_back(std::move(name), std::move(c));
}

boost::asio::awaitable<http::response> readiness::report() const {
  nlohmann::json checks = nlohmann::json::object();
  bool all_ok = true;
  for (const auto& [name, c] : checks_) {
    check_result r;
    try {
      r = co_await c();
    } catch (const std::exception& e) {
      r = {false, std::string("check failed: ") + e.what()};
    }
    all_ok = all_ok && r.ok;
    checks[name] = {{"ok", r.ok}, {"detail", r.detail}};
  }
  nlohmann::json body = {{"status", all_ok ? "ready" : "not_ready"}, {"checks", checks}};
  co_return http::response::json(all_ok ? 200 : 503, body.dump());
}

}  // namespace sluice::api
