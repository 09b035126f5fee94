/* The API's VMM side: pre-boot configuration store, request dispatch with the phase rules, InstanceStart, pause/resume. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <jansson.h>
#include "api/api_vmm.h"
#include "core/log.h"

/* kiln's Linux command line when boot_args is absent (as loader.c's), for adding root=. */
#define DEFAULT_CMDLINE_SERIAL "console=ttyS0 reboot=k panic=-1"
#define DEFAULT_CMDLINE_VIRTIO "console=hvc0 reboot=k panic=-1"

static const char no_limiter[] = "kiln has no rate limiters yet: drop rate_limiter.";
static const char stopped[] = "The microVM has stopped.";

const char *api_state_str(enum api_state s)
{
	switch (s) {
	case API_STATE_NOT_STARTED: return "Not started";
	case API_STATE_RUNNING: return "Running";
	case API_STATE_PAUSED: return "Paused";
	case API_STATE_STOPPED: return "Stopped";
	}
	return "?";
}

int api_check_instance_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n < 1 || n > API_INSTANCE_ID_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return -EINVAL;
	}
	return 0;
}

size_t api_vmm_max_body(const struct api_vmm *v)
{
	return v->base.api_max_body ? v->base.api_max_body : API_MAX_BODY;
}

int api_vmm_init(struct api_vmm *v, const struct vm_config *base, const char *id,
		 const struct api_vmm_ops *ops, void *opaque)
{
	pthread_condattr_t ca;
	int ret;

	memset(v, 0, sizeof(*v));
	if (!id)
		id = API_DEFAULT_INSTANCE_ID;
	if (api_check_instance_id(id))
		return -EINVAL;
	snprintf(v->id, sizeof(v->id), "%s", id);
	ret = -pthread_mutex_init(&v->lock, NULL);
	if (ret)
		return ret;
	/* The timer waits on CLOCK_MONOTONIC: setting the host clock must not stall metrics. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	ret = -pthread_cond_init(&v->timer_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (ret) {
		pthread_mutex_destroy(&v->lock);
		return ret;
	}
	v->ops = ops;
	v->opaque = opaque;
	v->base = *base;
	v->state = API_STATE_NOT_STARTED;
	v->machine.vcpu_count = API_DEFAULT_VCPUS;
	v->machine.mem_size_mib = API_DEFAULT_MEM_MIB;
	v->metrics_fd = -1;
	v->metrics_period_ms = API_METRICS_PERIOD_S * 1000;
	v->created_ns = api_now_ns();
	ret = api_mmds_init(v);
	if (ret) {
		pthread_cond_destroy(&v->timer_cv);
		pthread_mutex_destroy(&v->lock);
		return ret;
	}
	return 0;
}

void api_vmm_destroy(struct api_vmm *v)
{
	api_metrics_timer_stop(v);
	api_request_free(&v->boot);
	for (unsigned i = 0; i < v->ndrives; i++)
		api_request_free(&v->drives[i]);
	v->ndrives = 0;
	api_request_free(&v->entropy);
	api_request_free(&v->serial);
	api_request_free(&v->logger);
	api_request_free(&v->metrics);
	for (unsigned i = 0; i < v->nnets; i++)
		api_request_free(&v->nets[i]);
	v->nnets = 0;
	api_request_free(&v->mmds_config);
	if (v->mmds_ok)
		mmds_fini(&v->mmds);
	v->mmds_ok = false;
	free(v->cmdline);
	v->cmdline = NULL;
	if (v->metrics_fd >= 0)
		close(v->metrics_fd);
	v->metrics_fd = -1;
	pthread_cond_destroy(&v->timer_cv);
	pthread_mutex_destroy(&v->lock);
}

/* Quote a client path in a message: printable ASCII, bounded. */
static const char *echo_path(char *buf, size_t len, const char *path)
{
	return api_echo(buf, len, path, strlen(path), 160);
}

/* A host file the VM will read (kernel, initrd) or read and write (a drive). */
static int check_host_file(const char *field, const char *path, bool writable, bool block_ok,
			   struct api_err *err)
{
	char p[200];
	struct stat st;

	if (stat(path, &st) < 0 || access(path, writable ? R_OK | W_OK : R_OK) < 0) {
		api_err_set(err, 400, "%s %s: %s%s", field, echo_path(p, sizeof(p), path),
			    strerror(errno), writable && (errno == EACCES || errno == EROFS) ?
			    " (set is_read_only for a read-only drive)" : "");
		return -EINVAL;
	}
	if (!S_ISREG(st.st_mode) && !(block_ok && S_ISBLK(st.st_mode))) {
		api_err_set(err, 400, "%s %s: not a regular file%s", field,
			    echo_path(p, sizeof(p), path), block_ok ? " or block device" : "");
		return -EINVAL;
	}
	return 0;
}

/*
 * Open a file kiln writes lines to (log, metrics): appended, created 0644 if
 * absent. Non-blocking, so a FIFO nobody drains loses lines instead of
 * stalling kiln; a FIFO without a reader yet is opened read-write (as
 * Firecracker does) so the open does not fail with ENXIO.
 */
static int open_output(const char *field, const char *path, struct api_err *err)
{
	char p[200];
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);

	if (fd < 0 && errno == ENXIO)
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		api_err_set(err, 400, "%s %s: %s", field, echo_path(p, sizeof(p), path),
			    strerror(errno));
		return -EINVAL;
	}
	return fd;
}

