#include "sluice/delivery/batch_protocol.hpp"

#include <cstdio>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace sluice::delivery {
namespace {

using json = nlohmann::json;

// A JSON string literal of `text`: quote, backslash and control characters escaped, every other
// byte as it is (ids and partitions are validated UTF-8 before they get here).
void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::optional<std::vector<int>> fail(std::string* why, std::string text) {
  if (why)
    *why = std::move(text);
  return std::nullopt;
}

// A status as a JSON integer in 100..599 (200.0 or "200" are not statuses).
std::optional<int> read_status(const json& value) {
  if (!value.is_number_integer())
    return std::nullopt;
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (v < 100 || v > 599)
      return std::nullopt;
    return static_cast<int>(v);
  }
  const auto v = value.get<std::int64_t>();
  if (v < 100 || v > 599)
    return std::nullopt;
  return static_cast<int>(v);
}

}  // namespace

std::string encode_batch(std::string_view queue, const std::vector<batch_item>& items) {
  std::string quoted_queue;
  append_json_string(quoted_queue, queue);

  std::size_t size = 2;
  for (const auto& item : items)
    size += 64 + quoted_queue.size() + item.id.size() + item.partition.size() +
            (item.payload ? item.payload->size() : 4);
  std::string out;
  out.reserve(size);

  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    if (i > 0)
      out += ',';
    out += "{\"id\":";
    append_json_string(out, item.id);
    out += ",\"queue\":";
    out += quoted_queue;
    out += ",\"partition\":";
    append_json_string(out, item.partition);
    out += ",\"attempt\":";
    out += std::to_string(item.attempt);
    out += ",\"payload\":";
    // Pushed payloads are validated JSON; an absent one still leaves the array valid.
    if (item.payload && !item.payload->empty())
      out += *item.payload;
    else
      out += "null";
    out += '}';
  }
  out += ']';
  return out;
}

std::optional<std::vector<int>> parse_batch_response(std::string_view body,
                                                     const std::vector<std::string>& ids,
                                                     std::string* why) {
  const json doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded())
    return fail(why, "the batch response is not JSON");
  if (!doc.is_array())
    return fail(why, "the batch response is not a JSON array");
  if (doc.size() != ids.size())
    return fail(why, "the batch response has " + std::to_string(doc.size()) + " entries for " +
                         std::to_string(ids.size()) + " messages");

  std::vector<int> statuses(ids.size(), 0);
  if (doc.empty())
    return statuses;

  if (doc.front().is_number()) {
    for (std::size_t i = 0; i < doc.size(); ++i) {
      const auto status = read_status(doc[i]);
      if (!status)
        return fail(why, "entry " + std::to_string(i) + " is not a status in 100..599");
      statuses[i] = *status;
    }
    return statuses;
  }

  if (!doc.front().is_object())
    return fail(why, "the batch response's entries must be statuses or objects");

  // The positions still unanswered per id, in item order: the same id twice in one batch (a
  // redelivered duplicate) is answered by two objects.
  std::unordered_map<std::string_view, std::vector<std::size_t>> open;
  for (std::size_t i = ids.size(); i-- > 0;)
    open[ids[i]].push_back(i);

  for (std::size_t i = 0; i < doc.size(); ++i) {
    const json& entry = doc[i];
    if (!entry.is_object())
      return fail(why, "entry " + std::to_string(i) + " is not an object");
    const auto id = entry.find("id");
    if (id == entry.end() || !id->is_string())
      return fail(why, "entry " + std::to_string(i) + " has no string \"id\"");
    const auto status_field = entry.find("status");
    const auto status = status_field == entry.end() ? std::nullopt : read_status(*status_field);
    if (!status)
      return fail(why, "entry " + std::to_string(i) + " has no \"status\" in 100..599");
    const auto& id_text = id->get_ref<const std::string&>();
    const auto positions = open.find(id_text);
    if (positions == open.end())
      return fail(why, "entry " + std::to_string(i) + " names an id not in the batch");
    if (positions->second.empty())
      return fail(why, "entry " + std::to_string(i) + " repeats an id");
    statuses[positions->second.back()] = *status;
    positions->second.pop_back();
  }
  // Equal lengths and no id answered more often than it was sent: every item has its status.
  return statuses;
}

}  // namespace sluice::delivery
