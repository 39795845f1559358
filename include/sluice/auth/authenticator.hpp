#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "sluice/auth/jwt_verifier.hpp"
#include "sluice/auth/token_table.hpp"
#include "sluice/config/settings.hpp"
#include "sluice/http/message.hpp"
#include "sluice/http/router.hpp"
#include "sluice/metrics/registry.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/signal_set.hpp>

namespace sluice::auth {

// Who may call what: the server_options::authorize of the listeners. Configured by
// AUTH_TOKEN (one token with every role, named "AUTH_TOKEN"), AUTH_TOKENS_FILE (token_table)
// and AUTH_JWT_* (jwt_verifier), any combination; none of them = authentication is off and
// every route is open, as before.
//
// A route's required access (route_options.required) decides: open routes answer anyone; the
// others need `Authorization: Bearer <token>` — on the proxy's routes (route_options::
// proxy_credentials) `Proxy-Authorization`, since the
// client's Authorization is the target's — whose caller has the role (admin implies read and
// write) and, when the route names a queue or service (route_options.resource_param), a
// prefix covering it. Missing or unknown token: 401 with `WWW-Authenticate: Bearer
// realm="sluice"` (error="invalid_token" when one was given); role or prefix missing: 403.
class authenticator {
 public:
  // Throws std::runtime_error saying what is wrong (tokens file, JWT key).
  authenticator(const config::settings& settings, metrics::registry& metrics);
  ~authenticator();
  authenticator(const authenticator&) = delete;
  authenticator& operator=(const authenticator&) = delete;

  bool enabled() const noexcept { return enabled_; }
  // Refused: the response. Allowed: nothing, with req.caller set on a non-open route.
  std::optional<http::response> authorize(http::request& req,
                                          const http::route_options& route) const;

  // Re-reads AUTH_TOKENS_FILE. A file that does not load leaves the tokens in use as they
  // were (and says why in the log): false then. True without a file.
  bool reload_tokens_file();
  // Re-reads the tokens file on every SIGHUP until stop().
  void watch_sighup(boost::asio::any_io_executor executor);
  void stop();

 private:
  void arm_sighup();
  std::shared_ptr<const http::caller> identify(std::string_view token, std::string& why) const;
  std::shared_ptr<const http::caller> cached_jwt(const token_digest& digest,
                                                 std::chrono::system_clock::time_point now) const;
  void remember_jwt(const token_digest& digest, std::shared_ptr<const http::caller> caller,
                    std::chrono::system_clock::time_point until) const;

  bool enabled_ = false;
  std::string tokens_file_;
  std::optional<token_digest> static_token_;
  std::shared_ptr<const http::caller> static_caller_;
  std::shared_ptr<const token_table> tokens_;
  std::unique_ptr<jwt_verifier> jwt_;
  // Verified JWTs by SHA-256 of the token, until min(exp, then + jwt_cache_ttl): a client
  // sending the same token again costs a digest and a lookup, not a signature check on the
  // event loop. Only valid tokens enter, so garbage cannot fill it; bounded all the same.
  struct digest_hash {
    std::size_t operator()(const token_digest& d) const noexcept;
  };
  struct remembered {
    std::shared_ptr<const http::caller> caller;
    std::chrono::system_clock::time_point until;
  };
  static constexpr std::chrono::seconds jwt_cache_ttl{60};
  static constexpr std::size_t jwt_cache_max = 10'000;
  // Mutable: a cache, used from the one event-loop thread only (as authorize is).
  mutable std::unordered_map<token_digest, remembered, digest_hash> jwt_cache_;
  std::optional<boost::asio::signal_set> sighup_;
  bool stopped_ = false;

  metrics::counter& missing_;
  metrics::counter& invalid_;
  metrics::counter& forbidden_;
  metrics::counter& reloads_ok_;
  metrics::counter& reloads_failed_;
};

}  // namespace sluice::auth
