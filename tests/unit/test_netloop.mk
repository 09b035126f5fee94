UNIT_TESTS += test_netloop
test_netloop_SRCS := src/net/netloop.c src/core/ioloop.c src/core/log.c
