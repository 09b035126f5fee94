UNIT_TESTS += test_blk
test_blk_SRCS := src/virtio/blk.c src/virtio/blk_req.c src/virtio/virtio.c src/virtio/transport.c src/virtio/virtqueue.c \
	src/core/ioloop.c src/core/memory.c src/core/bus.c src/core/log.c tests/unit/stub_vm.c