static enum log_level log_level_of(enum api_log_level l)
{
	switch (l) {
	case API_LOG_ERROR: return LOG_ERROR;
	case API_LOG_WARNING: return LOG_WARN;
	case API_LOG_INFO: return LOG_INFO;
	case API_LOG_DEBUG:
	case API_LOG_TRACE: return LOG_DEBUG;   /* kiln has no finer level than debug */
	case API_LOG_OFF: return LOG_OFF;
	}
	return LOG_INFO;
}

/* Move a parsed request into a store slot (the slot's old content is freed). */
static void store(struct api_request *slot, struct api_request *req)
{
	api_request_free(slot);
	*slot = *req;
	memset(req, 0, sizeof(*req));
}

static int put_boot_source(struct api_vmm *v, struct api_request *req, struct api_err *err)
{
	const struct api_boot_source *bs = &req->u.boot;

	/* Firecracker opens the files here; kiln checks them here and reads them at start. */
	if (check_host_file("kernel_image_path", bs->kernel_image_path, false, false, err))
		return -EINVAL;
	if (bs->initrd_path && check_host_file("initrd_path", bs->initrd_path, false, false, err))
		return -EINVAL;
	store(&v->boot, req);
	return 0;
}

static int put_machine(struct api_vmm *v, struct api_request *req, struct api_err *err)
{
	struct api_machine_config m = v->machine;
	int ret;

	if (req->route.method == API_PUT) {
		m = req->u.machine;
	} else {
		ret = api_machine_config_patch(&m, &req->u.machine, err);
		if (ret)
			return ret;
	}
	ret = api_machine_config_supported(&m, err);
	if (ret)
		return ret;
	v->machine = m;
	return 0;
}

static int find_drive(const struct api_vmm *v, const char *id)
{
	for (unsigned i = 0; i < v->ndrives; i++)
		if (!strcmp(v->drives[i].u.drive.drive_id, id))
			return (int)i;
	return -1;
}

static int put_drive(struct api_vmm *v, struct api_request *req, struct api_err *err)
{
	const struct api_drive *d = &req->u.drive;
	int slot = find_drive(v, d->drive_id);

	if (d->present & (1u << API_DRV_RATE_LIMITER)) {
		api_err_set(err, 400, "Drive.rate_limiter: %s", no_limiter);
		return -EINVAL;
	}
	if (check_host_file("path_on_host", d->path_on_host, !d->is_read_only, true, err))
		return -EINVAL;
	if (d->is_root_device) {
		for (unsigned i = 0; i < v->ndrives; i++) {
			if ((int)i != slot && v->drives[i].u.drive.is_root_device) {
				/* Firecracker's RootBlockDeviceAlreadyAdded. */
				api_err_set(err, 400, "A root block device already exists!");
				return -EINVAL;
			}
		}
	}
	if (slot < 0) {
		if (v->ndrives + v->base.ndisks >= VM_MAX_DISKS) {
			api_err_set(err, 400, "kiln supports at most %d drives (%u from the command "
				    "line).", VM_MAX_DISKS, v->base.ndisks);
			return -EINVAL;
		}
		slot = (int)v->ndrives++;
	}
	store(&v->drives[slot], req);
	return 0;
}

