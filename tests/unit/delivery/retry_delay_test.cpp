#include "sluice/delivery/retry_delay.hpp"

#include <gtest/gtest.h>
