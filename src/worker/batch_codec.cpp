#include "sluice/worker/batch_codec.hpp"

#include <array>
#include <map>

#include "sluice/core/utf8.hpp"
#include "sluice/worker/target_request.hpp"

#include <nlohmann/json.hpp>

namespace sluice::worker {
namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

using json = nlohmann::json;

bool fail(std::string* why, std::string text) {
  if (why)
    *why = std::move(text);
  return false;
}

bool add_header(rpc::header_list& out, const std::string& name, const json& value,
                std::string* why) {
  if (value.is_string()) {
    out.emplace_back(name, value.get<std::string>());
    return true;
  }
  if (value.is_array()) {
    for (const auto& v : value) {
      if (!v.is_string())
        return fail(why, "header " + name + ": values must be strings");
      out.emplace_back(name, v.get<std::string>());
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
      out.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
    }
    return true;
  }
  return fail(why, "headers must be an object or an array of [name, value] pairs");
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(bytes[i]) << 16) |
                   (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                   static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (const auto rest = bytes.size() - i; rest > 0) {
    unsigned n = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2)
      n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += rest == 2 ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return std::nullopt;
  std::array<int, 256> value{};
  value.fill(-1);
  for (std::size_t i = 0; i < alphabet.size(); ++i)
    value[static_cast<unsigned char>(alphabet[i])] = static_cast<int>(i);
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && last && k >= 2) {
        ++pad;
        v[k] = 0;
        continue;
      }
      if (pad > 0)
        return std::nullopt;  // data after padding
      v[k] = value[static_cast<unsigned char>(c)];
      if (v[k] < 0)
        return std::nullopt;
    }
    const unsigned n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2)
      out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1)
      out += static_cast<char>(n & 0xff);
  }
  return out;
}

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
    if (status == item.end() || !status->is_number_integer() || status->get<long long>() < 100 ||
        status->get<long long>() > 599) {
      fail(why, "correlation_id " + id_text + ": status must be an integer 100..599");
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