static int put_logger(struct api_vmm *v, struct api_request *req, struct api_err *err)
{
	const struct api_logger *lg = &req->u.logger;
	int fd = -1;

	if (lg->log_path) {
		fd = open_output("log_path", lg->log_path, err);
		if (fd < 0)
			return fd;
	}
	/* Without log_path the lines stay on stderr; level applies either way. */
	log_set_sink(fd, v->id, lg->show_level, lg->show_log_origin, lg->module);
	log_set_level(log_level_of(lg->level));
	store(&v->logger, req);
	lg = &v->logger.u.logger;   /* store() moved it */
	log_info("api: logger configured (level %s%s%s)", api_enum_str(API_ENUM_LOG_LEVEL, lg->level),
		 lg->log_path ? ", file " : "", lg->log_path ? lg->log_path : "");
	return 0;
}

static int put_metrics(struct api_vmm *v, struct api_request *req, struct api_err *err)
{
	int fd = open_output("metrics_path", req->u.metrics.metrics_path, err);
	int ret;

	if (fd < 0)
		return fd;
	ret = api_metrics_timer_start(v);
	if (ret) {
		close(fd);
		api_err_set(err, 500, "cannot start the metrics timer: %s", strerror(-ret));
		return ret;
	}
	if (v->metrics_fd >= 0)
		close(v->metrics_fd);
	v->metrics_fd = fd;
	store(&v->metrics, req);
	return 0;
}

static int put_entropy(struct api_vmm *v, struct api_request *req, struct api_err *err)
{
	if (req->u.entropy.present & (1u << API_ENT_RATE_LIMITER)) {
		api_err_set(err, 400, "EntropyDevice.rate_limiter: %s", no_limiter);
		return -EINVAL;
	}
	store(&v->entropy, req);
	return 0;
}

static int put_serial(struct api_vmm *v, struct api_request *req, struct api_err *err)
{
	if (req->u.serial.present & (1u << API_SER_RATE_LIMITER)) {
		api_err_set(err, 400, "SerialDevice.rate_limiter: %s", no_limiter);
		return -EINVAL;
	}
	store(&v->serial, req);
	return 0;
}

/* Root device on the kernel command line, as Firecracker: root=/dev/vda or root=PARTUUID=..., ro|rw. */
static int compose_cmdline(struct api_vmm *v, const struct api_drive *root, struct vm_config *cfg,
			   struct api_err *err)
{
	const char *base = cfg->cmdline;
	char rootarg[96];
	size_t n;

	free(v->cmdline);
	v->cmdline = NULL;
	if (!root)
		return 0;
	if (!base)
		base = cfg->console_dev == CONSOLE_DEV_VIRTIO ? DEFAULT_CMDLINE_VIRTIO :
							      DEFAULT_CMDLINE_SERIAL;
	if (root->partuuid)
		snprintf(rootarg, sizeof(rootarg), "root=PARTUUID=%s", root->partuuid);
	else
		snprintf(rootarg, sizeof(rootarg), "root=/dev/vda");
	n = strlen(base) + strlen(rootarg) + 8;
	v->cmdline = malloc(n);
	if (!v->cmdline) {
		api_err_set(err, 500, "out of memory");
		return -ENOMEM;
	}
	snprintf(v->cmdline, n, "%s%s%s %s", base, *base ? " " : "", rootarg,
		 root->is_read_only ? "ro" : "rw");
	if (strlen(v->cmdline) > API_BOOT_ARGS_MAX) {
		api_err_set(err, 400, "boot_args with the root device are longer than %d bytes.",
			    API_BOOT_ARGS_MAX);
		free(v->cmdline);
		v->cmdline = NULL;
		return -EINVAL;
	}
	cfg->cmdline = v->cmdline;
	return 0;
}

