/* `kiln run` under the control plane: the API server, the pre-boot wait, InstanceStart, and the VM operations it drives. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <jansson.h>
#include "api/api_run.h"
#include "api/api_vmm.h"
#include "api/api_server.h"
#include "core/vcpu.h"
#include "core/loader.h"
#include "core/log.h"
#include "devices/i8042.h"

/* How long PATCH /vm Paused waits for every vCPU to leave KVM_RUN. */
#define PAUSE_TIMEOUT_MS 5000

/* Everything one `kiln run` under the API owns. */
struct runner {
	struct vm vm;
	bool vm_created;           /* vm_create() ran: vm_destroy() is due (under ctl.lock) */
	int ready_efd;             /* written once the VM is loaded and may run */
	api_check_inputs_fn check;
	struct api_vmm ctl;
	struct api_server srv;
	bool srv_running;
};

static const char *last_error_or(const char *fallback)
{
	const char *e = log_last_error();

	return *e ? e : fallback;
}

/* api_vmm_ops.start: build and load the VM on the calling thread (the API's, or main for a config file). */
static int op_start(void *opaque, const struct vm_config *cfg, struct api_err *err)
{
	struct runner *r = opaque;
	uint64_t one = 1;
	int code;

	log_clear_last_error();
	if (r->check && r->check(cfg) < 0) {
		api_err_set(err, 400, "Cannot start the microVM: %s",
			    last_error_or("the boot files are not usable"));
		return -EINVAL;
	}
	r->vm_created = true;
	code = vm_create(&r->vm, cfg);
	if (code == 0)
		code = vm_load(&r->vm);
	if (code) {
		vm_destroy(&r->vm);
		r->vm_created = false;
		/* Host trouble (no /dev/kvm, no memory) is the server's fault, the rest the request's. */
		api_err_set(err, code == KILN_EXIT_SETUP ? 500 : 400, "Cannot start the microVM: %s",
			    last_error_or("see kiln's log"));
		return -EIO;
	}
	if (write(r->ready_efd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
		vm_destroy(&r->vm);
		r->vm_created = false;
		api_err_set(err, 500, "Cannot start the microVM: eventfd: %s", strerror(errno));
		return -EIO;
	}
	return 0;
}

static int op_pause(void *opaque, struct api_err *err)
{
	struct runner *r = opaque;
	int ret = vm_pause(&r->vm, PAUSE_TIMEOUT_MS);

	if (ret == -ETIMEDOUT)
		api_err_set(err, 500, "The vCPUs did not pause within %d ms; the microVM runs on.",
			    PAUSE_TIMEOUT_MS);
	else if (ret)
		api_err_set(err, 400, "The microVM is stopping.");
	return ret;
}

static int op_resume(void *opaque, struct api_err *err)
{
	struct runner *r = opaque;

	(void)err;
	vm_resume(&r->vm);
	return 0;
}

static int op_ctrl_alt_del(void *opaque, struct api_err *err)
{
	struct runner *r = opaque;
	struct i8042 *k = i8042_from_vm(&r->vm);
	int ret;

	if (!k) {
		api_err_set(err, 400, "This microVM has no i8042 keyboard controller.");
		return -ENODEV;
	}
	ret = i8042_send_ctrl_alt_del(k);
	if (ret == -EAGAIN)
		api_err_set(err, 400, "The guest has its keyboard disabled; try again later.");
	else if (ret == -ENOSPC)
		api_err_set(err, 400, "The guest has not read the keyboard's pending bytes; try "
			    "again later.");
	else if (ret)
		api_err_set(err, 500, "SendCtrlAltDel: %s", strerror(-ret));
	return ret;
}

/* Relaxed loads: vCPU threads bump these counters without atomics; x86 loads of a u64 do not tear. */
static json_int_t ld(const uint64_t *p)
{
	return (json_int_t)(__atomic_load_n(p, __ATOMIC_RELAXED) & INT64_MAX);
}

static json_t *vcpus_obj(struct vm *vm)
{
	json_t *a = json_array();

	for (unsigned i = 0; a && i < vm->ncpus && vm->vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		json_t *exits = json_object();

		for (unsigned e = 0; exits && e < VCPU_EXIT_SLOTS; e++) {
			json_int_t n = ld(&v->exits[e]);
			char name[24];

			if (!n)
				continue;
			/* kvm_exit_name() says "other" for several reasons: keep them apart. */
			if (!strcmp(kvm_exit_name(e), "other"))
				snprintf(name, sizeof(name), "exit_%u", e);
			else
				snprintf(name, sizeof(name), "%s", kvm_exit_name(e));
			json_object_set_new(exits, name, json_integer(n));
		}
		json_array_append_new(a, json_pack("{sIsIso}", "id", (json_int_t)i, "exits_total",
						   ld(&v->exits_total), "exits", exits));
	}
	return a;
}

/* Each device's --stats line, read back from a memfd and parsed into counters. */
static json_t *devices_obj(struct vm *vm)
{
	json_t *o = json_object();
	char buf[4096];
	int fd = memfd_create("kiln-metrics", MFD_CLOEXEC);

	if (fd < 0 || !o) {
		if (fd >= 0)
			close(fd);
		return o;
	}
	for (unsigned i = 0; i < vm->ndevices; i++) {
		const struct vm_device *d = &vm->devices[i];
		char key[64];
		json_t *c;
		off_t end;
		ssize_t n;

		if (!d->print_stats)
			continue;
		if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
			break;
		d->print_stats(d->state, fd);
		end = lseek(fd, 0, SEEK_CUR);
		n = pread(fd, buf, end > 0 && (size_t)end < sizeof(buf) ? (size_t)end : sizeof(buf), 0);
		if (n <= 0)
			continue;
		c = json_object();
		if (!c)
			break;
		api_parse_counters(buf, (size_t)n, c);
		/* Several devices of one kind (two disks): name the later ones name#2, name#3. */
		snprintf(key, sizeof(key), "%s", d->name ? d->name : "device");
		for (unsigned k = 2; json_object_get(o, key) && k < 100; k++)
			snprintf(key, sizeof(key), "%s#%u", d->name ? d->name : "device", k);
		json_object_set_new(o, key, c);
	}
	close(fd);
	return o;
}

static void op_metrics(void *opaque, json_t *line)
{
	struct runner *r = opaque;
	struct vm *vm = &r->vm;

	json_object_set_new(line, "vcpus", vcpus_obj(vm));
	json_object_set_new(line, "bus", json_pack("{sIsIsIsI}",
		"pio_unclaimed_reads", (json_int_t)atomic_load(&vm->pio.unclaimed_reads),
		"pio_unclaimed_writes", (json_int_t)atomic_load(&vm->pio.unclaimed_writes),
		"mmio_unclaimed_reads", (json_int_t)atomic_load(&vm->mmio.unclaimed_reads),
		"mmio_unclaimed_writes", (json_int_t)atomic_load(&vm->mmio.unclaimed_writes)));
	json_object_set_new(line, "io_thread_dispatched", json_integer(ld(&vm->io.dispatched)));
	json_object_set_new(line, "devices", devices_obj(vm));
}

static const struct api_vmm_ops runner_ops = {
	.start = op_start,
	.pause = op_pause,
	.resume = op_resume,
	.ctrl_alt_del = op_ctrl_alt_del,
	.metrics = op_metrics,
};

/* --config-file: read whole (bounded) and load it into the store. 0 or an exit code. */
static int load_config_file(struct runner *r, const char *path)
{
	struct api_err err = { 0 };
	struct stat st;
	char *text;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_err("--config-file %s: %s", path, strerror(errno));
		return KILN_EXIT_USAGE;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > API_CONFIG_FILE_MAX) {
		log_err("--config-file %s: %s", path, !S_ISREG(st.st_mode) ? "not a regular file" :
			"larger than 1 MiB");
		close(fd);
		return KILN_EXIT_USAGE;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		log_err("--config-file %s: out of memory", path);
		return KILN_EXIT_SETUP;
	}
	n = read(fd, text, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		log_err("--config-file %s: short read", path);
		free(text);
		return KILN_EXIT_USAGE;
	}
	if (api_vmm_load_config(&r->ctl, text, (size_t)n, &err)) {
		log_err("--config-file %s: %s", path, err.msg + (strncmp(err.msg, "config file: ", 13) ? 0 : 13));
		free(text);
		return err.status >= 500 ? KILN_EXIT_SETUP : KILN_EXIT_USAGE;
	}
	free(text);
	return 0;
}

