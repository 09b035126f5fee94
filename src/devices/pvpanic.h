/* pvpanic: the guest reports a kernel panic through one I/O port (QEMU's pvpanic ISA interface). */
#ifndef KILN_DEVICES_PVPANIC_H
#define KILN_DEVICES_PVPANIC_H

struct vm;

/* Events the device reports as supported when the port is read. */
#define PVPANIC_PANICKED      (1u << 0)
#define PVPANIC_CRASH_LOADED  (1u << 1)

/* Register X86_PVPANIC_PORT on vm->pio and hand the device to the VM; 0 or -errno. */
int pvpanic_init(struct vm *vm);

#endif
