#include "sluice/services/env_services.hpp"

#include <string>
#include <string_view>

#include "sluice/config/loader.hpp"
#include "sluice/services/service_json.hpp"
#include "sluice/services/target_url.hpp"

namespace sluice::services {
namespace {

[[noreturn]] void refuse(const std::string& message) {
  throw config::config_error(message);
}

void check_name(const char* variable, const std::string& value) {
  if (!valid_name(value))
    refuse(std::string(variable) + "=" + value +
           ": must be 1 to 100 bytes of letters, digits, '-' and '_'");
}

void check_namespace(const char* variable, const std::string& value) {
  if (!valid_namespace(value))
    refuse(std::string(variable) + "=" + value +
           ": must be 1 to 100 bytes of letters, digits, '-', '_' and '.'");
}

void check_url(const char* variable, const std::string& value) {
  std::string why;
  if (!parse_http_url(value, &why))
    refuse(std::string(variable) + "=" + value + ": " + why);
}

std::string trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
    v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  return std::string(v);
}

service base_service(const std::string& name, const service_defaults& defaults) {
  service s;
  s.name = name;
  s.namespace_ = defaults.namespace_;
  s.timeout = defaults.timeout;
  s.concurrency = defaults.concurrency;
  s.source = service_source::env;
  return s;
}

service target_svc(const config::settings& st, const service_defaults& defaults) {
  check_name("TARGET_SVC_NAME", st.target_svc_name);
  service s = base_service(st.target_svc_name, defaults);
  std::string_view rest = st.target_svc_flavours;
  while (true) {
    const auto comma = rest.find(',');
    const std::string name = trimmed(rest.substr(0, comma));
    if (!valid_name(name))
      refuse("TARGET_SVC_FLAVOURS=" + st.target_svc_flavours + ": flavour \"" + name +
             "\" must be 1 to 100 bytes of letters, digits, '-' and '_'");
    if (s.find_flavour(name))
      refuse("TARGET_SVC_FLAVOURS=" + st.target_svc_flavours + ": names flavour " + name +
             " twice");
    // No url: target_base_url derives it from the scheme, port and namespace.
    s.flavours.push_back(flavour{name, ""});
    if (comma == std::string_view::npos)
      break;
    rest.remove_prefix(comma + 1);
  }
  s.default_flavour = s.flavours.front().name;
  return s;
}

service enqueuer_svc(const config::settings& st, const service_defaults& defaults) {
  check_name("SERVICE_NAME", st.service_name);
  if (st.downstream_url.empty())
    refuse("SERVICE_NAME=" + st.service_name +
           " needs DOWNSTREAM_URL, the http:// URL its requests are sent to");
  check_url("DOWNSTREAM_URL", st.downstream_url);
  service s = base_service(st.service_name, defaults);
  s.flavours.push_back(flavour{"default", st.downstream_url});
  s.default_flavour = "default";
  if (st.enqueuer_reply_timeout)
    s.timeout = *st.enqueuer_reply_timeout;
  if (st.batch_mode) {
    if (st.batch_downstream_url.empty())
      refuse("BATCH_MODE is on but BATCH_DOWNSTREAM_URL is empty: the http:// URL batches of " +
             st.service_name + " are sent to");
    check_url("BATCH_DOWNSTREAM_URL", st.batch_downstream_url);
    batch_settings b;
    b.max_requests = st.batch_size;
    b.max_wait = st.batch_max_wait;
    b.url = st.batch_downstream_url;
    s.batch = std::move(b);
  }
  return s;
}

}  // namespace

service_defaults defaults_from_settings(const config::settings& st) {
  service_defaults d;
  d.namespace_ = st.target_svc_namespace;
  d.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(st.rpc_timeout);
  d.concurrency = st.concurrency_per_queue;
  d.scheme = st.target_svc_scheme;
  d.port = st.target_svc_port;
  return d;
}

std::vector<service> services_from_settings(const config::settings& st) {
  const service_defaults defaults = defaults_from_settings(st);
  if (!st.target_svc_name.empty() || !st.service_name.empty())
    check_namespace("TARGET_SVC_NAMESPACE", st.target_svc_namespace);
  if (st.service_name.empty()) {
    // Without SERVICE_NAME these would be ignored; most likely SERVICE_NAME is misspelt.
    if (!st.downstream_url.empty())
      refuse("DOWNSTREAM_URL is set but SERVICE_NAME is empty: name the service it belongs to");
    if (st.batch_mode)
      refuse("BATCH_MODE is on but SERVICE_NAME is empty: name the service it belongs to");
  }
  std::vector<service> out;
  if (!st.target_svc_name.empty())
    out.push_back(target_svc(st, defaults));
  if (!st.service_name.empty()) {
    if (st.service_name == st.target_svc_name)
      refuse("TARGET_SVC_NAME and SERVICE_NAME both define service " + st.service_name +
             ": use one of them, or different names");
    out.push_back(enqueuer_svc(st, defaults));
  }
  return out;
}

}  // namespace sluice::services
