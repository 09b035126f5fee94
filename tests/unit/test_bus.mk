UNIT_TESTS += test_bus
test_bus_SRCS := src/core/bus.c
