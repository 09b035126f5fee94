/* virtio-pci transport (placeholder until the transport lands). */
#include <errno.h>
#include "virtio/virtio.h"

int virtio_pci_add(struct vm *vm, struct virtio_dev *d)
{
	return -ENOSYS;
}
