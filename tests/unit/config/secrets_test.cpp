#include "sluice/config/secrets.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

TEST(secrets, conninfo_is_shown_as_libpq_reads_it_with_the_password_masked) {
  EXPECT_EQ(masked_conninfo("postgresql://app:hunter2@db:5433/sluice?sslmode=disable"),
            "user=app password=**** dbname=sluice host=db port=5433 sslmode=disable");
  EXPECT_EQ(masked_conninfo("host=db password=hunter2 user=app"), "user=app password=**** host=db");
  EXPECT_EQ(masked_conninfo("host='/run/my dir' dbname=it\\'s"),
            "dbname='it\\'s' host='/run/my dir'");
  EXPECT_EQ(masked_conninfo(""), "");
  // Without `=` or a URL prefix libpq takes the whole value as a database name.
  EXPECT_FALSE(conninfo_error("sluice").has_value());
  EXPECT_EQ(masked_conninfo("sluice"), "dbname=sluice");
  EXPECT_EQ(masked_conninfo("my db"), "dbname='my db'");
}

TEST(secrets, the_password_never_shows_wherever_it_was_written) {
  const std::vector<std::string> forms = {
      "postgresql://app:hunter2@db:5432/sluice",
      "postgresql://app@db/sluice?password=hunter2",
      "postgres://app@db:5432/sluice?sslmode=disable&password=hunter2",
      "postgresql://app:hunter%32@db/sluice",
      "host=db password = hunter2 user=app",
      "host=db password='hunter2 with blanks' user=app",
      "password=hunter2",
  };
  for (const auto& form : forms) {
    const std::string shown = masked_conninfo(form);
    EXPECT_EQ(shown.find("hunter"), std::string::npos) << form << " -> " << shown;
    EXPECT_NE(shown.find("password=****"), std::string::npos) << form << " -> " << shown;
  }
}

TEST(secrets, libpq_errors_name_the_problem_without_echoing_the_string) {
  EXPECT_FALSE(conninfo_error("host=db user=app").has_value());
  EXPECT_FALSE(conninfo_error("").has_value());
  const auto missing = conninfo_error("host=db hunter2");
  ASSERT_TRUE(missing.has_value());
  EXPECT_NE(missing->find("missing \"=\" after \"…\" in connection info string"), std::string::npos)
      << *missing;
  EXPECT_EQ(missing->find("hunter2"), std::string::npos) << *missing;
  const auto percent = conninfo_error("postgresql://app:hunter2%zz@db/sluice");
  ASSERT_TRUE(percent.has_value());
  EXPECT_EQ(percent->find("hunter2"), std::string::npos) << *percent;
  // A quote inside the secret must not end the redaction early.
  for (const std::string with_quote :
       {"postgresql://app:ab\"cd%zz@db/sluice", "password=x a\"b\"c host=db"}) {
    const auto error = conninfo_error(with_quote);
    ASSERT_TRUE(error.has_value()) << with_quote;
    EXPECT_EQ(error->find("cd"), std::string::npos) << *error;
    EXPECT_EQ(error->find("b\"c"), std::string::npos) << *error;
  }
  EXPECT_TRUE(conninfo_error("postgresql://db/sluice?no_such_option=1").has_value());
  EXPECT_TRUE(conninfo_error("host='unterminated").has_value());
}

TEST(secrets, url_passwords_are_masked_only_in_the_user_part) {
  EXPECT_EQ(masked_url("amqp://guest:guest@mq:5672/%2f"), "amqp://guest:****@mq:5672/%2f");
  EXPECT_EQ(masked_url("amqp://guest@mq:5672/vhost"), "amqp://guest@mq:5672/vhost");
  // an `@` in the vhost and a port `:` are no user part
  EXPECT_EQ(masked_url("amqp://mq:5672/team@eu"), "amqp://mq:5672/team@eu");
  EXPECT_EQ(masked_url("amqp://u:p%40ss@mq/"), "amqp://u:****@mq/");
  EXPECT_EQ(masked_url("amqp://u:pw@[::1]:5672"), "amqp://u:****@[::1]:5672");
  EXPECT_EQ(masked_url(""), "");
}

}  // namespace
}  // namespace sluice::config
