#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/http/caller.hpp"

namespace sluice::auth {

// The SHA-256 of a bearer token as it travels in the header. Tokens are kept and compared
// only as digests: the tokens file holds no secret, and comparing fixed-size digests in
// constant time says nothing about how much of a guessed token was right.
using token_digest = std::array<unsigned char, 32>;
token_digest sha256_of(std::string_view token);

// The opaque bearer tokens sluice knows, each with its caller (name, roles, prefixes).
//
// AUTH_TOKENS_FILE, read at start and on SIGHUP, is one JSON object:
//
//   {"tokens": [
//     {"name": "ingest-bot",                     // non-empty, unique; the audited name
//      "sha256": "<64 hex digits>",              // SHA-256 of the token, unique
//      "roles": ["write"],                       // non-empty; each "read", "write" or "admin"
//      "prefixes": ["telemetry-", "devices."]}   // optional; queue/service name prefixes,
//   ]}                                           //   absent or [] = every name
//
// Any other key, a wrong type or a duplicate refuses the whole file, naming the entry.
class token_table {
 public:
  // Throws std::invalid_argument saying where the text is wrong.
  static token_table parse(std::string_view json_text);
  // Throws std::runtime_error naming the file.
  static token_table load(const std::string& path);

  // Throws std::invalid_argument on a digest already present.
  void add(const token_digest& digest, http::caller who);
  // The caller whose digest this is, or null. Every entry is compared, each in constant time.
  std::shared_ptr<const http::caller> find(const token_digest& digest) const noexcept;
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct entry {
    token_digest digest;
    std::shared_ptr<const http::caller> who;
  };
  std::vector<entry> entries_;
};

}  // namespace sluice::auth
