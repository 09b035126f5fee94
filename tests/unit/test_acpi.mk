UNIT_TESTS += test_acpi
test_acpi_SRCS := src/core/memory.c src/core/bus.c src/core/log.c tests/unit/stub_vm.c src/arch/x86/acpi.c src/arch/x86/aml.c src/devices/acpi_pm.c src/devices/pvpanic.c
