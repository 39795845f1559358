#include "sluice/auth/token_table.hpp"

#include <fstream>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <set>
#include <sstream>
#include <stdexcept>

#include "sluice/auth/roles.hpp"

#include <nlohmann/json.hpp>

namespace sluice::auth {
namespace {

using json = nlohmann::json;

[[noreturn]] void refuse(const std::string& where, const std::string& what) {
  throw std::invalid_argument(where + ": " + what);
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

token_digest digest_of_hex(const json& v, const std::string& where) {
  if (!v.is_string())
    refuse(where, "expected the token's SHA-256 as 64 hex digits");
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() != 64)
    refuse(where, "expected 64 hex digits, got " + std::to_string(s.size()) + " characters");
  token_digest d{};
  for (std::size_t i = 0; i < d.size(); ++i) {
    const int hi = hex_value(s[2 * i]);
    const int lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0)
      refuse(where, "expected hex digits only");
    d[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return d;
}

http::caller caller_of(const json& e, const std::string& where) {
  if (!e.is_object())
    refuse(where, "expected an object {name, sha256, roles, prefixes}");
  for (const auto& [key, value] : e.items()) {
    if (key != "name" && key != "sha256" && key != "roles" && key != "prefixes")
      refuse(where, "unknown field \"" + key + "\" (name, sha256, roles, prefixes)");
  }
  http::caller who;
  const auto name = e.find("name");
  if (name == e.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
    refuse(where + ".name", "expected a non-empty string");
  who.name = name->get<std::string>();
  const auto roles = e.find("roles");
  if (roles == e.end() || !roles->is_array() || roles->empty())
    refuse(where + ".roles", "expected a non-empty array of \"read\", \"write\", \"admin\"");
  for (std::size_t i = 0; i < roles->size(); ++i) {
    const auto& r = (*roles)[i];
    const auto role = r.is_string() ? role_named(r.get_ref<const std::string&>()) : std::nullopt;
    if (!role) {
      refuse(where + ".roles[" + std::to_string(i) + "]",
             "unknown role " + r.dump() + " (read, write or admin)");
    }
    grant(who, *role);
  }
  if (const auto prefixes = e.find("prefixes"); prefixes != e.end()) {
    if (!prefixes->is_array())
      refuse(where + ".prefixes", "expected an array of name prefixes");
    for (std::size_t i = 0; i < prefixes->size(); ++i) {
      const auto& p = (*prefixes)[i];
      if (!p.is_string() || p.get_ref<const std::string&>().empty()) {
        refuse(where + ".prefixes[" + std::to_string(i) + "]",
               "expected a non-empty string (an empty prefix would cover every name: leave "
               "prefixes out instead)");
      }
      who.prefixes.push_back(p.get<std::string>());
    }
  }
  return who;
}

}  // namespace

token_digest sha256_of(std::string_view token) {
  token_digest d{};
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), d.data(), &size, EVP_sha256(), nullptr) != 1 ||
      size != d.size())
    throw std::runtime_error("auth: SHA-256 failed");
  return d;
}

token_table token_table::parse(std::string_view json_text) {
  const json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded())
    throw std::invalid_argument("not valid JSON");
  if (!doc.is_object())
    throw std::invalid_argument("expected an object {\"tokens\":[…]}");
  for (const auto& [key, value] : doc.items()) {
    if (key != "tokens")
      throw std::invalid_argument("unknown field \"" + key + "\" (only \"tokens\")");
  }
  const auto tokens = doc.find("tokens");
  if (tokens == doc.end() || !tokens->is_array())
    throw std::invalid_argument("tokens: expected an array");
  token_table table;
  std::set<std::string> names;
  for (std::size_t i = 0; i < tokens->size(); ++i) {
    const std::string where = "tokens[" + std::to_string(i) + "]";
    const auto& e = (*tokens)[i];
    http::caller who = caller_of(e, where);
    const auto sha = e.find("sha256");
    if (sha == e.end())
      refuse(where + ".sha256", "missing: the SHA-256 of the token as 64 hex digits");
    const token_digest digest = digest_of_hex(*sha, where + ".sha256");
    if (!names.insert(who.name).second)
      refuse(where + ".name", "\"" + who.name + "\" is the name of an earlier entry too");
    if (table.find(digest))
      refuse(where + ".sha256", "the same token as an earlier entry");
    table.add(digest, std::move(who));
  }
  return table;
}

token_table token_table::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("AUTH_TOKENS_FILE " + path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    throw std::runtime_error("AUTH_TOKENS_FILE " + path + ": read failed");
  try {
    return parse(text.str());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error("AUTH_TOKENS_FILE " + path + ": " + e.what());
  }
}

void token_table::add(const token_digest& digest, http::caller who) {
  if (find(digest))
    throw std::invalid_argument("a token with this digest is already known");
  entries_.push_back({digest, std::make_shared<const http::caller>(std::move(who))});
}

std::shared_ptr<const http::caller> token_table::find(const token_digest& digest) const noexcept {
  std::shared_ptr<const http::caller> found;
  for (const auto& e : entries_) {
    if (CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0)
      found = e.who;
  }
  return found;
}

}  // namespace sluice::auth
