#pragma once

#include <optional>
#include <string>

namespace sluice::config {

// Why libpq would refuse DATABASE_URL (a URL, key=value pairs, or a bare database name), or
// nothing if it reads it.
std::optional<std::string> conninfo_error(const std::string& conninfo);

// The connection string as libpq reads it, as `key=value` pairs in libpq's order, with every
// option libpq marks secret (the password) shown as ****. Showing what libpq parsed, rather than
// editing the text, masks the password wherever it was written: in the URL's user part, in its
// query string, or as a quoted conninfo value. Empty for an empty string.
std::string masked_conninfo(const std::string& conninfo);

// A URL with the password of its user part (scheme://user:password@host) shown as ****.
std::string masked_url(const std::string& url);

}  // namespace sluice::config
