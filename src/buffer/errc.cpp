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
      case errc::failed_full:
        return "failed/ full (FILE_BUFFER_FAILED_MAX_BYTES)";
    }
    return "unknown sluice.buffer error";
  }
};

}  // namespace

const std::error_category& buffer_category() noexcept {
  static const category instance;
  return instance;
}

bool proves_corruption(std::error_code ec) noexcept {
  if (ec.category() != buffer_category())
    return false;
  switch (static_cast<errc>(ec.value())) {
    case errc::bad_segment_header:
    case errc::torn_record:
    case errc::bad_record_length:
    case errc::crc_mismatch:
    case errc::malformed_record:
      return true;
    default:
      return false;
  }
}

}  // namespace sluice::buffer
