#include "sluice/auth/authenticator.hpp"

#include <cstring>
#include <fstream>
#include <openssl/crypto.h>
#include <sstream>
#include <stdexcept>

#include "sluice/core/ascii_lower.hpp"
#include "sluice/core/percent_decode.hpp"
#include "sluice/core/printable.hpp"

#include <spdlog/spdlog.h>

namespace sluice::auth {
namespace {

constexpr std::string_view realm = R"(Bearer realm="sluice")";

std::string read_file(const std::string& setting, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error(setting + " " + path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

http::response unauthorized(bool token_given, std::string_view message) {
  auto r = http::error_response(401, "unauthorized", message);
  r.with_header("WWW-Authenticate", token_given ? std::string(realm) + R"(, error="invalid_token")"
                                                : std::string(realm));
  return r;
}

// The token of `Bearer <token>`; nothing for another scheme or an empty token.
std::optional<std::string_view> bearer_token(std::string_view value) {
  constexpr std::string_view scheme = "bearer";
  if (value.size() <= scheme.size() || !ascii_iequals(value.substr(0, scheme.size()), scheme) ||
      value[scheme.size()] != ' ')
    return std::nullopt;
  value.remove_prefix(scheme.size());
  while (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  if (value.empty() || value.find(' ') != std::string_view::npos)
    return std::nullopt;
  return value;
}

bool looks_like_jwt(std::string_view token) {
  const auto dot = token.find('.');
  return dot != std::string_view::npos && token.find('.', dot + 1) != std::string_view::npos;
}

}  // namespace

authenticator::authenticator(const config::settings& s, metrics::registry& metrics)
    : tokens_file_(s.auth_tokens_file),
      missing_(metrics
                   .add_counter("sluice_auth_refusals_total",
                                "Requests refused by authentication or authorization, by reason.",
                                {"reason"})
                   .with({"missing_token"})),
      invalid_(metrics.add_counter("sluice_auth_refusals_total", "", {"reason"})
                   .with({"invalid_token"})),
      forbidden_(
          metrics.add_counter("sluice_auth_refusals_total", "", {"reason"}).with({"forbidden"})),
      reloads_ok_(metrics
                      .add_counter("sluice_auth_tokens_file_reloads_total",
                                   "Re-reads of AUTH_TOKENS_FILE, by outcome.", {"outcome"})
                      .with({"loaded"})),
      reloads_failed_(metrics.add_counter("sluice_auth_tokens_file_reloads_total", "", {"outcome"})
                          .with({"kept_previous"})) {
  if (!s.auth_token.empty()) {
    static_token_ = sha256_of(s.auth_token);
    http::caller everything;
    everything.name = "AUTH_TOKEN";
    everything.read = everything.write = everything.admin = true;
    static_caller_ = std::make_shared<const http::caller>(std::move(everything));
  }
  if (!tokens_file_.empty())
    tokens_ = std::make_shared<const token_table>(token_table::load(tokens_file_));
  if (!s.auth_jwt_hs256_secret.empty() || !s.auth_jwt_public_key_file.empty()) {
    jwt_options o;
    o.hs256_secret = s.auth_jwt_hs256_secret;
    if (!s.auth_jwt_public_key_file.empty())
      o.public_key_pem = read_file("AUTH_JWT_PUBLIC_KEY_FILE", s.auth_jwt_public_key_file);
    o.roles_claim = s.auth_jwt_roles_claim;
    o.issuer = s.auth_jwt_issuer;
    o.audience = s.auth_jwt_audience;
    if (!o.hs256_secret.empty() && o.hs256_secret.size() < jwt_verifier::min_hs256_secret_bytes) {
      throw std::runtime_error("AUTH_JWT_HS256_SECRET: " + std::to_string(o.hs256_secret.size()) +
                               " bytes; HS256 needs a secret of " +
                               std::to_string(jwt_verifier::min_hs256_secret_bytes) +
                               " bytes or more (RFC 7518 3.2), e.g. openssl rand -hex 32");
    }
    try {
      jwt_ = std::make_unique<jwt_verifier>(std::move(o));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error("AUTH_JWT_PUBLIC_KEY_FILE " + s.auth_jwt_public_key_file + ": " +
                               e.what());
    }
  }
  enabled_ = static_token_ || tokens_ || jwt_;
  // A setting that closes something must not silently leave it open.
  if (s.metrics_auth && !enabled_) {
    throw std::runtime_error(
        "METRICS_AUTH is on but no token is configured (AUTH_TOKEN, AUTH_TOKENS_FILE, "
        "AUTH_JWT_HS256_SECRET or AUTH_JWT_PUBLIC_KEY_FILE): /metrics would answer anyone");
  }
  if (enabled_) {
    spdlog::info(
        "auth: bearer tokens required on /api and /proxy (static token: {}, tokens file: "
        "{} tokens, JWT: {}); /metrics {}",
        static_token_ ? "yes" : "no", tokens_ ? std::to_string(tokens_->size()) : "none",
        jwt_ ? jwt_->algorithms() : "off", s.metrics_auth ? "needs read" : "open");
  }
}

authenticator::~authenticator() = default;

std::shared_ptr<const http::caller> authenticator::identify(std::string_view token,
                                                            std::string& why) const {
  const token_digest digest = sha256_of(token);
  if (static_token_ && CRYPTO_memcmp(static_token_->data(), digest.data(), digest.size()) == 0)
    return static_caller_;
  if (tokens_) {
    if (auto found = tokens_->find(digest))
      return found;
  }
  if (jwt_ && looks_like_jwt(token)) {
    const auto now = std::chrono::system_clock::now();
    if (auto known = cached_jwt(digest, now))
      return known;
    auto checked = jwt_->verify(token, now);
    if (checked.caller) {
      auto until = now + jwt_cache_ttl;
      if (checked.expires && *checked.expires < until)
        until = *checked.expires;
      remember_jwt(digest, checked.caller, until);
      return checked.caller;
    }
    why = std::move(checked.error);
    return nullptr;
  }
  why = "unknown token";
  return nullptr;
}

std::size_t authenticator::digest_hash::operator()(const token_digest& d) const noexcept {
  // A SHA-256 output is uniform: its first bytes are a hash already.
  std::size_t h = 0;
  std::memcpy(&h, d.data(), sizeof h);
  return h;
}

std::shared_ptr<const http::caller> authenticator::cached_jwt(
    const token_digest& digest, std::chrono::system_clock::time_point now) const {
  const auto it = jwt_cache_.find(digest);
  if (it == jwt_cache_.end())
    return nullptr;
  if (now >= it->second.until) {
    jwt_cache_.erase(it);
    return nullptr;
  }
  return it->second.caller;
}

void authenticator::remember_jwt(const token_digest& digest,
                                 std::shared_ptr<const http::caller> caller,
                                 std::chrono::system_clock::time_point until) const {
  if (jwt_cache_.size() >= jwt_cache_max) {
    const auto now = std::chrono::system_clock::now();
    std::erase_if(jwt_cache_, [now](const auto& entry) { return now >= entry.second.until; });
    // Still full of live tokens: forget one (any); it is verified again when it comes back.
    if (jwt_cache_.size() >= jwt_cache_max)
      jwt_cache_.erase(jwt_cache_.begin());
  }
  jwt_cache_.insert_or_assign(digest, remembered{std::move(caller), until});
}

std::optional<http::response> authenticator::authorize(http::request& req,
                                                       const http::route_options& route) const {
  if (!enabled_ || route.required == http::access::open)
    return std::nullopt;
  // The client's Authorization on the proxy's routes is the target's: sluice's token travels
  // in Proxy-Authorization there, which the proxy never forwards (a hop-by-hop header).
  const bool proxied = route.proxy_credentials;
  const auto header = req.header(proxied ? "Proxy-Authorization" : "Authorization");
  if (!header) {
    missing_.inc();
    return unauthorized(false, proxied ? "a bearer token is required in Proxy-Authorization"
                                       : "a bearer token is required in Authorization");
  }
  const auto token = bearer_token(*header);
  if (!token) {
    invalid_.inc();
    return unauthorized(true, "expected Bearer <token>");
  }
  std::string why;
  auto who = identify(*token, why);
  if (!who) {
    invalid_.inc();
    spdlog::debug("auth: refused {} {} from {}: {}", req.method, printable(req.path),
                  req.remote_address, why);
    return unauthorized(true, why);
  }
  if (!who->may(route.required)) {
    forbidden_.inc();
    return http::error_response(
        403, "forbidden",
        "token " + who->name + " lacks the " + http::access_name(route.required) + " role");
  }
  if (!route.resource_param.empty()) {
    const auto it = req.params.find(route.resource_param);
    if (it != req.params.end()) {
      // Judged as the handler will read it. A capture that does not decode cannot be judged:
      // refused here rather than trusted to every handler to refuse it too.
      const auto name = percent_decode(it->second);
      if (!name) {
        return http::error_response(
            400, "invalid_name",
            "the " + route.resource_param + " in the path is not validly percent-encoded");
      }
      if (!who->covers(*name)) {
        forbidden_.inc();
        return http::error_response(403, "forbidden",
                                    "token " + who->name + " does not cover the name " + *name);
      }
    }
  }
  req.caller = std::move(who);
  return std::nullopt;
}

bool authenticator::reload_tokens_file() {
  if (tokens_file_.empty())
    return true;
  try {
    auto fresh = std::make_shared<const token_table>(token_table::load(tokens_file_));
    spdlog::info("auth: AUTH_TOKENS_FILE {} re-read: {} tokens", tokens_file_, fresh->size());
    tokens_ = std::move(fresh);
    reloads_ok_.inc();
    return true;
  } catch (const std::exception& e) {
    spdlog::error("auth: {}; the {} tokens read before stay in use", e.what(), tokens_->size());
    reloads_failed_.inc();
    return false;
  }
}

void authenticator::watch_sighup(boost::asio::any_io_executor executor) {
  if (tokens_file_.empty())
    return;
  sighup_.emplace(executor, SIGHUP);
  arm_sighup();
}

void authenticator::arm_sighup() {
  sighup_->async_wait([this](const boost::system::error_code& ec, int) {
    if (ec || stopped_)
      return;
    reload_tokens_file();
    arm_sighup();
  });
}

void authenticator::stop() {
  stopped_ = true;
  if (sighup_) {
    boost::system::error_code ignored;
    sighup_->cancel(ignored);
  }
}

}  // namespace sluice::auth
