/* struct vm lifecycle: KVM VM and irqchip, guest RAM slots, devices, vCPUs, boot, run and stop. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include "core/vm.h"
#include "core/vcpu.h"
#include "core/kvm.h"
#include "core/log.h"
#include "arch/x86/layout.h"
#include "arch/x86/cpu.h"
#include "compat/pvm.h"
#include "devices/uart.h"
#include "virtio/console.h"

/* Bounds of the device registry the linker builds from DEVICE_REGISTER(). */
extern const struct device_desc __start_kiln_devices[];
extern const struct device_desc __stop_kiln_devices[];

int vm_exit_code(enum vm_stop_reason reason)
{
	switch (reason) {
	case VM_STOP_POWEROFF:
	case VM_STOP_USER:
		return KILN_EXIT_POWEROFF;
	case VM_STOP_RESET:
		return KILN_EXIT_RESET;
	case VM_STOP_TRIPLE_FAULT:
		return KILN_EXIT_TRIPLE_FAULT;
	case VM_STOP_PANIC:
		return KILN_EXIT_PANIC;
	case VM_RUNNING:
	case VM_STOP_ERROR:
	case VM_STOP_SIGNAL:
	default:
		return KILN_EXIT_ERROR;
	}
}

const char *vm_stop_reason_str(enum vm_stop_reason reason)
{
	switch (reason) {
	case VM_RUNNING: return "running";
	case VM_STOP_POWEROFF: return "guest powered off";
	case VM_STOP_RESET: return "guest reset";
	case VM_STOP_TRIPLE_FAULT: return "guest triple fault";
	case VM_STOP_PANIC: return "guest panic";
	case VM_STOP_ERROR: return "VMM error";
	case VM_STOP_USER: return "quit from the console";
	case VM_STOP_SIGNAL: return "signal";
	}
	return "?";
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;

	if (!atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)reason))
		return; /* the first reason wins */
	if (vm->stop_efd >= 0 && write(vm->stop_efd, &one, sizeof(one)) < 0)
		log_warn("stop eventfd: %s", strerror(errno));
	for (unsigned i = 0; i < vm->ncpus && vm->vcpus; i++)
		if (vm->vcpus[i].run)
			vcpu_kick(&vm->vcpus[i]);
	vm_pause_wake(vm); /* parked vCPUs must see the stop too */
}

