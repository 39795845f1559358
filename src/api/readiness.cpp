#include "sluice/api/readiness.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::api {

readiness::readiness(metrics::registry& metrics)
    : ready_gauge_(metrics
                       .add_gauge("sluice_ready",
                                  "1 ready, 0.5 degraded (pushes are acknowledged, some check "
                                  "fails), 0 not ready (no push can be acknowledged).")
                       .get()) {
  metrics.on_collect([this] { evaluate(); });
}

void readiness::add(std::string name, check c) {
  checks_.emplace_back(std::move(name), [c = std::move(c)] { return check_with_fields{c(), {}}; });
}

void readiness::add_with_fields(std::string name, std::function<check_with_fields()> c) {
  checks_.emplace_back(std::move(name), std::move(c));
}

readiness::report readiness::evaluate(bool strict) const {
  report out;
  std::vector<check_result> results;
  for (const auto& [name, c] : checks_) {
    check_with_fields r;
    try {
      r = c();
    } catch (const std::exception& e) {
      r = {{false, std::string("check failed: ") + e.what(), std::nullopt}, {}};
    }
    results.push_back(r.result);
    out.checks.emplace_back(name, std::move(r.result));
    out.fields.push_back(std::move(r.fields));
  }
  out.verdict = decide_readiness(results, strict);
  ready_gauge_.set(gauge_value(out.verdict.status));
  if (last_status_ != out.verdict.status) {
    std::string failing;
    for (const auto& [name, c] : out.checks) {
      if (!c.ok)
        failing += (failing.empty() ? "" : ", ") + name;
    }
    spdlog::log(
        out.verdict.status == readiness_status::ready ? spdlog::level::info : spdlog::level::warn,
        "readiness: {} (was {}); failing checks: {}", to_string(out.verdict.status),
        last_status_ ? to_string(*last_status_) : "unknown", failing.empty() ? "none" : failing);
    last_status_ = out.verdict.status;
  }
  return out;
}

http::response readiness::respond(bool strict) const {
  const report r = evaluate(strict);
  nlohmann::json checks = nlohmann::json::object();
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    const auto& [name, c] = r.checks[i];
    nlohmann::json one = {{"ok", c.ok}, {"detail", c.detail}};
    if (r.fields[i].is_object())
      one.update(r.fields[i]);
    checks[name] = std::move(one);
  }
  const nlohmann::json body = {{"status", to_string(r.verdict.status)}, {"checks", checks}};
  return http::response::json(r.verdict.http_status, body.dump());
}

}  // namespace sluice::api
