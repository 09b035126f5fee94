UNIT_TESTS += test_boot_pvh
test_boot_pvh_SRCS := src/core/memory.c src/arch/x86/boot.c src/arch/x86/boot_linux.c src/arch/x86/boot_pvh.c
