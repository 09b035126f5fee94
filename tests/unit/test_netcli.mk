UNIT_TESTS += test_netcli
test_netcli_SRCS := src/cli/options.c src/core/console.c src/core/kvm.c src/core/memory.c src/core/loader_cmdline.c
