UNIT_TESTS += test_virtqueue
test_virtqueue_SRCS := src/core/memory.c src/virtio/virtqueue.c
