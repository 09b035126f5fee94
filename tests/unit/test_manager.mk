UNIT_TESTS += test_manager
test_manager_SRCS := src/api/api_fault.c src/manager/mgr_model.c src/manager/mgr_state.c src/manager/mgr_args.c src/cli/options.c src/core/memory.c
