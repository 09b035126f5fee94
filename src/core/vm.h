/* struct vm: everything one virtual machine owns, and the calls devices make on it. */
#ifndef KILN_VM_H
#define KILN_VM_H

#include <pthread.h>
#include <termios.h>
#include <stdatomic.h>
#include "core/types.h"
#include "core/memory.h"
#include "core/bus.h"
#include "core/console.h"
#include "core/ioloop.h"
#include "core/irq.h"
#include "net/net_config.h"

struct mmds;

/*
 * kiln's process exit codes (documented in README.md and --help).
 */
enum kiln_exit {
	KILN_EXIT_POWEROFF = 0,      /* guest powered off (ACPI S5) */
	KILN_EXIT_ERROR = 1,         /* VMM stopped the guest: unhandled exit or emulation failure */
	KILN_EXIT_USAGE = 2,         /* bad command line or input file */
	KILN_EXIT_SETUP = 3,         /* host setup failed: /dev/kvm, memory, KVM ioctls */
	KILN_EXIT_RESET = 4,         /* guest asked for a reset (i8042, ACPI reset register) */
	KILN_EXIT_TRIPLE_FAULT = 5,  /* KVM_EXIT_SHUTDOWN: triple fault */
	KILN_EXIT_PANIC = 6,         /* guest reported a panic through pvpanic */
};

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,
	VM_STOP_RESET,
	VM_STOP_TRIPLE_FAULT,
	VM_STOP_PANIC,
	VM_STOP_ERROR,
	VM_STOP_USER,     /* Ctrl-A x on the console */
	VM_STOP_SIGNAL,   /* SIGINT/SIGTERM/SIGHUP to kiln */
};

enum console_kind { CONSOLE_STDIO, CONSOLE_FILE, CONSOLE_NONE };
/* Which device the console backend feeds: the 16550A on COM1 (ttyS0) or virtio-console (hvc0). */
enum console_device { CONSOLE_DEV_SERIAL, CONSOLE_DEV_VIRTIO };
enum virtio_transport_kind { VIRTIO_TRANSPORT_PCI, VIRTIO_TRANSPORT_MMIO };

/* One --disk. */
#define VM_MAX_DISKS 16
struct disk_config {
	const char *path;
	bool readonly;
	const char *serial;        /* VIRTIO_BLK_ID_BYTES (20) at most; NULL: derived from the file */
	bool sync_io;              /* io=sync: pread/pwrite on the I/O thread instead of io_uring */
};

/* What the user asked for; filled by the CLI, read by every layer. */
struct vm_config {
	const char *kernel_path;
	const char *initrd_path;
	const char *cmdline;       /* NULL: the default for the kernel kind */
	const char *symbols_path;  /* System.map for compat-layer diagnostics (NULL: next to the kernel) */
	unsigned ncpus;
	uint64_t mem_bytes;
	enum mem_backing backing;
	enum console_kind console;
	const char *console_path;  /* CONSOLE_FILE */
	bool stats;                /* print per-vCPU exit counters at exit */
	int verbose;               /* -v count */
	/* The control plane (src/api/); NULL / false when unused. */
	const char *api_sock;      /* --api-sock: serve the REST API on this Unix socket */
	const char *config_file;   /* --config-file: boot from a FullVmConfiguration JSON file */
	const char *instance_id;   /* --id (NULL: "anonymous-instance") */
	bool no_api;               /* --no-api */
	int compat;                /* -1 auto (detect kvm_pvm), 0 off, 1 force on */
	enum console_device console_dev;
	enum virtio_transport_kind virtio_transport;
	struct disk_config disks[VM_MAX_DISKS];
	unsigned ndisks;
	bool rng;                  /* virtio-rng fed by getrandom() */
	unsigned io_poll_us;       /* --io-poll: the I/O thread's busy-poll window (0: off) */
	/* Networking (docs/networking.md): --net, --metadata, --metadata-version, --ssh-key. */
	struct net_config nets[VM_MAX_NETS];
	unsigned nnets;
	const char *metadata_path;
	const char *ssh_key_path;
	int metadata_version;      /* 1 or 2 (MMDS V1 / V2) */
	size_t mmds_size_limit;    /* --mmds-size-limit: bytes of the metadata store (0: MMDS_SIZE_LIMIT_DEFAULT) */
	size_t api_max_body;       /* --http-api-max-payload-size (0: API_MAX_BODY) */
	/*
	 * The API's metadata store, lent for the VM's life (NULL without the
	 * API): then it is the one the guest reads, its version and address
	 * apply, metadata_path/ssh_key_path are not read again, and each
	 * NIC's no_mmds says where it is served.
	 */
	struct mmds *mmds_store;
};

struct vcpu;
struct pvm_compat;
struct uart;
struct pci_bus;
struct mmds;

/* A virtio-mmio device window, announced to the guest in the DSDT (and on the command line with acpi=off). */
#define VM_MAX_VIRTIO_MMIO 8
struct virtio_mmio_slot {
	gpa_t base;
	uint32_t size;
	unsigned gsi;
};

/* A device instance owned by the VM; destroy() frees `state` at VM teardown. */
struct vm_device {
	const char *name;
	void *state;
	void (*destroy)(void *state);
	/* Optional: print the device's counters for --stats. */
	void (*print_stats)(void *state, int fd);
};

