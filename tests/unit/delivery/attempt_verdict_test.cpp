#include "sluice/delivery/attempt_verdict.hpp"

#include <gtest/gtest.h>
