/* A fake VM for device unit tests: implements the vm_* calls devices make, recording them. */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include "stub_vm.h"

/* The log lives in the stop_efd slot's neighbour: keep it off struct vm by a side table. */
struct stub_entry { struct vm *vm; struct stub_vm_log log; };
#define STUB_MAX_VMS 8
struct stub_table { struct stub_entry e[STUB_MAX_VMS]; };

static struct stub_table *stub_table(void)
{
	/* Test-only state: unit tests are single-threaded processes. */
	static struct stub_table t;
	return &t;
}

struct stub_vm_log *stub_vm_log(struct vm *vm)
{
	struct stub_table *t = stub_table();
	for (unsigned i = 0; i < STUB_MAX_VMS; i++)
		if (t->e[i].vm == vm)
			return &t->e[i].log;
	for (unsigned i = 0; i < STUB_MAX_VMS; i++)
		if (!t->e[i].vm) {
			t->e[i].vm = vm;
			memset(&t->e[i].log, 0, sizeof(t->e[i].log));
			return &t->e[i].log;
		}
	abort();
}

void stub_vm_init(struct vm *vm, uint64_t ram)
{
	memset(vm, 0, sizeof(*vm));
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = -1;
	vm->console_in_fd = -1;
	vm->console_out_fd = -1;
	vm->cfg.ncpus = vm->ncpus = 1;
	vm->cfg.mem_bytes = ram;
	bus_init(&vm->pio, "pio", 0xff);
	bus_init(&vm->mmio, "mmio", 0x00);
	pthread_mutex_init(&vm->lock, NULL);
	if (ram && mem_init(&vm->mem, ram, MEM_BACKING_MEMFD) != 0)
		abort();
	(void)stub_vm_log(vm);
}

void stub_vm_fini(struct vm *vm)
{
	struct stub_table *t = stub_table();
	/* Newest first, as vm_destroy() does: a device may depend on one registered before it (PCI bus). */
	for (unsigned i = vm->ndevices; i-- > 0;)
		if (vm->devices[i].destroy)
			vm->devices[i].destroy(vm->devices[i].state);
	vm->ndevices = 0;
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	if (vm->mem.base)
		mem_destroy(&vm->mem);
	for (unsigned i = 0; i < STUB_MAX_VMS; i++)
		if (t->e[i].vm == vm)
			t->e[i].vm = NULL;
}

void vm_set_irq(struct vm *vm, unsigned gsi, int level)
{
	struct stub_vm_log *l = stub_vm_log(vm);
	if (l->nirq < STUB_MAX_IRQ_EVENTS) {
		l->irq[l->nirq].gsi = gsi;
		l->irq[l->nirq].level = level;
	}
	l->nirq++;
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason)
{
	struct stub_vm_log *l = stub_vm_log(vm);
	l->nstop++;
	l->last_stop = reason;
}

int vm_add_device(struct vm *vm, const struct vm_device *dev)
{
	if (vm->ndevices >= VM_MAX_DEVICES)
		return -ENOSPC;
	vm->devices[vm->ndevices++] = *dev;
	return 0;
}

unsigned stub_vm_irq_pulses(struct vm *vm, unsigned gsi)
{
	struct stub_vm_log *l = stub_vm_log(vm);
	unsigned n = 0, logged = MIN(l->nirq, (unsigned)STUB_MAX_IRQ_EVENTS);

	for (unsigned i = 0; i + 1 < logged; i++)
		if (l->irq[i].gsi == gsi && l->irq[i].level && l->irq[i + 1].gsi == gsi && !l->irq[i + 1].level)
			n++;
	return n;
}
