#include "sluice/buffer/buffer_options.hpp"

namespace sluice::buffer {

std::optional<fsync_policy> parse_fsync_policy(std::string_view text) {
  if (text == "always")
    return fsync_policy::always;
  if (text == "interval")
    return fsync_policy::interval;
  if (text == "never")
    return fsync_policy::never;
  return std::nullopt;
}

std::string_view to_string(fsync_policy policy) {
  switch (policy) {
    case fsync_policy::always:
      return "always";
    case fsync_policy::interval:
      return "interval";
    case fsync_policy::never:
      return "never";
  }
  return "always";
}

}  // namespace sluice::buffer
