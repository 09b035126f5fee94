UNIT_TESTS += test_blk_req
test_blk_req_SRCS := src/virtio/blk_req.c
