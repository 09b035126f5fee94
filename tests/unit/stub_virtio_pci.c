/* For unit tests that link the virtio device model (virtio.c) without the PCI transport: virtio_pci_add is unavailable. */
#include <errno.h>
#include "virtio/virtio.h"

int virtio_pci_add(struct vm *vm, struct virtio_dev *d)
{
	return -ENOSYS; /* the transport contract: on failure the caller still owns d */
}
