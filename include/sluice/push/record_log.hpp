#pragma once

#include <cstddef>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "sluice/buffer/buffer_log.hpp"
#include "sluice/buffer/record_position.hpp"
#include "sluice/core/message.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::push {

// What the push path needs of a file buffer log (buffer_log.hpp has the contract of each
// call). The daemon passes buffer_log_records; the push path's unit tests pass a fake log whose
// appends can be held open and failed, which no real disk does on demand.
class record_log {
 public:
  using read_result = std::pair<std::error_code, std::vector<buffer::buffered_record>>;

  virtual ~record_log() = default;
  virtual boost::asio::awaitable<std::error_code> append(std::vector<message> messages) = 0;
  virtual boost::asio::awaitable<read_result> read_batch(std::size_t max_records) = 0;
  virtual std::error_code acknowledge(const buffer::record_position& last) = 0;
  virtual std::error_code rewind() = 0;
  virtual boost::asio::awaitable<std::error_code> quarantine_failed(std::vector<message> records,
                                                                    std::string reason) = 0;
  virtual boost::asio::awaitable<std::pair<std::error_code, buffer::retry_result>> retry_failed(
      buffer::retry_filter filter) = 0;
  virtual buffer::buffer_stats stats() const = 0;
  virtual std::string name() const = 0;  // for logs: the log's directory
};

// The real log.
class buffer_log_records final : public record_log {
 public:
  explicit buffer_log_records(buffer::buffer_log& log) : log_(log) {}

  boost::asio::awaitable<std::error_code> append(std::vector<message> messages) override;
  boost::asio::awaitable<read_result> read_batch(std::size_t max_records) override;
  std::error_code acknowledge(const buffer::record_position& last) override;
  std::error_code rewind() override;
  boost::asio::awaitable<std::error_code> quarantine_failed(std::vector<message> records,
                                                            std::string reason) override;
  boost::asio::awaitable<std::pair<std::error_code, buffer::retry_result>> retry_failed(
      buffer::retry_filter filter) override;
  buffer::buffer_stats stats() const override;
  std::string name() const override;

 private:
  buffer::buffer_log& log_;
};

}  // namespace sluice::push
