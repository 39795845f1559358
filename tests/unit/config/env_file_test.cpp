// Differential test: `--config` must read a file exactly as the unit's EnvironmentFile= does.
// The reference is systemd's own parser (load_env_file in libsystemd-shared, Debian 12's
// systemd 252), loaded at run time; tests/run installs the systemd package for it.
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <fstream>
#include <string>
#include <vector>

#include "sluice/config/loader.hpp"

#include <gtest/gtest.h>

namespace sluice::config {
namespace {

using load_env_file_fn = int (*)(FILE*, const char*, char***);

class systemd_env_file {
 public:
  systemd_env_file() {
    handle_ = dlopen(SLUICE_SYSTEMD_SHARED, RTLD_NOW | RTLD_LOCAL);
    if (handle_ != nullptr)
      load_ = reinterpret_cast<load_env_file_fn>(dlsym(handle_, "load_env_file"));
  }
  ~systemd_env_file() {
    if (handle_ != nullptr)
      dlclose(handle_);
  }
  systemd_env_file(const systemd_env_file&) = delete;
  systemd_env_file& operator=(const systemd_env_file&) = delete;

  bool loaded() const { return load_ != nullptr; }

  env_map read(const std::string& path) const {
    char** pairs = nullptr;
    const int rc = load_(nullptr, path.c_str(), &pairs);
    EXPECT_EQ(rc, 0) << path;
    env_map out;
    for (char** p = pairs; p != nullptr && *p != nullptr; ++p) {
      const std::string pair(*p);
      out[pair.substr(0, pair.find('='))] = pair.substr(pair.find('=') + 1);
      std::free(*p);
    }
    std::free(pairs);
    return out;
  }

