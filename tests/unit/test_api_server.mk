UNIT_TESTS += test_api_server
test_api_server_SRCS := src/api/api_server.c src/api/api_fault.c src/cli/ctl.c src/core/log.c
