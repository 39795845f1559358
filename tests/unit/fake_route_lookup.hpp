#pragma once

// A route_lookup for unit tests: answers from a table (a miss otherwise) and records every key
// it was asked, so a test sees both the key built and the number of resolves.
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/routing/route_lookup.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace sluice::test {

struct fake_route_lookup : routing::route_lookup {
  std::map<routing::route_key, routing::resolve_outcome> answers;
  routing::resolve_outcome otherwise{routing::resolve_result::miss, std::nullopt, ""};
  std::vector<routing::route_key> asked;

  void active(const routing::route_key& key, std::string url) {
    answers[key] = routing::resolve_outcome{routing::resolve_result::hit, std::move(url), ""};
  }
  void unavailable() {
    otherwise = routing::resolve_outcome{routing::resolve_result::unavailable, std::nullopt,
                                         "connection refused"};
  }

  boost::asio::awaitable<routing::resolve_outcome> resolve(routing::route_key key) override {
    asked.push_back(key);
    const auto it = answers.find(key);
    co_return it == answers.end() ? otherwise : it->second;
  }
};

// Runs one coroutine to its end on a loop of its own.
template <class T>
T run_awaitable(boost::asio::awaitable<T> task) {
  boost::asio::io_context io;
  std::optional<T> out;
  std::exception_ptr failed;
  boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    failed = e;
    if (!e)
      out = std::move(value);
  });
  io.run();
  if (failed)
    std::rethrow_exception(failed);
  return std::move(*out);
}

inline routing::route_key key_of(std::string tenant, std::string service, std::string env,
                                 std::string version) {
  return routing::route_key{std::move(tenant), std::move(service), std::move(env),
                            std::move(version)};
}

}  // namespace sluice::test
