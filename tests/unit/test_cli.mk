UNIT_TESTS += test_cli
test_cli_SRCS := src/cli/options.c src/core/console.c src/core/kvm.c src/core/memory.c src/core/loader_cmdline.c