/* Before InstanceStart: sleep until the API has a VM ready, or a signal ends kiln. 0 or 128+N. */
static int wait_for_start(struct runner *r, const sigset_t *sigs)
{
	int sfd = signalfd(-1, sigs, SFD_CLOEXEC);
	struct signalfd_siginfo si;
	uint64_t val;
	int code = KILN_EXIT_ERROR;

	if (sfd < 0) {
		log_err("signalfd: %s", strerror(errno));
		return KILN_EXIT_SETUP;
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = r->ready_efd, .events = POLLIN },
				       { .fd = sfd, .events = POLLIN } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			break;
		}
		/* A signal wins over a start that completed meanwhile. */
		if ((p[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			log_warn("stopped before boot: signal %u (exit code %u)", si.ssi_signo,
				 128 + si.ssi_signo);
			code = 128 + (int)si.ssi_signo;
			break;
		}
		if ((p[0].revents & POLLIN) && read(r->ready_efd, &val, sizeof(val)) == (ssize_t)sizeof(val)) {
			code = 0;
			break;
		}
	}
	close(sfd);
	return code;
}

int api_run(const struct vm_config *cfg, api_check_inputs_fn check)
{
	struct runner *r;
	struct api_err err = { 0 };
	char msg[256];
	sigset_t sigs;
	int code = 0, ret;

	/*
	 * Block the signals kiln takes through signalfd before any thread exists:
	 * the API, metrics, I/O and vCPU threads inherit the mask, so SIGINT /
	 * SIGTERM reach the main loop instead of killing kiln with the socket left.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	sigdelset(&sigs, SIGUSR1);

	r = calloc(1, sizeof(*r));
	if (!r) {
		log_err("out of memory");
		return KILN_EXIT_SETUP;
	}
	r->check = check;
	r->ready_efd = eventfd(0, EFD_CLOEXEC);
	if (r->ready_efd < 0) {
		log_err("eventfd: %s", strerror(errno));
		free(r);
		return KILN_EXIT_SETUP;
	}
	ret = api_vmm_init(&r->ctl, cfg, cfg->instance_id, &runner_ops, r);
	if (ret) {
		log_err("API state: %s", strerror(-ret));
		close(r->ready_efd);
		free(r);
		return ret == -EINVAL ? KILN_EXIT_USAGE : KILN_EXIT_SETUP;
	}
	/* --metadata/--ssh-key seed the MMDS store before a config file or a client touches it. */
	if (api_vmm_mmds_seed(&r->ctl, &err)) {
		log_err("%s", err.msg);
		code = err.status >= 500 ? KILN_EXIT_SETUP : KILN_EXIT_USAGE;
		goto out;
	}
	if (cfg->config_file) {
		code = load_config_file(r, cfg->config_file);
		if (code)
			goto out;
	}
	if (cfg->api_sock) {
		ret = api_server_start(&r->srv, cfg->api_sock, api_vmm_max_body(&r->ctl), api_vmm_handle, &r->ctl,
				       msg, sizeof(msg));
		if (ret) {
			log_err("%s", msg);
			code = KILN_EXIT_USAGE;
			goto out;
		}
		r->srv_running = true;
		if (log_get_level() >= LOG_INFO) {
			struct rusage ru;

			/* Start-to-socket CPU (Firecracker's budget is 8 ms): exec and linking included. */
			getrusage(RUSAGE_SELF, &ru);
			log_info("API server listening on %s (%.2f ms CPU since exec)", cfg->api_sock,
				 (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
				 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
		}
	}

	if (cfg->config_file) {
		log_clear_last_error();
		if (api_vmm_start(&r->ctl, &err)) {
			/* Say it once: a boot failure was logged where it happened. */
			if (!*log_last_error())
				log_err("--config-file %s: %s", cfg->config_file, err.msg);
			code = err.status >= 500 ? KILN_EXIT_SETUP : KILN_EXIT_USAGE;
			goto out;
		}
	} else if (cfg->kernel_path) {
		struct vm_config booted = *cfg;

		/* The guest reads the API's store: PUT/PATCH /mmds after boot reach it. */
		pthread_mutex_lock(&r->ctl.lock);
		api_net_lend(&r->ctl, &booted);
		pthread_mutex_unlock(&r->ctl.lock);
		if (check && check(cfg) < 0) {
			code = KILN_EXIT_USAGE;
			goto out;
		}
		r->vm_created = true;
		code = vm_create(&r->vm, &booted);
		if (code == 0)
			code = vm_load(&r->vm);
		if (code)
			goto out;
		api_vmm_started(&r->ctl, cfg);
	} else {
		code = wait_for_start(r, &sigs);
		if (code)
			goto out;
	}

	code = vm_run(&r->vm);
	/* A last metrics line with the final counters (Firecracker flushes at exit too). */
	pthread_mutex_lock(&r->ctl.lock);
	if (r->ctl.metrics_fd >= 0 && api_metrics_flush(&r->ctl, &err))
		log_warn("metrics: %s", err.msg);
	pthread_mutex_unlock(&r->ctl.lock);
out:
	/* From here no request reaches the VM: ops see Stopped, then the server goes. */
	api_vmm_stopped(&r->ctl);
	if (r->srv_running)
		api_server_stop(&r->srv);
	if (r->vm_created)
		vm_destroy(&r->vm);
	api_vmm_destroy(&r->ctl);
	/* The log file closes with the API state; later messages go to stderr. */
	log_set_sink(-1, NULL, false, false, NULL);
	close(r->ready_efd);
	free(r);
	return code;
}
