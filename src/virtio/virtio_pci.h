/* virtio-pci modern transport: the guest-visible layout of kiln's virtio BAR and capabilities (virtio 1.2 §4.1). */
#ifndef KILN_VIRTIO_PCI_H
#define KILN_VIRTIO_PCI_H

#include "virtio/virtio.h"

/* §4.1.2: vendor 0x1af4, device 0x1040 + virtio device ID. */
#define VPCI_VENDOR_ID      0x1af4
#define VPCI_DEVICE_ID_BASE 0x1040

/* Capability cfg_type values (§4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

/* struct virtio_pci_cap is 16 bytes (§4.1.4); notify and pci_cfg add one dword each. */
#define VPCI_CAP_LEN  16
#define VPCI_CFG_DATA 16   /* offset of pci_cfg_data in the VIRTIO_PCI_CAP_PCI_CFG capability */

/*
 * One 32-bit memory BAR holds everything, each structure in its own 4 KiB
 * page (the MSI-X table and PBA must not share a page with other registers,
 * PCI 3.0 §6.8.2):
 *   0x0000 common configuration     0x3000 notifications (4 bytes per queue)
 *   0x1000 ISR status               0x4000 MSI-X table (16 bytes per vector)
 *   0x2000 device configuration     0x5000 MSI-X pending bit array
 */
#define VPCI_BAR             0
#define VPCI_BAR_SIZE        0x8000
#define VPCI_REGION_SIZE     0x1000
#define VPCI_COMMON_OFF      0x0000
#define VPCI_ISR_OFF         0x1000
#define VPCI_ISR_LEN         1
#define VPCI_DEVICE_OFF      0x2000
#define VPCI_NOTIFY_OFF      0x3000
#define VPCI_NOTIFY_MULT     4       /* notify_off_multiplier: queue q notifies at +q*4 (queue_notify_off = q) */
#define VPCI_NOTIFY_IOEV_LEN 0       /* notify ioeventfds match any write width (KVM fast MMIO) */
#define VPCI_MSIX_TABLE_OFF  0x4000
#define VPCI_MSIX_PBA_OFF    0x5000
#define VPCI_MAX_VECTORS     (VIRTIO_MAX_QUEUES + 1)  /* config change + one per queue */

/*
 * struct virtio_pci_common_cfg (§4.1.4.3). kiln offers neither
 * VIRTIO_F_NOTIF_CONFIG_DATA nor VIRTIO_F_RING_RESET, so the structure ends
 * before queue_notif_config_data / queue_reset.
 */
#define VPCI_COMMON_DFSELECT      0x00
#define VPCI_COMMON_DF            0x04
#define VPCI_COMMON_GFSELECT      0x08
#define VPCI_COMMON_GF            0x0c
#define VPCI_COMMON_MSIX          0x10
#define VPCI_COMMON_NUMQ          0x12
#define VPCI_COMMON_STATUS        0x14
#define VPCI_COMMON_CFGGENERATION 0x15
#define VPCI_COMMON_Q_SELECT      0x16
#define VPCI_COMMON_Q_SIZE        0x18
#define VPCI_COMMON_Q_MSIX        0x1a
#define VPCI_COMMON_Q_ENABLE      0x1c
#define VPCI_COMMON_Q_NOFF        0x1e
#define VPCI_COMMON_Q_DESCLO      0x20
#define VPCI_COMMON_Q_DESCHI      0x24
#define VPCI_COMMON_Q_AVAILLO     0x28
#define VPCI_COMMON_Q_AVAILHI     0x2c
#define VPCI_COMMON_Q_USEDLO      0x30
#define VPCI_COMMON_Q_USEDHI      0x34
#define VPCI_COMMON_LEN           0x38

/* MSI-X Message Control bits and the Vector Control mask bit (PCI 3.0 §6.8.2.3, §6.8.2.9). */
#define VPCI_MSIX_ENABLE       0x8000
#define VPCI_MSIX_FMASK        0x4000
#define VPCI_MSIX_ENTRY_MASKED 0x1

#endif
