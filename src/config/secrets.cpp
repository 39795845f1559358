#include "sluice/config/secrets.hpp"

#include <cstring>
#include <memory>
#include <string_view>

#include "sluice/store/conninfo_form.hpp"

#include <libpq-fe.h>

namespace sluice::config {
namespace {

struct parsed_conninfo {
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options{nullptr, &PQconninfoFree};
  std::string error;
};

// libpq quotes the offending piece of the string in its messages (`missing "=" after "…"`,
// `invalid percent-encoded token: "…"`), and that piece can be the password, quotes included.
// Everything from the first quote to the last is left out; the message still says what is
// wrong. libpq also ends it with a newline.
std::string without_quoted_tokens(const std::string& message) {
  std::string out = message;
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  // The one quoted piece that is libpq's own text, not the user's, stays: it says what to add.
  const std::string_view missing_equals = "missing \"=\" after ";
  const std::size_t keep = out.rfind(missing_equals, 0) == 0 ? missing_equals.size() : 0;
  const auto first = out.find('"', keep);
  if (first == std::string::npos)
    return out;
  return out.substr(0, first) + "\"…\"" + out.substr(out.rfind('"') + 1);
}

// Quoted as conninfo quotes: only when needed, with \ and ' escaped.
std::string quote_value(const char* value) {
  const bool plain = *value != '\0' && std::strpbrk(value, " \t\n\r\\'=") == nullptr;
  if (plain)
    return value;
  std::string out = "'";
  for (const char* p = value; *p != '\0'; ++p) {
    if (*p == '\\' || *p == '\'')
      out.push_back('\\');
    out.push_back(*p);
  }
  return out + "'";
}

// DATABASE_URL as the connection string libpq ends up reading: a bare database name is one.
std::string as_conninfo(const std::string& value) {
  return value.empty() || store::is_connection_string(value)
             ? value
             : "dbname=" + quote_value(value.c_str());
}

parsed_conninfo parse(const std::string& value) {
  const std::string conninfo = as_conninfo(value);
  parsed_conninfo out;
  char* error = nullptr;
  out.options.reset(PQconninfoParse(conninfo.c_str(), &error));
  if (error != nullptr) {
    out.error = without_quoted_tokens(error);
    PQfreemem(error);
  } else if (!out.options) {
    out.error = "out of memory";
  }
  return out;
}

}  // namespace

std::optional<std::string> conninfo_error(const std::string& conninfo) {
  auto parsed = parse(conninfo);
  if (parsed.error.empty())
    return std::nullopt;
  return parsed.error;
}

std::string masked_conninfo(const std::string& conninfo) {
  const auto parsed = parse(conninfo);
  if (!parsed.error.empty())
    return "(unreadable: " + parsed.error + ")";
  std::string out;
  for (const PQconninfoOption* o = parsed.options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr)
      continue;
    if (!out.empty())
      out.push_back(' ');
    // dispchar "*" is libpq's mark for a value that must not be displayed.
    const bool secret = o->dispchar != nullptr && std::strchr(o->dispchar, '*') != nullptr;
    out.append(o->keyword).append("=").append(secret ? "****" : quote_value(o->val));
  }
  return out;
}

std::string masked_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    return url;
  // The user part can only be in the authority, which ends at the path, query or fragment; an
  // `@` in a vhost or path is not a user separator.
  const auto authority = scheme_end + 3;
  const auto authority_end = url.find_first_of("/?#", authority);
  const auto at =
      url.rfind('@', authority_end == std::string::npos ? std::string::npos : authority_end - 1);
  if (at == std::string::npos || at < authority)
    return url;
  const auto colon = url.find(':', authority);
  if (colon == std::string::npos || colon > at)
    return url;
  return url.substr(0, colon + 1) + "****" + url.substr(at);
}

}  // namespace sluice::config
