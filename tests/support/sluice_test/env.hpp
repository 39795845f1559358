#pragma once

#include <string>

namespace sluice::test {

// The value of an environment variable tests/run exports; throws (failing the test) when it
// is missing, because a skipped integration test proves nothing.
std::string require_env(const char* name);

// A fresh temporary directory, removed by the destructor.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs $SLUICE_TEST_PG_CONTROL / $SLUICE_TEST_AMQP_CONTROL with an action (start, stop, kill);
// throws if it fails.
void control_postgres(const std::string& action);
void control_rabbitmq(const std::string& action);

}  // namespace sluice::test