#define VM_MAX_DEVICES 64

struct vm {
	struct vm_config cfg;

	/* KVM handles. */
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;
	int max_vcpus;
	bool is_pvm;               /* the host's /dev/kvm is kvm_pvm */

	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;

	unsigned ncpus;
	struct vcpu *vcpus;

	struct vm_device devices[VM_MAX_DEVICES];
	unsigned ndevices;

	struct uart *uart;          /* COM1, fed by the console thread */
	struct virtio_dev *vcon;    /* virtio-console, fed by the console thread when console_dev is virtio */
	struct pci_bus *pci;        /* bus 0, NULL until the host bridge exists */
	struct mmds *mmds;          /* the metadata service's store (--metadata/--ssh-key), or NULL */
	struct virtio_mmio_slot virtio_mmio[VM_MAX_VIRTIO_MMIO];
	unsigned nvirtio_mmio;
	struct ioloop io;           /* the I/O thread: virtio queue work and backends */
	struct irq_routing irqr;    /* GSI routes: irqchip pins + MSI */
	struct pvm_compat *compat;  /* NULL unless the compat layer is active */

	/* Boot facts other layers need (ACPI RSDP, entry kind). */
	gpa_t rsdp;

	/* Stop protocol: the first vm_request_stop() wins; vCPUs are kicked. */
	pthread_mutex_t lock;
	pthread_cond_t stopped_cv;
	_Atomic int stop_reason;    /* enum vm_stop_reason */
	int stop_efd;               /* eventfd, readable once a stop was requested */
	unsigned running_vcpus;

	/* Pause protocol (PATCH /vm, core/pause.c): while pause_req is set, vCPUs park between KVM_RUNs. */
	_Atomic bool pause_req;
	pthread_cond_t pause_cv;    /* with lock: parked vCPUs wait for resume, vm_pause() for them to park */
	unsigned parked_vcpus;      /* under lock */

	/* Console: input fd (-1 if none), output fd (-1 for --console none). */
	int console_in_fd;
	int console_out_fd;
	bool console_raw;           /* console_saved must be restored at exit */
	struct termios console_saved;
	struct console_escape console_esc;
	/* Typed bytes the UART had no room for yet; bounded, overflow is dropped and counted. */
	uint8_t console_pending[4096];
	size_t console_npending;
	uint64_t console_dropped;
	int signal_fd;              /* signalfd for SIGINT/SIGTERM/SIGHUP */
	int stop_signal;            /* the signal behind VM_STOP_SIGNAL */
};

/* Create the VM from cfg: KVM handles, memory, irqchip, vCPUs; 0 or exit code. */
int vm_create(struct vm *vm, const struct vm_config *cfg);
void vm_destroy(struct vm *vm);

/* Run until the guest stops; returns the enum kiln_exit for the process. */
int vm_run(struct vm *vm);

/* The checked accessor: host pointer for [gpa, gpa+len) in RAM, or NULL. */
static inline void *vm_gpa(const struct vm *vm, gpa_t gpa, uint64_t len)
{
	return mem_gpa(&vm->mem, gpa, len);
}

/* Drive an interrupt line of the in-kernel irqchip (ISA IRQ / GSI). */
void vm_set_irq(struct vm *vm, unsigned gsi, int level);

/* Ask every vCPU to stop; the first reason wins. Safe from any thread. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason);

/* Set up the pause state (vm_create does; pause_cv waits on CLOCK_MONOTONIC). */
void vm_pause_init(struct vm *vm);
/*
 * Pause all vCPUs: kick each out of KVM_RUN and wait until every one is parked
 * (guest time is not stopped: kvmclock keeps running, as in Firecracker).
 * Any thread but a vCPU's. 0; -ETIMEDOUT after timeout_ms (the VM runs on);
 * -ESRCH if the VM is stopping. vm_resume() lets them run again.
 */
int vm_pause(struct vm *vm, unsigned timeout_ms);
void vm_resume(struct vm *vm);
/* A vCPU thread saw pause_req: wait, parked, until resumed or stopped. */
void vm_vcpu_park(struct vm *vm);
/* Wake parked vCPUs and waiting pausers to re-check the stop reason (vm_request_stop calls it). */
void vm_pause_wake(struct vm *vm);

/* Hand a device to the VM; it is destroyed with the VM. 0 or -ENOSPC. */
int vm_add_device(struct vm *vm, const struct vm_device *dev);

/* Map a stop reason to the process exit code. */
int vm_exit_code(enum vm_stop_reason reason);
const char *vm_stop_reason_str(enum vm_stop_reason reason);

/*
 * Device self-registration (kvmtool dev_init / Solo5 DECLARE_MODULE): a device
 * file says DEVICE_REGISTER(name, init) and is linked in; vm_create() calls
 * every init(vm) in link order. init returns 0 or -errno.
 */
struct device_desc {
	const char *name;
	int (*init)(struct vm *vm);
};
#define DEVICE_REGISTER(n, fn) \
	static const struct device_desc __dev_##n \
	__attribute__((used, section("kiln_devices"), aligned(sizeof(void *)))) = { #n, fn }

#endif
