UNIT_TESTS += test_pvm
test_pvm_SRCS := src/core/memory.c src/compat/pvm_decode.c src/compat/pvm_walk.c src/compat/pvm_emulate.c src/compat/pvm_emulate_seg.c src/compat/pvm_trap.c src/compat/pvm_symbols.c src/compat/pvm_host.c src/compat/pvm_kvm.c tests/unit/pvm_test_decode.c tests/unit/pvm_test_walk.c tests/unit/pvm_test_emul.c tests/unit/pvm_test_trap.c tests/unit/pvm_test_glue.c
