#include "sluice/buffer/errc.hpp"

namespace sluice::buffer {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sluice.buffer"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::buffer_full:
        return "file buffer full";
      case errc::closed:
        return "file buffer closed";
      case errc::record_too_large:
        return "record too large";
      case errc::busy:
        return "a read is already in progress";
      case errc::unknown_position:
        return "unknown record position";
      case errc::bad_segment_header:
        return "bad segment header";
      case errc::torn_record:
        return "torn record";
      case errc::bad_record_length:
        return "bad record length";
      case errc::crc_mismatch:
        return "crc mismatch";
      case errc::malformed_record:
        return "malformed record";
      case errc::log_locked:
        return "log directory locked by another process";
    }
    return "unknown sluice.buffer error";
  }
};

}  // namespace

const std::error_category& buffer_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace sluice::buffer
