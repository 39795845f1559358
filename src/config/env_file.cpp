#include <cstring>
#include <fstream>
#include <sstream>

#include "sluice/config/loader.hpp"

extern char** environ;

namespace sluice::config {
namespace {

bool is_key_char(char c, bool first) {
  const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  return first ? alpha : alpha || (c >= '0' && c <= '9');
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos)
    return {};
  const auto end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

// Unquotes a value: quoted parts may be mixed with bare words as in systemd ("a"'b' → ab).
std::string unquote(const std::string& raw, const std::string& where) {
  std::string out;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '\'') {
      const auto close = raw.find('\'', i + 1);
      if (close == std::string::npos)
        throw config_error(where + ": unterminated single quote");
      out.append(raw, i + 1, close - i - 1);
      i = close;
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (; j < raw.size() && raw[j] != '"'; ++j) {
        if (raw[j] == '\\' && j + 1 < raw.size()) {
          const char e = raw[++j];
          out.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        } else {
          out.push_back(raw[j]);
        }
      }
      if (j >= raw.size())
        throw config_error(where + ": unterminated double quote");
      i = j;
    } else if (c == '\\' && i + 1 < raw.size()) {
      out.push_back(raw[++i]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

env_map read_env_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw config_error("--config " + path + ": cannot open: " + std::strerror(errno));
  env_map out;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::size_t first_line = line_no;
    // A trailing backslash joins the next line, as systemd does.
    while (!line.empty() && line.back() == '\\') {
      line.pop_back();
      std::string next;
      if (!std::getline(in, next))
        break;
      ++line_no;
      line += next;
    }
    const std::string text = trim(line);
    if (text.empty() || text[0] == '#' || text[0] == ';')
      continue;
    const std::string where = path + ":" + std::to_string(first_line);
    const auto eq = text.find('=');
    if (eq == std::string::npos)
      throw config_error(where + ": expected KEY=VALUE");
    const std::string key = trim(text.substr(0, eq));
    if (key.empty() || !is_key_char(key[0], true))
      throw config_error(where + ": invalid key '" + key + "'");
    for (char c : key) {
      if (!is_key_char(c, false))
        throw config_error(where + ": invalid key '" + key + "'");
    }
    out[key] = unquote(trim(text.substr(eq + 1)), where);
  }
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
