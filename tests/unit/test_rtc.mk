UNIT_TESTS += test_rtc
test_rtc_SRCS := src/core/memory.c src/core/bus.c tests/unit/stub_vm.c src/devices/rtc.c
