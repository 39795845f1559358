#include "sluice/delivery/circuit_breaker.hpp"

#include <gtest/gtest.h>
