#pragma once

#include <vector>

#include "sluice/services/service.hpp"
#include "sluice/services/service_registry.hpp"

namespace sluice::services {

// Makes the registry's `source` layer hold exactly `defined`, touching only what differs:
// service_registry::replace_source re-creates every snapshot and so tells every change
// listener about every service, which a periodic full reload or a re-read file that changed
// one entry must not do (listeners such as the workers' consumers would churn). Returns the
// number of services put or removed.
std::size_t sync_layer(service_registry& registry, service_source source,
                       std::vector<service> defined);

// Puts `s` into its layer unless that layer already holds an equal definition; true when it
// changed something.
bool put_if_changed(service_registry& registry, service s);

}  // namespace sluice::services
