UNIT_TESTS += test_boot
test_boot_SRCS := src/core/memory.c src/arch/x86/boot.c src/arch/x86/boot_linux.c src/arch/x86/boot_pvh.c
