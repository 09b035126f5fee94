UNIT_TESTS += test_api
test_api_SRCS := src/api/api_route.c src/api/api_validate.c src/api/api_fault.c
