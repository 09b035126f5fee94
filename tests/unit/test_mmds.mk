UNIT_TESTS += test_mmds
test_mmds_SRCS := src/net/mmds.c