static void add_disk(struct api_vmm *v, struct vm_config *cfg, unsigned i)
{
	const struct api_drive *d = &v->drives[i].u.drive;
	struct disk_config *dc = &cfg->disks[cfg->ndisks++];

	memset(dc, 0, sizeof(*dc));
	dc->path = d->path_on_host;
	dc->readonly = d->is_read_only;
	/* Firecracker answers VIRTIO_BLK_T_GET_ID with the drive_id (20 bytes at most). */
	snprintf(v->drive_serials[i], sizeof(v->drive_serials[i]), "%s", d->drive_id);
	dc->serial = v->drive_serials[i];
	/* io_engine: Sync is pread/pwrite; Async (or absent) is kiln's default, io_uring. */
	dc->sync_io = (d->present & (1u << API_DRV_IO_ENGINE)) && d->io_engine == API_IO_SYNC;
}

static int do_start(struct api_vmm *v, struct api_err *err)
{
	struct vm_config cfg = v->base;
	int root = -1, ret;

	if (v->state != API_STATE_NOT_STARTED) {
		api_err_set(err, 400, "The requested operation is not supported after starting "
			    "the microVM.");
		return -EPERM;
	}
	ret = api_apply_config(v->boot.kind == API_BODY_BOOT_SOURCE ? &v->boot.u.boot : NULL,
			       &v->machine, &cfg, err);
	if (ret)
		return ret;
	/* The root drive is the first disk (vda), then the other drives, then --disk ones. */
	cfg.ndisks = 0;
	for (unsigned i = 0; i < v->ndrives; i++)
		if (v->drives[i].u.drive.is_root_device)
			root = (int)i;
	if (root >= 0)
		add_disk(v, &cfg, (unsigned)root);
	for (unsigned i = 0; i < v->ndrives; i++)
		if ((int)i != root)
			add_disk(v, &cfg, i);
	for (unsigned i = 0; i < v->base.ndisks && cfg.ndisks < VM_MAX_DISKS; i++)
		cfg.disks[cfg.ndisks++] = v->base.disks[i];
	if (v->entropy.kind == API_BODY_ENTROPY)
		cfg.rng = true;
	if (v->serial.kind == API_BODY_SERIAL && v->serial.u.serial.serial_out_path) {
		cfg.console = CONSOLE_FILE;
		cfg.console_path = v->serial.u.serial.serial_out_path;
		cfg.console_dev = CONSOLE_DEV_SERIAL;
	}
	ret = compose_cmdline(v, root >= 0 ? &v->drives[root].u.drive : NULL, &cfg, err);
	if (ret)
		return ret;
	ret = api_net_compose(v, &cfg, err);
	if (ret)
		return ret;
	ret = v->ops->start(v->opaque, &cfg, err);
	if (ret) {
		if (!err->status)
			api_err_set(err, 500, "The microVM could not start: %s", strerror(-ret));
		return ret;
	}
	v->started = cfg;
	v->state = API_STATE_RUNNING;
	log_info("api: the microVM is running (%u vCPUs, %llu MiB)", cfg.ncpus,
		 (unsigned long long)(cfg.mem_bytes >> 20));
	return 0;
}

static int do_action(struct api_vmm *v, const struct api_action *a, struct api_err *err)
{
	switch (a->action_type) {
	case API_ACTION_INSTANCE_START:
		return do_start(v, err);
	case API_ACTION_FLUSH_METRICS:
		return api_metrics_flush(v, err);
	case API_ACTION_SEND_CTRL_ALT_DEL:
		if (v->state == API_STATE_STOPPED) {
			api_err_set(err, 400, "%s", stopped);
			return -ESRCH;
		}
		return v->ops->ctrl_alt_del(v->opaque, err);
	}
	api_err_set(err, 400, "Unknown action_type.");
	return -EINVAL;
}

static int patch_vm(struct api_vmm *v, const struct api_vm *body, struct api_err *err)
{
	int ret;

	if (v->state == API_STATE_STOPPED) {
		api_err_set(err, 400, "%s", stopped);
		return -ESRCH;
	}
	/* Pausing a paused VM (or resuming a running one) is a no-op, as in Firecracker. */
	if (body->state == API_VM_PAUSED) {
		if (v->state == API_STATE_PAUSED)
			return 0;
		ret = v->ops->pause(v->opaque, err);
		if (!ret) {
			v->state = API_STATE_PAUSED;
			log_info("api: the microVM is paused");
		}
		return ret;
	}
	if (v->state == API_STATE_RUNNING)
		return 0;
	ret = v->ops->resume(v->opaque, err);
	if (!ret) {
		v->state = API_STATE_RUNNING;
		log_info("api: the microVM is resumed");
	}
	return ret;
}

