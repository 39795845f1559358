#include <fstream>
#include <map>

#include "sluice/config/loader.hpp"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

TEST(config, defaults_apply_without_environment) {
  const settings s = load_settings({});
  EXPECT_EQ(s.http_addr.host, "0.0.0.0");
  EXPECT_EQ(s.http_addr.port, 8080);
  EXPECT_EQ(s.db_pool_max, 8u);
  EXPECT_EQ(s.file_buffer_fsync, fsync_policy::always);
  EXPECT_EQ(s.log_level, "info");
}

TEST(config, parses_typed_values) {
  const settings s = load_settings({{"SLUICE_HTTP_ADDR", "[::1]:0"},
                                    {"HTTP_MAX_BODY_BYTES", "2m"},
                                    {"HTTP_IDLE_TIMEOUT_MS", "1500"},
                                    {"FILE_BUFFER_FSYNC", "interval"},
                                    {"DEBUG", "1"}});
  EXPECT_EQ(s.http_addr.host, "::1");
  EXPECT_EQ(s.http_addr.port, 0);
  EXPECT_EQ(s.http_max_body_bytes, 2u * 1024 * 1024);
  EXPECT_EQ(s.http_idle_timeout.count(), 1500);
  EXPECT_EQ(s.file_buffer_fsync, fsync_policy::interval);
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_EQ(load_settings({{"DEBUG", "1"}, {"LOG_LEVEL", "warn"}}).log_level, "warn");
  EXPECT_EQ(load_settings({{"DEBUG", "off"}}).log_level, "info");
}

TEST(config, metrics_port_puts_the_second_listener_on_the_http_host) {
  const auto second = metrics_listener(
      load_settings({{"SLUICE_HTTP_ADDR", "10.0.0.5:8080"}, {"METRICS_PORT", "9090"}}));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->host, "10.0.0.5");
  EXPECT_EQ(second->port, 9090);
  EXPECT_EQ(metrics_listener(load_settings({{"METRICS_ADDR", "127.0.0.1:9"}}))->port, 9);
  EXPECT_FALSE(metrics_listener(load_settings({{"METRICS_PORT", ""}})).has_value());
  EXPECT_TRUE(load_settings({{"DEBUG", "TRUE"}}).debug);
  try {
    load_settings({{"METRICS_PORT", "9090"}, {"METRICS_ADDR", "127.0.0.1:9091"}, {"DEBUG", "2"}});
    FAIL() << "expected config_error";
  } catch (const config_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("METRICS_PORT and METRICS_ADDR: expected only one of them"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("DEBUG='2': expected 1, true, yes, on, or 0, false, no, off"),
              std::string::npos)
        << what;
  }
  try {
    load_settings({{"METRICS_PORT", "tcp://10.0.0.9:9090"}});
    FAIL() << "expected config_error";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("Kubernetes injects"), std::string::npos) << e.what();
  }
}

TEST(config, tls_needs_both_certificate_and_key) {
  for (const char* given : {"SLUICE_TLS_CERT", "SLUICE_TLS_KEY"}) {
    try {
      load_settings({{given, "/etc/sluice/tls.pem"}});
      FAIL() << "expected config_error for " << given << " alone";
    } catch (const config_error& e) {
      EXPECT_NE(std::string(e.what()).find("SLUICE_TLS_CERT and SLUICE_TLS_KEY: expected both"),
                std::string::npos)
          << e.what();
    }
  }
  const auto both = load_settings({{"SLUICE_TLS_CERT", "c.pem"}, {"SLUICE_TLS_KEY", "k.pem"}});
  EXPECT_EQ(both.tls_cert_file, "c.pem");
  EXPECT_EQ(both.tls_key_file, "k.pem");
  EXPECT_EQ(load_settings({{"RABBITMQ_URL", "amqps://h/"}, {"RABBITMQ_CA_FILE", "ca.pem"}})
                .rabbitmq_ca_file,
            "ca.pem");
  EXPECT_THROW(load_settings({{"RABBITMQ_URL", "http://h/"}}), config_error);
}

TEST(config, invalid_values_name_every_variable_and_what_was_expected) {
  try {
    load_settings({{"DB_POOL_MAX", "zero"},
                   {"FILE_BUFFER_FSYNC", "sometimes"},
                   {"SLUICE_HTTP_ADDR", "8080"}});
    FAIL() << "expected config_error";
  } catch (const config_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("DB_POOL_MAX='zero': expected an integer from 1 to 1000"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("FILE_BUFFER_FSYNC='sometimes': expected one of always, interval, never"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("SLUICE_HTTP_ADDR='8080': expected HOST:PORT"), std::string::npos) << what;
  }
  EXPECT_THROW(load_settings({{"HTTP_MAX_BODY_BYTES", "5"}}), config_error) << "below the minimum";
  EXPECT_THROW(load_settings({{"HTTP_MAX_BODY_BYTES", "99999999999g"}}), config_error)
      << "overflow";
}

TEST(config, secrets_are_hidden_in_errors_and_descriptions) {
  settings s = load_settings({{"DATABASE_URL", "postgresql://app:hunter2@db:5432/sluice"},
                              {"RABBITMQ_URL", "amqp://app:hunter3@mq:5672/"}});
  std::map<std::string, std::string> shown;
  for (const auto& info : describe(s))
    shown[info.name] = info.value;
  EXPECT_EQ(shown.at("DATABASE_URL"), "user=app password=**** dbname=sluice host=db port=5432");
  EXPECT_EQ(shown.at("RABBITMQ_URL"), "amqp://app:****@mq:5672/");
  try {
    load_settings({{"DATABASE_URL", "host=db hunter2"}, {"RABBITMQ_URL", "http://u:hunter3@x"}});
    FAIL() << "expected config_error";
  } catch (const config_error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find("hunter"), std::string::npos) << message;
    EXPECT_NE(message.find("DATABASE_URL=(hidden): expected a postgresql:// URL or a key=value "
                           "conninfo that libpq reads (missing"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("RABBITMQ_URL=(hidden)"), std::string::npos) << message;
  }
}

TEST(config, every_setting_is_documented_with_its_default_in_the_readme_and_the_example_file) {
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string readme = read(std::string(SLUICE_SOURCE_DIR) + "/README.md");
  const std::string example = read(std::string(SLUICE_SOURCE_DIR) + "/config/sluice.env");
  ASSERT_FALSE(readme.empty());
  ASSERT_FALSE(example.empty());
  for (const auto& info : describe(settings{})) {
    const std::string shown_default =
        info.default_value.empty() ? "(empty)" : "`" + info.default_value + "`";
    EXPECT_NE(readme.find("\n| `" + info.name + "` | " + shown_default + " |"), std::string::npos)
        << info.name << " missing in README.md's table, or its default there is not "
        << shown_default;
    EXPECT_NE(example.find("\n#" + info.name + "=" + info.default_value + "\n"), std::string::npos)
        << info.name << " missing in config/sluice.env, or not with its default "
        << info.default_value;
  }
}

}  // namespace
}  // namespace sluice::config
