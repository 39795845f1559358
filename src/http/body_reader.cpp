#include "sluice/http/body_reader.hpp"

namespace sluice::http {
namespace {

class body_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.http.body"; }
  std::string message(int code) const override {
    switch (static_cast<body_errc>(code)) {
      case body_errc::too_large:
        return "request body too large";
      case body_errc::timeout:
        return "request body timed out";
      case body_errc::malformed:
        return "malformed request body";
      case body_errc::closed:
        return "client closed the connection";
    }
    return "unknown body error";
  }
};

}  // namespace

const std::error_category& body_category() noexcept {
  static const body_category_impl category;
  return category;
}

}  // namespace sluice::http
