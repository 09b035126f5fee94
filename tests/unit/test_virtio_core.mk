UNIT_TESTS += test_virtio_core
test_virtio_core_SRCS := src/core/memory.c src/core/bus.c src/core/log.c src/core/ioloop.c src/virtio/virtqueue.c src/virtio/virtio.c tests/unit/stub_vm.c
