UNIT_TESTS += test_uart
test_uart_SRCS := src/core/memory.c src/core/bus.c tests/unit/stub_vm.c src/devices/uart.c
