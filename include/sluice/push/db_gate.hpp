#pragma once

namespace sluice::push {

// What others (the relay, readiness, metrics) read of the push path's view of PostgreSQL:
// whether the schema is in place (nothing may be written before the migrations ran) and
// whether the push path currently counts it as healthy (its mode is not failing_over).
// Written by push_service alone, from its failover_mode.
class db_gate {
 public:
  bool schema_ready() const { return schema_ready_; }
  bool healthy() const { return healthy_; }

  void set_schema_ready() { schema_ready_ = true; }
  void report(bool ok) { healthy_ = ok; }

 private:
  bool schema_ready_ = false;
  bool healthy_ = false;
};

}  // namespace sluice::push