void vm_set_irq(struct vm *vm, unsigned gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level ? 1 : 0 };

	if (kvm_ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn("KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

int vm_add_device(struct vm *vm, const struct vm_device *dev)
{
	if (vm->ndevices >= VM_MAX_DEVICES)
		return -ENOSPC;
	vm->devices[vm->ndevices++] = *dev;
	return 0;
}

static int setup_memory(struct vm *vm)
{
	int ret = mem_init(&vm->mem, vm->cfg.mem_bytes, vm->cfg.backing);

	if (ret) {
		log_err("cannot allocate %llu MiB of guest RAM (%s backing): %s%s",
			(unsigned long long)(vm->cfg.mem_bytes / MiB),
			vm->cfg.backing == MEM_BACKING_HUGETLB ? "hugetlb" : vm->cfg.backing == MEM_BACKING_THP ? "thp" : "memfd",
			strerror(-ret),
			vm->cfg.backing == MEM_BACKING_HUGETLB ? " (reserve pages: echo N > /proc/sys/vm/nr_hugepages)" : "");
		return ret;
	}
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = vm->mem.regions[i].gpa,
			.memory_size = vm->mem.regions[i].size,
			.userspace_addr = (uintptr_t)vm->mem.regions[i].host,
		};
		ret = kvm_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
		if (ret < 0) {
			log_err("KVM_SET_USER_MEMORY_REGION slot %u: %s", i, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int setup_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = 0 };
	uint64_t identity = X86_KVM_IDENTITY_MAP;
	int ret;

	/* VMX needs a TSS and an identity-map page for real-mode emulation (api.rst KVM_SET_TSS_ADDR). */
	ret = kvm_ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity);
	if (ret < 0 && ret != -EINVAL && ret != -ENOTTY)
		log_warn("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(-ret));
	ret = kvm_ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)X86_KVM_TSS);
	if (ret < 0 && ret != -ENOTTY)
		log_warn("KVM_SET_TSS_ADDR: %s", strerror(-ret));
	/* In-kernel LAPICs, IOAPIC and 8259s: interrupts never cost a trip to user space. */
	ret = kvm_ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, NULL);
	if (ret < 0) {
		log_err("KVM_CREATE_IRQCHIP: %s", strerror(-ret));
		return ret;
	}
	ret = kvm_ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit);
	if (ret < 0) {
		log_err("KVM_CREATE_PIT2: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

static int setup_devices(struct vm *vm)
{
	for (const struct device_desc *d = __start_kiln_devices; d < __stop_kiln_devices; d++) {
		int ret = d->init(vm);
		if (ret < 0) {
			log_err("device %s: %s", d->name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int setup_vcpus(struct vm *vm)
{
	struct kvm_cpuid2 *supported, *c;
	size_t sz;
	int ret = 0;

	supported = kvm_supported_cpuid(vm->kvm_fd);
	if (!supported) {
		log_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		return -errno;
	}
	sz = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	c = malloc(sz);
	vm->vcpus = calloc(vm->ncpus, sizeof(*vm->vcpus));
	if (!c || !vm->vcpus) {
		ret = -ENOMEM;
		goto out;
	}
	if (vm->compat)
		pvm_mask_cpuid(supported);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vm->vcpus[i].fd = -1;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		ret = vcpu_create(vm, &vm->vcpus[i], i);
		if (ret < 0) {
			log_err("KVM_CREATE_VCPU %u: %s", i, strerror(-ret));
			goto out;
		}
		memcpy(c, supported, sz);
		x86_cpuid_patch(c, i, vm->ncpus);
		ret = x86_vcpu_init(vm->vcpus[i].fd, c);
		if (ret < 0) {
			log_err("vcpu%u: initial state: %s", i, strerror(-ret));
			goto out;
		}
	}
out:
	free(c);
	free(supported);
	return ret;
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	char msg[256];
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->ncpus = cfg->ncpus;
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = vm->signal_fd = -1;
	vm->mem.fd = -1;
	vm->console_in_fd = vm->console_out_fd = -1;
	atomic_init(&vm->stop_reason, VM_RUNNING);
	pthread_mutex_init(&vm->lock, NULL);
	vm_pause_init(vm);
	bus_init(&vm->pio, "pio", 0xff);
	bus_init(&vm->mmio, "mmio", 0x00);
	ret = ioloop_init(&vm->io);
	if (ret < 0) {
		log_err("I/O thread setup: %s", strerror(-ret));
		return KILN_EXIT_SETUP;
	}
	/* Before any device: virtio_dev_init registers a poller only when polling is on. */
	ioloop_set_poll_us(&vm->io, cfg->io_poll_us);

	vm->kvm_fd = kvm_open("/dev/kvm", msg, sizeof(msg));
	if (vm->kvm_fd < 0) {
		log_err("%s", msg);
		return KILN_EXIT_SETUP;
	}
	if (kvm_cap(vm->kvm_fd, KVM_CAP_IRQCHIP) <= 0 || kvm_cap(vm->kvm_fd, KVM_CAP_USER_MEMORY) <= 0 ||
	    kvm_cap(vm->kvm_fd, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		log_err("/dev/kvm lacks a capability kiln needs (IRQCHIP, USER_MEMORY, IMMEDIATE_EXIT): use Linux 4.11 or later");
		return KILN_EXIT_SETUP;
	}
	vm->max_vcpus = kvm_cap(vm->kvm_fd, KVM_CAP_MAX_VCPUS);
	if (vm->max_vcpus <= 0)
		vm->max_vcpus = kvm_cap(vm->kvm_fd, KVM_CAP_NR_VCPUS);
	if (vm->max_vcpus <= 0)
		vm->max_vcpus = 4;
	if (cfg->ncpus > (unsigned)vm->max_vcpus) {
		log_err("--cpus %u is above this host's KVM maximum of %d", cfg->ncpus, vm->max_vcpus);
		return KILN_EXIT_USAGE;
	}
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
		log_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return KILN_EXIT_SETUP;
	}
	vm->is_pvm = pvm_detect();
	vm->vm_fd = kvm_ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		log_err("KVM_CREATE_VM: %s", strerror(-vm->vm_fd));
		return KILN_EXIT_SETUP;
	}
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0) {
		log_err("eventfd: %s", strerror(errno));
		return KILN_EXIT_SETUP;
	}
	if (setup_memory(vm) < 0 || setup_irqchip(vm) < 0)
		return KILN_EXIT_SETUP;
	ret = irq_routing_init(&vm->irqr, vm->vm_fd);
	if (ret < 0) {
		log_err("/dev/kvm lacks KVM_CAP_IRQ_ROUTING (needed for MSI-X): %s", strerror(-ret));
		return KILN_EXIT_SETUP;
	}
	if (cfg->compat > 0 || (cfg->compat < 0 && vm->is_pvm)) {
		ret = pvm_compat_create(vm, &vm->compat);
		if (ret < 0) {
			log_err("kvm_pvm compatibility layer: %s", strerror(-ret));
			return KILN_EXIT_SETUP;
		}
		ret = pvm_vm_setup(vm->compat);
		if (ret < 0) {
			log_err("kvm_pvm compatibility layer setup: %s", strerror(-ret));
			return KILN_EXIT_SETUP;
		}
		log_info("host is kvm_pvm: compatibility layer on (docs/compat-pvm.md)");
	}
	if (cfg->console == CONSOLE_FILE) {
		vm->console_out_fd = open(cfg->console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (vm->console_out_fd < 0) {
			log_err("--console file:%s: %s", cfg->console_path, strerror(errno));
			return KILN_EXIT_USAGE;
		}
	} else if (cfg->console == CONSOLE_STDIO) {
		vm->console_out_fd = STDOUT_FILENO;
		vm->console_in_fd = STDIN_FILENO;
	}
	if (setup_devices(vm) < 0 || setup_vcpus(vm) < 0)
		return KILN_EXIT_SETUP;
	return 0;
}

void vm_destroy(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus && vm->vcpus; i++) {
		vcpu_join(&vm->vcpus[i]);
		if (vm->vcpus[i].fd >= 0)
			vcpu_destroy(&vm->vcpus[i]);
	}
	free(vm->vcpus);
	vm->vcpus = NULL;
	/* Device work stops before devices go: no handler runs on freed state. */
	ioloop_stop(&vm->io);
	for (unsigned i = vm->ndevices; i-- > 0;)
		if (vm->devices[i].destroy)
			vm->devices[i].destroy(vm->devices[i].state);
	vm->ndevices = 0;
	if (vm->compat)
		pvm_compat_destroy(vm->compat);
	vm->compat = NULL;
	ioloop_destroy(&vm->io);
	if (vm->vm_fd >= 0)
		irq_routing_destroy(&vm->irqr);
	bus_destroy(&vm->pio);
	bus_destroy(&vm->mmio);
	mem_destroy(&vm->mem);
	if (vm->console_raw)
		console_raw_leave(vm->console_in_fd, &vm->console_saved);
	vm->console_raw = false;
	if (vm->console_out_fd > STDERR_FILENO)
		close(vm->console_out_fd);
	if (vm->signal_fd >= 0)
		close(vm->signal_fd);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->signal_fd = vm->stop_efd = vm->vm_fd = vm->kvm_fd = -1;
	pthread_cond_destroy(&vm->pause_cv);
	pthread_mutex_destroy(&vm->lock);
}

/* The device typed bytes go to: virtio-console (hvc0) when chosen, else the UART; false if neither exists. */
static bool console_sink(struct vm *vm)
{
	return vm->cfg.console_dev == CONSOLE_DEV_VIRTIO ? vm->vcon != NULL : vm->uart != NULL;
}

/* Hand pending typed bytes to the console device as far as it has room. */
static void console_flush(struct vm *vm)
{
	bool vcon = vm->cfg.console_dev == CONSOLE_DEV_VIRTIO;
	size_t n;

	if (!console_sink(vm))
		return;
	n = MIN(vm->console_npending, vcon ? vcon_rx_space(vm->vcon) : uart_rx_space(vm->uart));
	if (n == 0)
		return;
	if (vcon)
		vcon_receive(vm->vcon, vm->console_pending, n);
	else
		uart_receive(vm->uart, vm->console_pending, n);
	memmove(vm->console_pending, vm->console_pending + n, vm->console_npending - n);
	vm->console_npending -= n;
}

/*
 * Console input. The terminal is always read, even while the guest does not
 * drain its UART, so that Ctrl-A x works on any guest; bytes beyond the
 * bounded pending buffer are dropped and counted.
 */
static void console_input(struct vm *vm)
{
	uint8_t in[256], out[256];
	bool quit = false;
	ssize_t n;
	size_t m, room, take;

	n = read(vm->console_in_fd, in, sizeof(in));
	if (n == 0) {
		vm->console_in_fd = -1; /* EOF: stop polling stdin, keep running */
		return;
	}
	if (n < 0)
		return;
	m = console_filter(&vm->console_esc, in, (size_t)n, out, &quit);
	room = sizeof(vm->console_pending) - vm->console_npending;
	take = MIN(m, room);
	memcpy(vm->console_pending + vm->console_npending, out, take);
	vm->console_npending += take;
	vm->console_dropped += m - take;
	if (quit)
		vm_request_stop(vm, VM_STOP_USER);
	console_flush(vm);
}

static void handle_signal(struct vm *vm)
{
	struct signalfd_siginfo si;

	if (read(vm->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		vm->stop_signal = (int)si.ssi_signo;
		vm_request_stop(vm, VM_STOP_SIGNAL);
	}
}

int vm_run(struct vm *vm)
{
	sigset_t set;
	int reason, code;

	/* SIGINT/SIGTERM/SIGHUP arrive on a signalfd in the main loop, so the terminal is always restored. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1); /* vCPU threads unblock their kick signal themselves */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIGUSR1);
	vm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);

	if (vm->console_in_fd >= 0 && console_raw_enter(vm->console_in_fd, &vm->console_saved) == 0)
		vm->console_raw = true;

	if (ioloop_start(&vm->io) < 0) {
		log_err("cannot start the I/O thread");
		vm_request_stop(vm, VM_STOP_ERROR);
	}

	for (unsigned i = 0; i < vm->ncpus; i++) {
		int ret = vcpu_start(&vm->vcpus[i]);
		if (ret < 0) {
			log_err("cannot start vcpu%u thread: %s", i, strerror(-ret));
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
	}

	while (atomic_load(&vm->stop_reason) == VM_RUNNING) {
		struct pollfd p[3] = {
			{ .fd = vm->stop_efd, .events = POLLIN },
			{ .fd = vm->signal_fd, .events = POLLIN },
			{ .fd = vm->console_in_fd, .events = POLLIN },
		};
		nfds_t n = (vm->console_in_fd >= 0 && console_sink(vm)) ? 3 : 2;
		/* While typed bytes wait for room in the console device, look again every 20 ms. */
		int r = poll(p, n, vm->console_npending ? 20 : -1);

		if (r < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			vm_request_stop(vm, VM_STOP_ERROR);
			break;
		}
		if (r > 0 && (p[1].revents & POLLIN))
			handle_signal(vm);
		if (r > 0 && n == 3 && (p[2].revents & (POLLIN | POLLHUP)))
			console_input(vm);
		if (vm->console_npending)
			console_flush(vm);
	}

	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_join(&vm->vcpus[i]);
	ioloop_stop(&vm->io);
	if (vm->console_raw) {
		console_raw_leave(vm->console_in_fd >= 0 ? vm->console_in_fd : STDIN_FILENO, &vm->console_saved);
		vm->console_raw = false;
	}

	reason = atomic_load(&vm->stop_reason);
	code = vm_exit_code((enum vm_stop_reason)reason);
	if (reason == VM_STOP_SIGNAL)
		code = 128 + vm->stop_signal;
	if (reason != VM_STOP_POWEROFF)
		log_msg(reason == VM_STOP_ERROR ? LOG_ERROR : LOG_WARN, "stopped: %s (exit code %d)",
			vm_stop_reason_str((enum vm_stop_reason)reason), code);
	if (vm->cfg.stats) {
		for (unsigned i = 0; i < vm->ncpus; i++)
			vcpu_print_stats(&vm->vcpus[i], STDERR_FILENO);
		dprintf(STDERR_FILENO, "bus: pio unclaimed reads=%llu writes=%llu; mmio unclaimed reads=%llu writes=%llu\n",
			(unsigned long long)atomic_load(&vm->pio.unclaimed_reads),
			(unsigned long long)atomic_load(&vm->pio.unclaimed_writes),
			(unsigned long long)atomic_load(&vm->mmio.unclaimed_reads),
			(unsigned long long)atomic_load(&vm->mmio.unclaimed_writes));
		if (vm->console_dropped)
			dprintf(STDERR_FILENO, "console: %llu typed bytes dropped (the guest did not read its console)\n",
				(unsigned long long)vm->console_dropped);
		ioloop_print_stats(&vm->io, STDERR_FILENO);
		for (unsigned i = 0; i < vm->ndevices; i++)
			if (vm->devices[i].print_stats)
				vm->devices[i].print_stats(vm->devices[i].state, STDERR_FILENO);
	}
	return code;
}
