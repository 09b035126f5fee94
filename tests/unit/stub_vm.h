/* A fake VM for device unit tests: records IRQ edges and stop requests, no /dev/kvm (vm_fd is -1, so KVM ioctls fail with EBADF). */
#ifndef KILN_STUB_VM_H
#define KILN_STUB_VM_H

#include "core/vm.h"

#define STUB_MAX_IRQ_EVENTS 256
struct stub_vm_log {
	unsigned nirq;
	struct { unsigned gsi; int level; } irq[STUB_MAX_IRQ_EVENTS];
	unsigned nstop;
	enum vm_stop_reason last_stop;
};

/* Make a struct vm usable by devices: buses, fake RAM of `ram` bytes (may be 0), config defaults. */
void stub_vm_init(struct vm *vm, uint64_t ram);
void stub_vm_fini(struct vm *vm);
/* The log of calls the devices made on vm. */
struct stub_vm_log *stub_vm_log(struct vm *vm);
/* Edges on gsi so far: a level-1 call followed by a level-0 call (a pulse, as an edge-triggered device sends). */
unsigned stub_vm_irq_pulses(struct vm *vm, unsigned gsi);

#endif
