#include "sluice/worker/batch_codec.hpp"

#include <algorithm>
#include <map>

#include "sluice/core/base64.hpp"
#include "sluice/core/utf8.hpp"
#include "sluice/worker/target_request.hpp"

#include <nlohmann/json.hpp>

namespace sluice::worker {
namespace {

using json = nlohmann::json;

bool fail(std::string* why, std::string text) {
  if (why)
    *why = std::move(text);
  return false;
}

// RFC 9110 5.1 token.
bool is_token(std::string_view name) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           extra.find(c) != std::string_view::npos;
  });
}

// The reply's headers travel as a "name: value\r\n" block and end in the client's answer: no
// CR, LF or NUL in a value (RFC 9110 5.5), a token for a name.
bool add_checked(rpc::header_list& out, const std::string& name, std::string value,
                 std::string* why) {
  if (!is_token(name))
    return fail(why, "header name \"" + name.substr(0, 64) + "\" is not an HTTP token");
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
    return fail(why, "header " + name + ": value contains CR, LF or NUL");
  out.emplace_back(name, std::move(value));
  return true;
}

bool add_header(rpc::header_list& out, const std::string& name, const json& value,
                std::string* why) {
  if (value.is_string())
    return add_checked(out, name, value.get<std::string>(), why);
  if (value.is_array()) {
    for (const auto& v : value) {
      if (!v.is_string())
        return fail(why, "header " + name + ": values must be strings");
      if (!add_checked(out, name, v.get<std::string>(), why))
        return false;
    }
    return true;
  }
  return fail(why, "header " + name + ": value must be a string or an array of strings");
}

bool read_headers(const json& headers, rpc::header_list& out, std::string* why) {
  if (headers.is_null())
    return true;
  if (headers.is_object()) {
    for (const auto& [name, value] : headers.items()) {
      if (!add_header(out, name, value, why))
        return false;
    }
    return true;
  }
  if (headers.is_array()) {
    for (const auto& pair : headers) {
      if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string())
        return fail(why, "headers: each entry must be a [name, value] pair of strings");
      if (!add_checked(out, pair[0].get<std::string>(), pair[1].get<std::string>(), why))
        return false;
    }
    return true;
  }
  return fail(why, "headers must be an object or an array of [name, value] pairs");
}

}  // namespace

std::string encode_batch(const std::vector<batch_entry>& entries) {
  json array = json::array();
  for (const auto& e : entries) {
    const rpc::rpc_request& r = *e.request;
    json headers = json::array();
    for (const auto& [name, value] : compose_headers(r))
      headers.push_back(json::array({name, value}));
    json item = json::object();
    item["method"] = r.method;
    item["path"] = r.target;
    item["headers"] = std::move(headers);
    if (is_valid_utf8(r.body)) {
      item["body"] = r.body;
      item["bodyEncoding"] = "utf8";
    } else {
      item["body"] = base64_encode(r.body);
      item["bodyEncoding"] = "base64";
    }
    item["correlation_id"] = e.correlation_id;
    array.push_back(std::move(item));
  }
  return array.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<std::vector<rpc::rpc_reply>> decode_batch_answer(
    std::string_view body, const std::vector<std::string>& correlation_ids, std::string* why) {
  const json answer = json::parse(body, nullptr, false);
  if (answer.is_discarded()) {
    fail(why, "the batch answer is not JSON");
    return std::nullopt;
  }
  if (!answer.is_array()) {
    fail(why, "the batch answer is not a JSON array");
    return std::nullopt;
  }
  if (answer.size() != correlation_ids.size()) {
    fail(why, "the batch answer has " + std::to_string(answer.size()) + " entries for " +
                  std::to_string(correlation_ids.size()) + " requests");
    return std::nullopt;
  }
  std::map<std::string_view, std::size_t> index;
  for (std::size_t i = 0; i < correlation_ids.size(); ++i)
    index.emplace(correlation_ids[i], i);
  std::vector<rpc::rpc_reply> out(correlation_ids.size());
  std::vector<bool> seen(correlation_ids.size(), false);
  for (const auto& item : answer) {
    if (!item.is_object()) {
      fail(why, "a batch answer entry is not an object");
      return std::nullopt;
    }
    const auto id = item.find("correlation_id");
    if (id == item.end() || !id->is_string()) {
      fail(why, "a batch answer entry has no correlation_id string");
      return std::nullopt;
    }
    const auto& id_text = id->get_ref<const std::string&>();
    const auto at = index.find(id_text);
    if (at == index.end()) {
      fail(why, "unknown correlation_id " + id_text);
      return std::nullopt;
    }
    if (seen[at->second]) {
      fail(why, "correlation_id " + id_text + " answered twice");
      return std::nullopt;
    }
    seen[at->second] = true;
    rpc::rpc_reply& reply = out[at->second];
    const auto status = item.find("status");
    // No 1xx: written to the client as the final answer, an interim status leaves it waiting
    // for another response that never comes.
    if (status == item.end() || !status->is_number_integer() || status->get<long long>() < 200 ||
        status->get<long long>() > 599) {
      fail(why, "correlation_id " + id_text + ": status must be an integer 200..599");
      return std::nullopt;
    }
    reply.status = static_cast<int>(status->get<long long>());
    if (const auto h = item.find("headers"); h != item.end()) {
      if (!read_headers(*h, reply.headers, why))
        return std::nullopt;
    }
    std::string encoding = "utf8";
    if (const auto e = item.find("bodyEncoding"); e != item.end() && !e->is_null()) {
      if (!e->is_string() || (*e != "utf8" && *e != "base64")) {
        fail(why, "correlation_id " + id_text + ": bodyEncoding must be utf8 or base64");
        return std::nullopt;
      }
      encoding = e->get<std::string>();
    }
    if (const auto b = item.find("body"); b != item.end() && !b->is_null()) {
      if (!b->is_string()) {
        reply.body = b->dump();
      } else if (encoding == "base64") {
        auto bytes = base64_decode(b->get_ref<const std::string&>());
        if (!bytes) {
          fail(why, "correlation_id " + id_text + ": body is not base64");
          return std::nullopt;
        }
        reply.body = std::move(*bytes);
      } else {
        reply.body = b->get<std::string>();
      }
    }
  }
  return out;
}

}  // namespace sluice::worker
