UNIT_TESTS += test_cpu
test_cpu_SRCS := src/arch/x86/cpu.c src/core/kvm.c
