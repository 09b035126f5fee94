UNIT_TESTS += test_vcon
test_vcon_SRCS := src/core/memory.c src/core/bus.c src/core/ioloop.c src/core/irq.c src/core/kvm.c \
	src/core/log.c src/virtio/virtio.c src/virtio/virtqueue.c src/virtio/virtio_mmio.c src/virtio/console.c \
	src/virtio/transport.c tests/unit/stub_vm.c tests/unit/stub_virtio_pci.c
