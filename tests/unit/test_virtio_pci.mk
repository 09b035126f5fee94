UNIT_TESTS += test_virtio_pci
test_virtio_pci_SRCS := src/core/memory.c src/core/bus.c src/core/log.c src/core/ioloop.c src/core/irq.c tests/unit/stub_vm.c tests/unit/stub_kvm.c src/devices/pci.c src/virtio/virtio.c src/virtio/virtqueue.c src/virtio/virtio_pci.c src/virtio/virtio_mmio.c src/virtio/transport.c src/virtio/rng.c
