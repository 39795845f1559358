#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "sluice/config/loader.hpp"
#include "sluice/core/utf8.hpp"

extern char** environ;

namespace sluice::config {
namespace {

bool is_newline(char c) {
  return c == '\n' || c == '\r';
}
bool is_blank(char c) {
  return c == ' ' || c == '\t' || is_newline(c);
}

bool is_key_char(char c, bool first) {
  const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  return first ? alpha : alpha || (c >= '0' && c <= '9');
}

// The characters a backslash escapes inside double quotes; before any other character the
// backslash stays, as in a shell.
bool double_quote_escapable(char c) {
  return c == '"' || c == '\\' || c == '`' || c == '$';
}

// A character-level reader with the states of systemd 252's env-file parser, so a file that
// works as a unit's EnvironmentFile= means the same to `--config`. Where systemd silently skips
// or guesses (a line without `=`, a key that is no variable name, a quote left open at the end
// of the file) this reader stops with the file and line instead: a typo in a setting should not
// start the daemon with a default.
class env_file_reader {
 public:
  env_file_reader(const std::string& path, env_map& out) : path_(path), out_(out) {}

  void read(const std::string& text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      // systemd refuses a file with a NUL byte in it, so the unit would not start.
      if (c == '\0')
        fail(line_, "NUL byte");
      step(c);
      // Lines end in \n, \r\n or a lone \r: the numbers in errors follow all three.
      if (c == '\n' || (c == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')))
        ++line_;
    }
    finish();
  }

 private:
  enum class state {
    before_key,
    key,
    before_value,
    bare_value,
    bare_escape,
    single_quoted,
    double_quoted,
    double_escape,
    comment,
    comment_escape,
  };

  void step(char c) {
    switch (state_) {
      case state::before_key:
        if (c == '#' || c == ';') {
          state_ = state::comment;
        } else if (!is_blank(c)) {
          state_ = state::key;
          key_line_ = line_;
          key_.clear();
          step(c);
        }
        break;
      case state::key:
        if (is_newline(c))
          fail(key_line_, "expected KEY=VALUE");
        if (c == '=') {
          check_key();
          value_.clear();
          state_ = state::before_value;
        } else {
          key_.push_back(c);
        }
        break;
      case state::before_value:
        // Quotes open only here: at the start of the value or right after a closing quote.
        if (is_newline(c))
          store();
        else if (c == '\'')
          state_ = state::single_quoted;
        else if (c == '"')
          state_ = state::double_quoted;
        else if (c == '\\')
          state_ = state::bare_escape;
        else if (!is_blank(c))
          append_bare(c);
        break;
      case state::bare_value:
        if (is_newline(c)) {
          drop_trailing_blanks();
          store();
        } else if (c == '\\') {
          // Blanks before an escape are inside the value, not trailing.
          trailing_blanks_at_ = std::string::npos;
          state_ = state::bare_escape;
        } else {
          append_bare(c);
        }
        break;
      case state::bare_escape:
        // An escaped character is kept even if blank; an escaped line break joins the lines.
        state_ = state::bare_value;
        if (!is_newline(c))
          value_.push_back(c);
        break;
      case state::single_quoted:
        if (c == '\'')
          state_ = state::before_value;
        else
          value_.push_back(c);
        break;
      case state::double_quoted:
        if (c == '"')
          state_ = state::before_value;
        else if (c == '\\')
          state_ = state::double_escape;
        else
          value_.push_back(c);
        break;
      case state::double_escape:
        state_ = state::double_quoted;
        if (double_quote_escapable(c)) {
          value_.push_back(c);
        } else if (c != '\n') {
          value_.push_back('\\');
          value_.push_back(c);
        }
        break;
      case state::comment:
        if (c == '\\')
          state_ = state::comment_escape;
        else if (is_newline(c))
          state_ = state::before_key;
        break;
      case state::comment_escape:
        // systemd 252 (Debian 12) continues a comment over an escaped line break; 254 and later
        // read the next line as a setting. A comment ending in a backslash is best avoided.
        state_ = state::comment;
        break;
    }
  }

  void append_bare(char c) {
    state_ = state::bare_value;
    // Trailing blanks of a bare value are dropped; blanks inside it are kept.
    if (!is_blank(c))
      trailing_blanks_at_ = std::string::npos;
    else if (trailing_blanks_at_ == std::string::npos)
      trailing_blanks_at_ = value_.size();
    value_.push_back(c);
  }

  void drop_trailing_blanks() {
    if (trailing_blanks_at_ != std::string::npos)
      value_.resize(trailing_blanks_at_);
  }

  void finish() {
    switch (state_) {
      case state::before_key:
      case state::comment:
      case state::comment_escape:
        return;
      case state::key:
        fail(key_line_, "expected KEY=VALUE");
      case state::single_quoted:
      case state::double_quoted:
      case state::double_escape:
        fail(key_line_, std::string("unterminated ") +
                            (state_ == state::single_quoted ? "single" : "double") + " quote");
      case state::bare_value:
        drop_trailing_blanks();
        store();
        return;
      case state::before_value:
      case state::bare_escape:
        store();
        return;
    }
  }

  void check_key() {
    // Blanks between the key and `=` are not part of it.
    key_.resize(key_.find_last_not_of(" \t") + 1);
    if (key_.empty())
      fail(key_line_, "no key before '='");
    std::size_t valid = 0;
    while (valid < key_.size() && is_key_char(key_[valid], valid == 0))
      ++valid;
    // Only the valid start is shown: a line like `postgresql://user:secret@db?x=y` is no
    // setting, and its password must not reach the log.
    if (valid < key_.size()) {
      fail(key_line_, "invalid key '" + key_.substr(0, valid) +
                          "…' (letters, digits and _, not starting with a digit)");
    }
  }

  void store() {
    // systemd refuses a value that is not UTF-8 (the unit would not start); so does sluice.
    if (!is_valid_utf8(value_))
      fail(key_line_, "the value of " + key_ + " is not valid UTF-8");
    out_[key_] = value_;
    key_.clear();
    value_.clear();
    trailing_blanks_at_ = std::string::npos;
    state_ = state::before_key;
  }

  [[noreturn]] void fail(std::size_t line, const std::string& what) const {
    throw config_error(path_ + ":" + std::to_string(line) + ": " + what);
  }

  const std::string& path_;
  env_map& out_;
  state state_ = state::before_key;
  std::size_t line_ = 1;
  std::size_t key_line_ = 1;
  std::string key_;
  std::string value_;
  std::size_t trailing_blanks_at_ = std::string::npos;  // where the bare value's blanks begin
};

}  // namespace

env_map read_env_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw config_error("--config " + path + ": cannot open: " + std::strerror(errno));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad())
    throw config_error("--config " + path + ": read failed: " + std::strerror(errno));
  env_map out;
  env_file_reader(path, out).read(text);
  return out;
}

env_map process_environment() {
  env_map out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr)
      continue;
    out.emplace(std::string(*e, static_cast<std::size_t>(eq - *e)), std::string(eq + 1));
  }
  return out;
}

}  // namespace sluice::config
