UNIT_TESTS += test_pause
test_pause_SRCS := src/core/pause.c
