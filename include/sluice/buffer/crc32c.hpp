#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::buffer {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of iSCSI, ext4 and
// Kafka/Redpanda record batches. Uses the SSE4.2 crc32 instruction when the CPU has it (checked
// once at run time) and a slice-by-8 table otherwise; both give identical results.
//
// `crc` chains calls: crc32c(b, crc32c(a)) == crc32c(a + b). The initial value is 0.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept;

inline std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0) noexcept {
  return crc32c(bytes.data(), bytes.size(), crc);
}

// The portable implementation, exposed so tests can check it against the hardware one.
std::uint32_t crc32c_portable(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept;

bool crc32c_uses_hardware() noexcept;

}  // namespace sluice::buffer
