UNIT_TESTS += test_cli_api
test_cli_api_SRCS := src/cli/options.c src/core/memory.c
