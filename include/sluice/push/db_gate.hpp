#pragma once

namespace sluice::push {

// What the push path knows about PostgreSQL: whether the schema is in place (nothing may be
// written before the migrations ran) and whether the last round trip worked. Shared by the
// batcher's caller, the replayers, the status endpoint and metrics.
class db_gate {
 public:
  bool schema_ready() const { return schema_ready_; }
  bool healthy() const { return healthy_; }

  void set_schema_ready() {
    schema_ready_ = true;
    healthy_ = true;
  }
  void report(bool ok) { healthy_ = ok; }

 private:
  bool schema_ready_ = false;
  bool healthy_ = false;
};

}  // namespace sluice::push
