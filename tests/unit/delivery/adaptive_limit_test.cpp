#include "sluice/delivery/adaptive_limit.hpp"

#include <gtest/gtest.h>
