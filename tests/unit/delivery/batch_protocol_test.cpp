#include "sluice/delivery/batch_protocol.hpp"

#include <gtest/gtest.h>
