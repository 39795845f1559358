#include "sluice/http/router.hpp"

#include <algorithm>

namespace sluice::http {
namespace {

template <typename Segment>
std::vector<Segment> split_path(std::string_view path) {
  std::vector<Segment> out;
  std::size_t start = 0;
  if (!path.empty() && path.front() == '/')
    start = 1;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string_view::npos ? path.size() : slash;
    out.emplace_back(path.substr(start, end - start));
    if (slash == std::string_view::npos)
      break;
    start = slash + 1;
  }
  return out;
}

bool is_capture(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

bool is_tail_capture(const std::string& segment) {
  return is_capture(segment) && segment[segment.size() - 2] == '*';
}

// Matches path segments (split once per request, not once per route: the split is most of a
// match's cost) against a pattern; fills captures. The path's own segments are not
// percent-decoded here: handlers decode the captures they use.
bool match_segments(const std::vector<std::string>& pattern,
                    const std::vector<std::string_view>& parts,
                    std::map<std::string, std::string>& captures) {
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const auto& seg = pattern[i];
    if (is_tail_capture(seg)) {
      std::string rest;
      for (std::size_t j = i; j < parts.size(); ++j) {
        if (j > i)
          rest.push_back('/');
        rest += parts[j];
      }
      captures[seg.substr(1, seg.size() - 3)] = rest;
      return true;
    }
    if (i >= parts.size())
      return false;
    if (is_capture(seg)) {
      if (parts[i].empty())
        return false;
      captures[seg.substr(1, seg.size() - 2)] = std::string(parts[i]);
    } else if (seg != parts[i]) {
      return false;
    }
  }
  return parts.size() == pattern.size();
}

}  // namespace

void router::add(std::string method, std::string pattern, std::string name, handler h,
                 route_options options) {
  auto segments = split_path<std::string>(pattern);
  route r{std::move(method),
          std::move(pattern),
          std::move(segments),
          std::move(name),
          std::move(h),
          0,
          options};
  r.literal_count = static_cast<int>(std::count_if(r.segments.begin(), r.segments.end(),
                                                   [](const auto& s) { return !is_capture(s); }));
  if (r.options.stream_body)
    max_stream_body_bytes_ = std::max(max_stream_body_bytes_, r.options.max_body_bytes);
  routes_.push_back(std::move(r));
}

router::match router::find(request& req) const {
  match result;
  const route* best = nullptr;
  const route* best_other_method = nullptr;  // names a 405 in metrics: the path is a route
  std::map<std::string, std::string> best_captures;
  const auto parts = split_path<std::string_view>(req.path);
  for (const auto& r : routes_) {
    std::map<std::string, std::string> captures;
    if (!match_segments(r.segments, parts, captures))
      continue;
    if (r.method != req.method) {
      result.allowed.push_back(r.method);
      if (best_other_method == nullptr || r.literal_count > best_other_method->literal_count)
        best_other_method = &r;
      continue;
    }
    if (best == nullptr || r.literal_count > best->literal_count) {
      best = &r;
      best_captures = std::move(captures);
    }
  }
  if (best != nullptr) {
    result.outcome = match::kind::found;
    result.target = &best->h;
    result.route_name = best->name;
    result.watch_client = best->options.watch_client;
    result.options = &best->options;
    result.allowed.clear();
    req.params = std::move(best_captures);
    return result;
  }
  if (!result.allowed.empty()) {
    std::sort(result.allowed.begin(), result.allowed.end());
    result.allowed.erase(std::unique(result.allowed.begin(), result.allowed.end()),
                         result.allowed.end());
    result.outcome = match::kind::method_not_allowed;
    result.route_name = best_other_method->name;
  }
  return result;
}

std::vector<router::route_info> router::list() const {
  std::vector<route_info> out;
  out.reserve(routes_.size());
  for (const auto& r : routes_)
    out.push_back({r.method, r.pattern, r.name, &r.options});
  return out;
}

bool router::has(std::string_view method, std::string_view path) const {
  const auto parts = split_path<std::string_view>(path);
  for (const auto& r : routes_) {
    std::map<std::string, std::string> captures;
    if (r.method == method && match_segments(r.segments, parts, captures))
      return true;
  }
  return false;
}

}  // namespace sluice::http
