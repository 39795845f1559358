#pragma once

#include <vector>

#include "sluice/config/settings.hpp"
#include "sluice/services/service.hpp"

namespace sluice::services {

// What services get for fields they leave out: TARGET_SVC_NAMESPACE, RPC_TIMEOUT_SEC,
// CONCURRENCY_PER_QUEUE, and the derived-URL rule's TARGET_SVC_SCHEME and TARGET_SVC_PORT.
service_defaults defaults_from_settings(const config::settings& settings);

// The services the environment defines (source env, the lowest layer), aliases of the service
// fields for the two systems sluice replaces:
//  - TARGET_SVC_NAME (the router/consumer pair): flavours TARGET_SVC_FLAVOURS (comma-separated,
//    the first is the default, each with the derived URL
//    TARGET_SVC_SCHEME://<service>-<flavour>.<namespace>[:TARGET_SVC_PORT]), namespace
//    TARGET_SVC_NAMESPACE, timeout RPC_TIMEOUT_SEC, concurrency CONCURRENCY_PER_QUEUE.
//  - SERVICE_NAME (the enqueuer/dequeuer pair): one flavour "default" whose url is
//    DOWNSTREAM_URL; timeout ENQUEUER_REPLY_TIMEOUT (else RPC_TIMEOUT_SEC); with BATCH_MODE,
//    batches of BATCH_SIZE requests or BATCH_MAX_WAIT_MS to BATCH_DOWNSTREAM_URL.
// Both may be set (two services, of different names). Throws config::config_error naming the
// variable for a combination that cannot work (SERVICE_NAME without DOWNSTREAM_URL, BATCH_MODE
// without BATCH_DOWNSTREAM_URL, a URL that is not http://host[:port][/path], a name outside the
// charset, DOWNSTREAM_URL or BATCH_MODE without SERVICE_NAME).
std::vector<service> services_from_settings(const config::settings& settings);

}  // namespace sluice::services
