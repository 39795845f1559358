#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sluice/http/message.hpp"

namespace sluice::http {

// The one list format of the API, for every list endpoint (services, subscriptions, dead
// letters, routes, the query API):
//
//   {"items":[…],"limit":N,"next":"<cursor>"|null}
//   {"items":[…],"limit":N,"next":…,"page":P,"total":T}   (endpoints that also offer pages)
//
// `limit` is the page size the server used (the client's `limit=`, else the endpoint's
// default); `next` is null on the last page. A client passes `next` back unchanged as
// `cursor=` with the same filters to get the following page.
//
// The cursor is opaque to clients. Inside, it is base64url (RFC 4648 §5, no padding) of
//
//   byte 0          version, 1
//   bytes 1..n      position: where the next page starts, in the endpoint's own terms
//                   (e.g. the last name or id of this page); any bytes, may be empty
//   8 bytes         stable_hash64 of the filter fingerprint, big-endian
//   8 bytes         stable_hash64 of every byte before it, big-endian (the checksum)
//
// so the position's length is the decoded length minus 17. The fingerprint is a string the
// endpoint builds from every filter of the request except cursor and limit (e.g.
// "status=pending&service=payments"): a cursor reused with other filters is refused instead of
// skipping or repeating items. The checksum catches edited or truncated cursors; it is not a
// signature (anyone can build a valid cursor), so endpoints still treat the position as
// untrusted input. A client may change `limit` between pages.
//
// Errors answer 400 {"error":{"code":…,"message":…}} with code invalid_cursor (malformed or
// edited), cursor_filter_mismatch (made for other filters) or invalid_limit.

enum class cursor_error {
  malformed,      // not base64url, too short, or an unknown version
  tampered,       // the checksum does not match: edited or cut
  other_filters,  // intact, but made for another filter fingerprint
};
const char* to_string(cursor_error e);

std::string encode_cursor(std::string_view position, std::string_view filter_fingerprint);
// The position encode_cursor was given, when `text` is a cursor made for this fingerprint.
std::variant<std::string, cursor_error> decode_cursor(std::string_view text,
                                                      std::string_view expected_fingerprint);

// A 400 for the error, in the API's error shape.
response cursor_error_response(cursor_error e);

// The `limit=` query value: absent or empty -> default_limit; else a decimal integer from 1 to
// max_limit. The error is the message of a 400 invalid_limit.
std::variant<std::size_t, std::string> parse_limit(std::optional<std::string_view> value,
                                                   std::size_t default_limit,
                                                   std::size_t max_limit);

// limit= and cursor= of a request, read together: what most list handlers start with.
struct page_request {
  std::size_t limit = 0;
  std::optional<std::string> position;  // nullopt: the first page
};
// The 400 response when either is invalid.
std::variant<page_request, response> read_page_request(const request& req,
                                                       std::string_view filter_fingerprint,
                                                       std::size_t default_limit,
                                                       std::size_t max_limit);

struct page_numbers {
  std::size_t page = 1;
  std::size_t total = 0;
};

// The body of a list answer. `items` are JSON texts, copied in as they are (the caller
// serialised them); `next_cursor` nullopt gives "next":null.
std::string list_body(const std::vector<std::string>& items, std::size_t limit,
                      const std::optional<std::string>& next_cursor,
                      const std::optional<page_numbers>& pages = std::nullopt);

}  // namespace sluice::http
