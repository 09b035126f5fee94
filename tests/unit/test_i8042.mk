UNIT_TESTS += test_i8042
test_i8042_SRCS := src/core/memory.c src/core/bus.c tests/unit/stub_vm.c src/devices/i8042.c
