#include "sluice/delivery/delivery_slots.hpp"

#include <gtest/gtest.h>
