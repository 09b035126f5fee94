/*
 * pio_raw: the floor for a port-I/O exit on this host — a bare KVM_RUN loop
 * with no VMM around it. One VM, one vCPU in 64-bit long mode at CPL0 (the
 * mode a kvm_pvm host can run too), guest code: N `out` to port 0x510, hlt.
 * Prints ns per exit, measured around the KVM_RUN loop only.
 *
 * usage: pio_raw [N]   (default 100000)
 * build: cc -O2 -o bench/build/pio_raw bench/pio_raw.c
 * exit:  0 measured, 1 KVM error, 2 usage, 77 /dev/kvm unavailable
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE  (4u << 20)
#define GDT_GPA   0x1000u
#define PML4_GPA  0x2000u
#define PDPT_GPA  0x3000u
#define PD_GPA    0x4000u
#define CODE_GPA  0x10000u
#define STACK_GPA 0x9000u
#define PIO_PORT  0x510

static void die(const char *what)
{
	fprintf(stderr, "pio_raw: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "pio_raw: guest did not finish in time\n";
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

int main(int argc, char **argv)
{
	uint32_t n = 100000;
	int kvm, vm, vcpu, run_size;
	uint8_t *mem;
	struct kvm_run *run;
	struct kvm_sregs s;
	struct kvm_regs r;
	uint64_t ios = 0, t0, t1;

	if (argc > 2 || (argc == 2 && (n = (uint32_t)strtoul(argv[1], NULL, 0)) == 0)) {
		fprintf(stderr, "usage: pio_raw [N >= 1]\n");
		return 2;
	}
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "pio_raw: /dev/kvm: %s\n", strerror(errno));
		return 77;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE, .userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");

	/* GDT: null, null, 64-bit code (0x10), data (0x18). */
	uint64_t *gdt = (uint64_t *)(mem + GDT_GPA);
	gdt[2] = 0x00af9b000000ffffull;
	gdt[3] = 0x00cf93000000ffffull;
	/* Identity map of the first 1 GiB with 2 MiB pages. */
	uint64_t *pml4 = (uint64_t *)(mem + PML4_GPA), *pdpt = (uint64_t *)(mem + PDPT_GPA);
	uint64_t *pd = (uint64_t *)(mem + PD_GPA);
	pml4[0] = PDPT_GPA | 3;
	pdpt[0] = PD_GPA | 3;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x83;
	/* mov $n,%ecx; mov $PORT,%dx; 1: out %al,(%dx); dec %ecx; jnz 1b; hlt */
	const uint8_t code[] = {
		0xb9, (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24),
		0x66, 0xba, PIO_PORT & 0xff, PIO_PORT >> 8,
		0xee, 0xff, 0xc9, 0x75, 0xfb,
		0xf4,
	};
	memcpy(mem + CODE_GPA, code, sizeof(code));

	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(*run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");

	/* Pass the host's CPUID through (long mode needs LM in the vCPU's CPUID on VT-x/SVM). */
	struct { struct kvm_cpuid2 c; struct kvm_cpuid_entry2 e[256]; } cpuid = { .c.nent = 256 };
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) == 0 && ioctl(vcpu, KVM_SET_CPUID2, &cpuid) < 0)
		perror("pio_raw: KVM_SET_CPUID2 (continuing)");

	if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0)
		die("KVM_GET_SREGS");
	struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11,
				  .present = 1, .dpl = 0, .s = 1, .l = 1, .g = 1 };
	struct kvm_segment ds = { .base = 0, .limit = 0xffffffff, .selector = 0x18, .type = 3,
				  .present = 1, .dpl = 0, .db = 1, .s = 1, .g = 1 };
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.gdt.base = GDT_GPA;
	s.gdt.limit = 4 * 8 - 1;
	s.cr3 = PML4_GPA;
	s.cr4 = 1u << 5;              /* PAE */
	s.cr0 = 0x80050033;           /* PG WP NE ET MP PE */
	s.efer = (1u << 8) | (1u << 10); /* LME LMA */
	if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0)
		die("KVM_SET_SREGS");
	memset(&r, 0, sizeof(r));
	r.rip = CODE_GPA;
	r.rsp = STACK_GPA;
	r.rflags = 2;
	if (ioctl(vcpu, KVM_SET_REGS, &r) < 0)
		die("KVM_SET_REGS");

	signal(SIGALRM, on_alarm);
	alarm(120);
	t0 = now_ns();
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PIO_PORT) {
			ios++;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		fprintf(stderr, "pio_raw: unexpected exit %u after %" PRIu64 " outs\n", run->exit_reason, ios);
		if (ioctl(vcpu, KVM_GET_REGS, &r) == 0)
			fprintf(stderr, "pio_raw: rip=%#llx\n", (unsigned long long)r.rip);
		return 1;
	}
	t1 = now_ns();
	alarm(0);
	if (ios != n) {
		fprintf(stderr, "pio_raw: %" PRIu64 " port exits, expected %u\n", ios, n);
		return 1;
	}
	printf("pio_raw: %u exits in %.3f ms: %.0f ns per exit\n", n, (double)(t1 - t0) / 1e6,
	       (double)(t1 - t0) / n);
	return 0;
}
