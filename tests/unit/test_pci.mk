UNIT_TESTS += test_pci
test_pci_SRCS := src/core/memory.c src/core/bus.c src/core/log.c tests/unit/stub_vm.c src/devices/pci.c
