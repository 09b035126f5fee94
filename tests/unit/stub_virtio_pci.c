/* For unit tests that link the virtio device model (virtio.c) without the PCI transport: virtio_pci_add is unavailable. */
#include <errno.h>
#include "virtio/virtio.h"

int virtio_pci_add(struct vm *vm, struct virtio_dev *d)
{
	virtio_dev_destroy(d); /* the transport contract: d is never left to the caller */
	return -ENOSYS;
}
