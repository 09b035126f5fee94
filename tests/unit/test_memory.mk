UNIT_TESTS += test_memory
test_memory_SRCS := src/core/memory.c
