#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <thread>

namespace sluice::test {

// Polls `done` (a condition outside the test's control: an API answer, a log line, a row) every
// `poll` until it holds or `within` has passed; its last answer.
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds within,
                       std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done())
      return true;
    std::this_thread::sleep_for(poll);
  }
  return done();
}

// How long `done` took to hold, or nullopt when it did not within `within`.
inline std::optional<std::chrono::milliseconds> time_until(const std::function<bool()>& done,
                                                           std::chrono::milliseconds within) {
  const auto start = std::chrono::steady_clock::now();
  if (!eventually(done, within))
    return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

}  // namespace sluice::test