 private:
  void* handle_ = nullptr;
  load_env_file_fn load_ = nullptr;
};

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(env_file, reads_a_typical_file) {
  const std::string path = write_file("sluice_env_test.env",
                                      "# comment\n"
                                      "; also a comment\n"
                                      "\n"
                                      "  SLUICE_HTTP_ADDR = 127.0.0.1:9000  \n"
                                      "DATABASE_URL=\"host=db password='x y'\"\n"
                                      "LOG_LEVEL='warn'\n"
                                      "FILE_BUFFER_DIR=/var/lib/a\\\n"
                                      "/b\n"
                                      "ESCAPED=\"a\\\"b\"\n");
  const env_map env = read_env_file(path);
  EXPECT_EQ(env.at("SLUICE_HTTP_ADDR"), "127.0.0.1:9000");
  EXPECT_EQ(env.at("DATABASE_URL"), "host=db password='x y'");
  EXPECT_EQ(env.at("LOG_LEVEL"), "warn");
  EXPECT_EQ(env.at("FILE_BUFFER_DIR"), "/var/lib/a/b");
  EXPECT_EQ(env.at("ESCAPED"), "a\"b");
  EXPECT_EQ(env.size(), 5u);
}

TEST(env_file, reads_every_construct_as_systemd_does) {
  const systemd_env_file systemd;
  ASSERT_TRUE(systemd.loaded()) << "cannot load " << SLUICE_SYSTEMD_SHARED << ": " << dlerror()
                                << " (install the Debian package systemd)";
  const std::vector<std::string> files = {
      // comments, blank lines, blanks around key and value
      "# comment\n; comment\n\n  A = 1  \n\tB=\t two words \t\n",
      // quotes: literal single quotes, mixed quoted and bare parts, quotes inside a bare value
      "A='x \"y\" \\n'\nB=\"a\"'b'c\nC=x\"y\" 'z'\nD='a' b  \nE=\"q\"  \n",
      // double quotes unescape only \" \\ \` \$ and keep the backslash before anything else
      "A=\"1\\\"2\\\\3\\`4\\$5\"\nB=\"a\\nb\\tc\\x\"\n",
      // bare escapes, an escaped trailing blank, line continuation in bare and quoted values
      "A=a\\ b\\\\c\\#\nB=end\\ \nC=one\\\ntwo\nD=\"one\\\ntwo\"\n",
      // quoted values spanning lines; no final newline
      "A='line1\nline2'\nB=\"l1\nl2\"\nC=last",
      // empty values, later assignments win
      "A=\nB=   \nC=''\nA=again\n",
      // CRLF line endings
      "A=1\r\nB=\"two\"\r\n# c\r\nC=3\r\n",
      // blanks before an escaped line break stay; an escaped backslash ends the line
      "A=\"xy\"\\\n\nB=a \\\n\nC=foo\\\\\nD='a' 'b'\n",
      // a comment ending in a backslash swallows the next line in systemd 252
      "# note \\\nHIDDEN=1\nSHOWN=2\n",
      // a realistic settings file
      "SLUICE_HTTP_ADDR=0.0.0.0:8080\n"
      "DATABASE_URL=\"postgresql://sluice:p%40ss@db:5432/sluice?sslmode=disable\"\n"
      "RABBITMQ_URL='amqp://guest:guest@mq:5672/%2f'\n"
      "LOG_LEVEL=debug # not a comment\n",
  };
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string path = write_file("sluice_env_diff_" + std::to_string(i) + ".env", files[i]);
    EXPECT_EQ(read_env_file(path), systemd.read(path)) << "file " << i << ":\n" << files[i];
  }
}

TEST(env_file, is_stricter_than_systemd_where_systemd_would_guess) {
  // systemd skips a line without `=` and keeps a value whose quote never closes; sluice stops at
  // start-up and names the file and the line instead.
  const auto message = [](const std::string& text) {
    try {
      read_env_file(write_file("sluice_env_strict.env", text));
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("A=1\nNOT A SETTING\n").find("sluice_env_strict.env:2: expected KEY=VALUE"),
            std::string::npos);
  EXPECT_NE(message("A=1\n\nB=\"open\nC=2\n").find(":3: unterminated double quote"),
            std::string::npos);
  EXPECT_NE(message("A='open\n").find(":1: unterminated single quote"), std::string::npos);
  EXPECT_NE(message("A-B=1\n").find(":1: invalid key 'A…'"), std::string::npos);
  EXPECT_NE(message("=1\n").find(":1: no key before '='"), std::string::npos);
  // A URL pasted as a line is no setting; the error shows no more of it than the valid start.
  const std::string pasted = message("postgresql://app:hunter2@db/x?sslmode=require\n");
  EXPECT_NE(pasted.find(":1: invalid key 'postgresql…'"), std::string::npos) << pasted;
  EXPECT_EQ(pasted.find("hunter2"), std::string::npos) << pasted;
  // Where systemd refuses the whole file, so does sluice: NUL bytes, values not UTF-8.
  EXPECT_NE(message(std::string("A=1\nB=x\0y\n", 10)).find(":2: NUL byte"), std::string::npos);
  EXPECT_NE(message("A=ok\nB=caf\xe9\n").find(":2: the value of B is not valid UTF-8"),
            std::string::npos);
  EXPECT_NE(message("A=\xed\xa0\x80\n").find("not valid UTF-8"), std::string::npos)
      << "a surrogate";
  EXPECT_NE(message("A=\xc0\xaf\n").find("not valid UTF-8"), std::string::npos) << "overlong";
  EXPECT_NE(message("A=caf\xc3").find("not valid UTF-8"), std::string::npos) << "cut short";
  EXPECT_EQ(message("A=caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n"), "no error");
  // Errors count lines ended by \r alone too.
  EXPECT_NE(message("A=1\rB=2\rNOT A SETTING\r").find(":3: expected KEY=VALUE"), std::string::npos);
  EXPECT_NE(message("LAST").find(":1: expected KEY=VALUE"), std::string::npos);
  EXPECT_THROW(read_env_file("/nonexistent/sluice.env"), config_error);
}

}  // namespace
}  // namespace sluice::config
