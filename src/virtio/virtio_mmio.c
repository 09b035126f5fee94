/* virtio-mmio transport (placeholder until the transport lands). */
#include <errno.h>
#include "virtio/virtio.h"

int virtio_mmio_add(struct vm *vm, struct virtio_dev *d)
{
	return -ENOSYS;
}
