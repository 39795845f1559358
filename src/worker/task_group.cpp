#include "sluice/worker/task_group.hpp"

#include <map>
#include <string>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/spdlog.h>

namespace sluice::worker {
namespace asio = boost::asio;

struct task_group::state {
  std::string name;
  std::map<std::uint64_t, std::unique_ptr<asio::cancellation_signal>> tasks;
  std::uint64_t next_id = 1;
  async_event ended;
};

task_group::task_group(asio::any_io_executor executor, const char* name)
    : executor_(std::move(executor)), state_(std::make_shared<state>()) {
  state_->name = name;
}

task_group::~task_group() {
  cancel_all();
}

std::size_t task_group::running() const {
  return state_->tasks.size();
}

void task_group::spawn(asio::awaitable<void> task, std::shared_ptr<void> keep_alive) {
  const std::uint64_t id = state_->next_id++;
  auto signal = std::make_unique<asio::cancellation_signal>();
  auto slot = signal->slot();
  state_->tasks.emplace(id, std::move(signal));
  asio::co_spawn(
      executor_, std::move(task),
      asio::bind_cancellation_slot(
          slot, [st = state_, id, keep = std::move(keep_alive)](std::exception_ptr e) {
            if (e) {
              try {
                std::rethrow_exception(e);
              } catch (const boost::system::system_error& ex) {
                if (ex.code() != asio::error::operation_aborted)
                  spdlog::error("worker: {} task ended by exception what={}", st->name, ex.what());
              } catch (const std::exception& ex) {
                spdlog::error("worker: {} task ended by exception what={}", st->name, ex.what());
              }
            }
            st->tasks.erase(id);
            st->ended.notify_all();
          }));
}

void task_group::cancel_all() {
  // emit() may complete a task inline, which erases its entry: walk a copy of the ids.
  std::vector<std::uint64_t> ids;
  ids.reserve(state_->tasks.size());
  for (const auto& [id, signal] : state_->tasks)
    ids.push_back(id);
  for (const auto id : ids) {
    if (const auto it = state_->tasks.find(id); it != state_->tasks.end())
      it->second->emit(asio::cancellation_type::terminal);
  }
}

asio::awaitable<bool> task_group::wait(clock::time_point deadline) {
  const auto st = state_;
  while (!st->tasks.empty() && clock::now() < deadline)
    co_await st->ended.wait_until(deadline);
  co_return st->tasks.empty();
}

}  // namespace sluice::worker
