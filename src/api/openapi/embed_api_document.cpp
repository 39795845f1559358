// Build-time tool: reads the API document (YAML), converts it to JSON, and writes a C++ source
// that holds both texts and the docs page, so the binary serves them with no file and no
// network. A document that is not valid YAML, or that JSON cannot represent (a repeated key,
// a key that is not a scalar), fails the build here instead of at start-up.
//
//   sluice_embed_api_document OUT.cpp openapi.yaml docs.html docs.js

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string where(const YAML::Node& node) {
  const auto mark = node.Mark();
  return "line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1);
}

// YAML 1.2 core schema for plain (unquoted) scalars; quoted and block scalars are strings.
nlohmann::ordered_json scalar_of(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() != "?")
    return text;
  static const std::regex null_re("^(~|null|Null|NULL|)$");
  static const std::regex true_re("^(true|True|TRUE)$");
  static const std::regex false_re("^(false|False|FALSE)$");
  static const std::regex int_re("^[-+]?[0-9]+$");
  static const std::regex float_re(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  static const std::regex special_re(R"(^([-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$)");
  if (std::regex_match(text, null_re))
    return nullptr;
  if (std::regex_match(text, true_re))
    return true;
  if (std::regex_match(text, false_re))
    return false;
  if (std::regex_match(text, int_re))
    return nlohmann::ordered_json::parse(text[0] == '+' ? text.substr(1) : text);
  if (std::regex_match(text, float_re))
    return std::stod(text);
  if (std::regex_match(text, special_re))
    throw std::runtime_error("JSON has no " + text + " (" + where(node) + ")");
  return text;
}

nlohmann::ordered_json json_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_of(node);
    case YAML::NodeType::Sequence: {
      auto out = nlohmann::ordered_json::array();
      for (const auto& item : node)
        out.push_back(json_of(item));
      return out;
    }
    case YAML::NodeType::Map: {
      auto out = nlohmann::ordered_json::object();
      for (const auto& entry : node) {
        if (!entry.first.IsScalar())
          throw std::runtime_error("a key that is not a scalar (" + where(entry.first) + ")");
        const std::string& key = entry.first.Scalar();
        if (out.contains(key))
          throw std::runtime_error("key '" + key + "' repeated (" + where(entry.first) + ")");
        out[key] = json_of(entry.second);
      }
      return out;
    }
    case YAML::NodeType::Undefined:
      break;
  }
  throw std::runtime_error("undefined node (" + where(node) + ")");
}

// A raw string literal whose delimiter the text does not contain.
std::string literal_of(const std::string& text, const std::string& what) {
  const std::string delimiter = "sluice_embed";
  if (text.find(")" + delimiter + "\"") != std::string::npos)
    throw std::runtime_error(what + " contains the raw string delimiter");
  return "R\"" + delimiter + "(" + text + ")" + delimiter + "\"";
}

void write_function(std::ostream& out, const std::string& name, const std::string& text,
                    const std::string& what) {
  out << "std::string_view " << name << "() noexcept {\n"
      << "  static constexpr char text[] = " << literal_of(text, what) << ";\n"
      << "  return {text, sizeof text - 1};\n"
      << "}\n\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: " << argv[0] << " OUT.cpp openapi.yaml docs.html docs.js\n";
    return 2;
  }
  try {
    const std::string yaml_text = read_file(argv[2]);
    const auto document = json_of(YAML::Load(yaml_text));
    if (!document.is_object() || !document.contains("openapi") || !document.contains("paths"))
      throw std::runtime_error("not an OpenAPI document (no openapi or paths at the top)");
    std::ostringstream out;
    out << "// Generated at build time by embed_api_document.cpp from src/api/openapi/; do not "
           "edit.\n"
        << "#include \"sluice/api/api_document.hpp\"\n\n"
        << "namespace sluice::api {\n\n";
    write_function(out, "api_document_yaml", yaml_text, argv[2]);
    write_function(out, "api_document_json", document.dump(), argv[2]);
    write_function(out, "docs_page_html", read_file(argv[3]), argv[3]);
    write_function(out, "docs_page_script", read_file(argv[4]), argv[4]);
    out << "}  // namespace sluice::api\n";
    std::ofstream file(argv[1], std::ios::binary | std::ios::trunc);
    file << out.str();
    if (!file)
      throw std::runtime_error(std::string("cannot write ") + argv[1]);
  } catch (const std::exception& e) {
    std::cerr << argv[2] << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