/* The body of one routed, validated request whose phase rule passed. */
static int run_request(struct api_vmm *v, struct api_request *req, char **out,
		       struct api_err *err)
{
	const struct api_route *r = &req->route;
	char *body = NULL;

	switch (r->ep) {
	case API_EP_ROOT:
		body = api_json_instance_info(v);
		break;
	case API_EP_VERSION:
		body = api_json_version();
		break;
	case API_EP_VM_CONFIG:
		body = api_json_vm_config(v);
		break;
	case API_EP_MACHINE_CONFIG:
		if (r->method == API_GET) {
			body = api_json_machine_config(v);
			break;
		}
		return put_machine(v, req, err);
	case API_EP_ACTIONS:
		return do_action(v, &req->u.action, err);
	case API_EP_BOOT_SOURCE:
		return put_boot_source(v, req, err);
	case API_EP_DRIVES:
		if (r->method == API_PUT)
			return put_drive(v, req, err);
		if (find_drive(v, r->id) < 0) {
			api_err_set(err, 400, "Invalid block device ID: no drive %s.", r->id);
			return -ENOENT;
		}
		api_err_set(err, 400, "kiln cannot update a drive after boot yet (no change of "
			    "path_on_host, no rate limiters).");
		return -EOPNOTSUPP;
	case API_EP_NETWORK_IFACES:
		if (r->method == API_PUT)
			return api_net_put(v, req, err);
		return api_net_patch(v, req, err);
	case API_EP_MMDS:
		return api_mmds_request(v, req, out, err);
	case API_EP_MMDS_CONFIG:
		return api_mmds_config_put(v, req, err);
	case API_EP_LOGGER:
		return put_logger(v, req, err);
	case API_EP_METRICS:
		return put_metrics(v, req, err);
	case API_EP_ENTROPY:
		return put_entropy(v, req, err);
	case API_EP_SERIAL:
		return put_serial(v, req, err);
	case API_EP_VM:
		return patch_vm(v, &req->u.vm, err);
	case API_EP_COUNT:
		api_err_set(err, 400, "Invalid request method and/or path.");
		return -EINVAL;
	}
	/* Only the GETs get here. */
	if (!body) {
		api_err_set(err, 500, "out of memory");
		return -ENOMEM;
	}
	*out = body;
	return 0;
}

/* Route, validate, check the phase, run. *routed tells whether route holds a real endpoint. */
static int dispatch(struct api_vmm *v, const char *method, const char *path, const char *body,
		    size_t blen, struct api_route *route, bool *routed, char **out,
		    struct api_err *err)
{
	struct api_request req;
	bool started = v->state != API_STATE_NOT_STARTED;
	const char *why = NULL;
	int ret;

	*routed = false;
	*out = NULL;
	ret = api_route(method, strlen(method), path, strlen(path), route, err);
	if (ret)
		return ret;
	*routed = true;
	ret = api_parse_body(route, body, blen, api_vmm_max_body(v), &req, err);
	if (ret)
		return ret;
	if (req.kind == API_BODY_ACTION)
		ret = api_check_action_phase(req.u.action.action_type, started, &why);
	else
		ret = api_check_phase(route->ep, route->method, started, &why);
	if (ret)
		api_err_set(err, 400, "%s", why ? why : "Invalid request method and/or path.");
	else
		ret = run_request(v, &req, out, err);
	api_request_free(&req);
	return ret;
}

/* One line per request that changed something or failed (GETs that worked are too many to log). */
static void log_request(const char *method, const char *path, const struct api_route *route,
			int status, const char *fault)
{
	char m[API_MAX_METHOD + 4], p[API_MAX_PATH + 4];

	api_echo(m, sizeof(m), method, strlen(method), API_MAX_METHOD);
	api_echo(p, sizeof(p), path, strlen(path), API_MAX_PATH);
	if (fault)
		log_info("api: %s %s -> %d: %s", m, p, status, fault);
	else if (route && route->method != API_GET)
		log_info("api: %s %s -> %d", m, p, status);
}

