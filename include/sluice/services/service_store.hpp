#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "sluice/services/service.hpp"
#include "sluice/store/pg_connection.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::services {

// The outcome of a statement on sluice_services: ec (a store::errc) and the server's text.
using store_status = store::statement_status;

struct put_result {
  store_status status;
  bool created = false;  // no row of this name existed before
  // The stored definition, schedule included (the kept one when the PUT did not carry one).
  std::optional<service> stored;
};

struct change_result {
  store_status status;
  bool found = false;  // a row of this name existed
};

struct load_one_result {
  store_status status;
  std::optional<service> found;  // nullopt: no row
};

struct load_all_result {
  store_status status;
  std::vector<service> services;  // sorted by name
  // Rows that did not parse (written by a newer version, or edited by hand): logged and left
  // out, so one bad row does not hide the others.
  std::vector<std::string> skipped;
};

// Services stored through the API (migration 4: sluice_services(name, spec jsonb, schedule
// jsonb, updated_at)). `spec` is to_json(service) without the schedule; `schedule` is
// to_json(schedule) or NULL. Every write fires the table's trigger, which NOTIFYs
// 'sluice_services' with the name (service_follower listens). One round trip per call.
class service_store {
 public:
  service_store(store::pg_pool& pool, service_defaults defaults);

  // Upserts the spec. With s.traffic set the schedule is replaced too; without, the stored
  // schedule (if any) is kept.
  boost::asio::awaitable<put_result> put(const service& s, store::clock::time_point deadline);

  // Sets (or with nullopt clears) the schedule of a stored service; found = false when no row.
  boost::asio::awaitable<change_result> set_schedule(std::string_view name,
                                                     const std::optional<schedule>& traffic,
                                                     store::clock::time_point deadline);
  // Inserts `base` (an environment service) with `traffic` when no row exists, else sets the
  // schedule of the stored row: a schedule for a service the API does not store yet.
  boost::asio::awaitable<change_result> set_schedule_or_insert(const service& base,
                                                               const schedule& traffic,
                                                               store::clock::time_point deadline);

  boost::asio::awaitable<change_result> remove(std::string_view name,
                                               store::clock::time_point deadline);

  boost::asio::awaitable<load_one_result> load(std::string_view name,
                                               store::clock::time_point deadline);
  boost::asio::awaitable<load_all_result> load_all(store::clock::time_point deadline);

  // The same reads on a connection of the caller's (the follower's LISTEN connection).
  static boost::asio::awaitable<load_one_result> load(store::pg_connection& conn,
                                                      std::string_view name,
                                                      const service_defaults& defaults,
                                                      store::clock::time_point deadline);
  static boost::asio::awaitable<load_all_result> load_all(store::pg_connection& conn,
                                                          const service_defaults& defaults,
                                                          store::clock::time_point deadline);

  const service_defaults& defaults() const { return defaults_; }

 private:
  store::pg_pool& pool_;
  service_defaults defaults_;
};

// A row (spec and schedule text as stored) back to a service of source api; nullopt and the
// reason when it does not parse. A schedule that no longer fits the spec (a concurrent PUT
// removed a flavour it names) is dropped with `schedule_problem` set: the service works with
// its default flavour rather than not at all.
std::optional<service> decode_service_row(std::string_view name, std::string_view spec,
                                          const std::optional<std::string>& schedule_json,
                                          const service_defaults& defaults, std::string& problem,
                                          std::string* schedule_problem = nullptr);

}  // namespace sluice::services
