/* Puts a virtio device on the transport the user chose (--virtio-transport): PCI by default, or MMIO. */
#include "virtio/virtio.h"
#include "core/vm.h"

int virtio_add(struct vm *vm, struct virtio_dev *d)
{
	return vm->cfg.virtio_transport == VIRTIO_TRANSPORT_MMIO ? virtio_mmio_add(vm, d) : virtio_pci_add(vm, d);
}
