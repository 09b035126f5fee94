UNIT_TESTS += test_api_vmm
test_api_vmm_SRCS := src/api/api_route.c src/api/api_validate.c src/api/api_fault.c src/api/api_vmm.c src/api/api_json.c src/api/api_metrics.c src/api/api_server.c src/api/api_net.c src/net/mmds.c src/core/log.c
