#pragma once

#include <optional>
#include <string_view>

#include "sluice/http/caller.hpp"

namespace sluice::auth {

// "read", "write" or "admin"; nothing for any other spelling.
std::optional<http::access> role_named(std::string_view name) noexcept;
// Gives `who` the role (admin implies read and write through caller::may).
void grant(http::caller& who, http::access role) noexcept;

}  // namespace sluice::auth
