#include "sluice/push/record_log.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice::push {

namespace asio = boost::asio;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<std::error_code> buffer_log_records::append(std::vector<message> messages) {
  auto [ec] = co_await log_.append(std::move(messages), use_tuple);
  co_return ec;
}

asio::awaitable<record_log::read_result> buffer_log_records::read_batch(std::size_t max_records) {
  auto [ec, records] = co_await log_.read_batch(max_records, use_tuple);
  co_return read_result{ec, std::move(records)};
}

std::error_code buffer_log_records::acknowledge(const buffer::record_position& last) {
  return log_.acknowledge(last);
}

std::error_code buffer_log_records::rewind() {
  return log_.rewind();
}

asio::awaitable<std::error_code> buffer_log_records::quarantine_failed(std::vector<message> records,
                                                                       std::string reason) {
  auto [ec] = co_await log_.quarantine_failed(std::move(records), std::move(reason), use_tuple);
  co_return ec;
}

asio::awaitable<std::pair<std::error_code, buffer::retry_result>> buffer_log_records::retry_failed(
    buffer::retry_filter filter) {
  auto [ec, retried, remaining] = co_await log_.retry_failed(filter, use_tuple);
  co_return std::pair{ec, buffer::retry_result{retried, remaining}};
}

buffer::buffer_stats buffer_log_records::stats() const {
  return log_.stats();
}

std::string buffer_log_records::name() const {
  return log_.dir().string();
}

}  // namespace sluice::push
