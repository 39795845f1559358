#include "dlq_test_support.hpp"

#include <stdexcept>

namespace sluice::delivery::test {

using namespace std::chrono_literals;

dlq_database::dlq_database(std::size_t connections) {
  store::pool_options o;
  o.connection.conninfo = db.url();
  o.max_connections = connections;
  pool = std::make_unique<store::pg_pool>(io.get_executor(), o);
  const auto migrated = run(io, store::apply_migrations(*pool, in(10s)));
  if (migrated.ec)
    throw std::runtime_error("migrations failed: " + migrated.message);
}

uuid id_of(int n) {
  // v7 layout with a fixed timestamp; the low bytes carry n, so ids sort by n.
  uuid id;
  const std::int64_t ms = 1'760'000'000'000;
  for (int i = 0; i < 6; ++i)
    id.bytes[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  id.bytes[6] = 0x70;
  id.bytes[8] = 0x80;
  for (int i = 0; i < 4; ++i)
    id.bytes[12 + i] = static_cast<std::uint8_t>(static_cast<std::uint32_t>(n) >> (8 * (3 - i)));
  return id;
}

dead_letter make_dead_letter(int n, const std::string& queue, const std::string& subscription) {
  dead_letter d;
  d.message.queue = queue;
  d.message.subscription = subscription;
  d.message.message_id = id_of(n);
  d.message.partition = "p" + std::to_string(n % 3);
  d.message.headers = {{"queue", queue}, {"traceId", "t" + std::to_string(n)}};
  d.message.created_ms = 1'760'000'000'000 + n;
  d.message.payload = R"({"n": )" + std::to_string(n) + R"(, "bytes":"\u00e9"})";
  d.message.attempt = 5;
  d.reason = "attempts_exhausted";
  d.last_status = 503;
  d.first_attempt_ms = 1'760'000'001'000 + n;
  d.last_attempt_ms = 1'760'000'009'000 + n;
  d.response_excerpt = "busy " + std::to_string(n);
  return d;
}

void subscribe(sluice::test::pg_session& s, const std::string& queue, const std::string& name) {
  s.query("INSERT INTO sluice_subscriptions (queue, name, spec, paused_at) VALUES ('" + queue +
          "', '" + name + "', '{\"url\":\"http://127.0.0.1:9/\"}', now()) ON CONFLICT DO NOTHING");
}

void spread_dead_at(sluice::test::pg_session& s, std::chrono::milliseconds step) {
  s.query(
      "UPDATE sluice_dead_letters SET dead_at = timestamptz '2026-01-01 00:00:00+00' + "
      "(('x' || substr(replace(id::text, '-', ''), 25, 8))::bit(32)::int) * interval '" +
      std::to_string(step.count()) + " milliseconds'");
}

}  // namespace sluice::delivery::test
