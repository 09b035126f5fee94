UNIT_TESTS += test_net
test_net_SRCS := src/core/memory.c src/core/bus.c src/core/log.c src/core/ioloop.c src/virtio/virtqueue.c src/virtio/virtio.c src/virtio/net.c src/net/frame.c tests/unit/stub_vm.c