void api_vmm_handle(void *opaque, const char *method, const char *path, const char *body,
		    size_t blen, uint64_t t0_ns, struct api_reply *reply)
{
	struct api_vmm *v = opaque;
	struct api_err err = { 0 };
	struct api_route route;
	bool routed;
	char *out = NULL;
	int ret;

	pthread_mutex_lock(&v->lock);
	ret = dispatch(v, method, path, body, blen, &route, &routed, &out, &err);
	if (ret) {
		reply->status = err.status ? err.status : 500;
		reply->body = api_fault_body(err.msg[0] ? err.msg : "Internal error.");
	} else {
		reply->status = out ? 200 : 204;
		reply->body = out;
	}
	api_stats_record(v, routed ? (int)route.ep : -1, routed ? (int)route.method : -1,
			 reply->status, (api_now_ns() - t0_ns) / 1000);
	pthread_mutex_unlock(&v->lock);
	log_request(method, path, routed ? &route : NULL, reply->status, ret ? err.msg : NULL);
}

int api_vmm_request(struct api_vmm *v, const char *method, const char *path, const char *body,
		    size_t blen, char **out, struct api_err *err)
{
	struct api_route route;
	bool routed;
	char *o = NULL;
	int ret;

	pthread_mutex_lock(&v->lock);
	ret = dispatch(v, method, path, body, blen, &route, &routed, &o, err);
	pthread_mutex_unlock(&v->lock);
	log_request(method, path, routed ? &route : NULL,
		    ret ? (err->status ? err->status : 500) : (o ? 200 : 204), ret ? err->msg : NULL);
	if (out)
		*out = o;
	else
		free(o);
	return ret;
}

int api_vmm_start(struct api_vmm *v, struct api_err *err)
{
	int ret;

	pthread_mutex_lock(&v->lock);
	ret = do_start(v, err);
	pthread_mutex_unlock(&v->lock);
	return ret;
}

void api_vmm_started(struct api_vmm *v, const struct vm_config *cfg)
{
	struct api_request req = { .route = { .ep = API_EP_BOOT_SOURCE, .method = API_PUT },
				   .kind = API_BODY_BOOT_SOURCE };
	struct api_boot_source *bs = &req.u.boot;

	pthread_mutex_lock(&v->lock);
	/* GET /vm/config then shows what the command line booted. */
	bs->kernel_image_path = cfg->kernel_path ? strdup(cfg->kernel_path) : NULL;
	bs->initrd_path = cfg->initrd_path ? strdup(cfg->initrd_path) : NULL;
	bs->boot_args = cfg->cmdline ? strdup(cfg->cmdline) : NULL;
	bs->present = (bs->kernel_image_path ? 1u << API_BS_KERNEL_IMAGE_PATH : 0) |
		      (bs->initrd_path ? 1u << API_BS_INITRD_PATH : 0) |
		      (bs->boot_args ? 1u << API_BS_BOOT_ARGS : 0);
	store(&v->boot, &req);
	v->machine.vcpu_count = cfg->ncpus;
	v->machine.mem_size_mib = cfg->mem_bytes >> 20;
	v->machine.huge_pages = cfg->backing == MEM_BACKING_HUGETLB ? API_HUGE_PAGES_2M :
				cfg->backing == MEM_BACKING_THP ? API_HUGE_PAGES_TRANSPARENT :
								  API_HUGE_PAGES_NONE;
	v->started = *cfg;
	v->state = API_STATE_RUNNING;
	pthread_mutex_unlock(&v->lock);
}

void api_vmm_stopped(struct api_vmm *v)
{
	pthread_mutex_lock(&v->lock);
	v->state = API_STATE_STOPPED;
	pthread_mutex_unlock(&v->lock);
}

int api_vmm_flush_metrics(struct api_vmm *v, struct api_err *err)
{
	int ret;

	pthread_mutex_lock(&v->lock);
	ret = api_metrics_flush(v, err);
	pthread_mutex_unlock(&v->lock);
	return ret;
}
