/* The API's VMM side: the configuration a client builds before boot, dispatch of requests, instance state, metrics. */
#ifndef KILN_API_VMM_H
#define KILN_API_VMM_H

#include <pthread.h>
#include "api/api.h"
#include "api/api_server.h"
#include "net/mmds.h"

/*
 * api_vmm sits between the HTTP server (api_server.h) and the VM: it routes
 * and validates a request with the request model (api.h), applies the
 * pre-boot / post-boot rule, keeps what PUTs configure until InstanceStart,
 * and acts on the running VM only through `ops`, so unit tests drive it
 * without /dev/kvm. One mutex serialises it: the server thread, the metrics
 * timer and the runner (api_run.c) all take it.
 */

/* GET / "state" (InstanceInfo): "Not started", "Running", "Paused"; Stopped is kiln's last moments. */
enum api_state { API_STATE_NOT_STARTED, API_STATE_RUNNING, API_STATE_PAUSED, API_STATE_STOPPED };

/* Instance ids (--id), as Firecracker's: [A-Za-z0-9-]{1,64}. */
#define API_INSTANCE_ID_MAX 64
#define API_DEFAULT_INSTANCE_ID "anonymous-instance"

/* Interval of the metrics timer (Firecracker's WRITE_METRICS_PERIOD). */
#define API_METRICS_PERIOD_S 60

/* What api_vmm needs from the VM. Each is called with the api_vmm lock held. */
struct api_vmm_ops {
	/* Build, load and ready the VM for cfg (its strings live as long as the api_vmm). 0, or -errno and err. */
	int (*start)(void *opaque, const struct vm_config *cfg, struct api_err *err);
	/* Stop every vCPU outside KVM_RUN / let them run again. 0, or -errno and err. */
	int (*pause)(void *opaque, struct api_err *err);
	int (*resume)(void *opaque, struct api_err *err);
	/* Press Ctrl-Alt-Del on the i8042. 0, or -errno and err. */
	int (*ctrl_alt_del)(void *opaque, struct api_err *err);
	/* Add the VM's counters (vCPU exits, buses, devices) to a metrics line (a json_t object). */
	void (*metrics)(void *opaque, struct json_t *line);
};

/* Latency buckets: bucket i counts requests that took < 2^i microseconds (the last one: the rest). */
#define API_LAT_BUCKETS 28
struct api_lat_stats {
	uint64_t count;
	uint64_t errors;           /* answered 4xx/5xx */
	uint64_t sum_us, max_us;
	uint64_t hist[API_LAT_BUCKETS];
};

struct api_vmm {
	pthread_mutex_t lock;
	const struct api_vmm_ops *ops;
	void *opaque;
	struct vm_config base;     /* what the command line set that the API does not (console, compat, ...) */
	char id[API_INSTANCE_ID_MAX + 1];
	enum api_state state;

	/* The configuration as PUT so far; each a validated request, kind API_BODY_NONE when unset. */
	struct api_request boot;
	struct api_machine_config machine;
	struct api_request drives[VM_MAX_DISKS];
	char drive_serials[VM_MAX_DISKS][21];   /* drive_id as the virtio-blk serial (VIRTIO_BLK_ID_BYTES) */
	unsigned ndrives;
	struct api_request entropy;
	struct api_request serial;
	struct api_request logger;
	struct api_request metrics;
	struct api_request nets[VM_MAX_NETS];   /* PUT /network-interfaces, in PUT order */
	unsigned nnets;
	struct api_request mmds_config;         /* PUT /mmds/config */
	/*
	 * The MMDS data store (api_net.c): seeded by --metadata/--ssh-key, written
	 * by PUT/PATCH /mmds, lent to the VM at start (vm_config.mmds_store).
	 */
	struct mmds mmds;
	bool mmds_ok;              /* the store exists (mmds_init succeeded) */
	bool mmds_initialized;     /* a PUT /mmds or --metadata filled it: PATCH may merge */
	size_t mmds_limit;         /* --mmds-size-limit (default MMDS_SIZE_LIMIT_DEFAULT) */
	const char *sys_net;       /* where host interfaces are looked up: "/sys/class/net" (tests: a fake) */
	char *cmdline;             /* boot_args + the root device, composed at start */
	struct vm_config started;  /* the configuration the VM booted with */

	/* Metrics: the file (PUT /metrics), the timer thread (every API_METRICS_PERIOD_S), a line counter. */
	int metrics_fd;
	unsigned metrics_period_ms;   /* API_METRICS_PERIOD_S; unit tests shorten it */
	uint64_t metrics_lines;
	pthread_t timer;
	bool timer_running;
	bool timer_quit;
	pthread_cond_t timer_cv;
	uint64_t created_ns;

	/* Requests per (endpoint, method); `unrouted` counts the ones no route matched. */
	struct api_lat_stats stats[API_EP_COUNT][API_METHOD_COUNT];
	struct api_lat_stats unrouted;
};

/* The largest PUT/PATCH body the API takes: --http-api-max-payload-size, default API_MAX_BODY. */
size_t api_vmm_max_body(const struct api_vmm *v);

/*
 * base: the command line's configuration (its kernel fields are ignored);
 * id: NULL for "anonymous-instance". 0 or -errno.
 */
int api_vmm_init(struct api_vmm *v, const struct vm_config *base, const char *id,
		 const struct api_vmm_ops *ops, void *opaque);
/* Stop the metrics timer, free the stored configuration. The VM must be gone (ops are not called). */
void api_vmm_destroy(struct api_vmm *v);

/* The api_server handler (opaque is the api_vmm): one request in, status + JSON body out, stats kept. */
void api_vmm_handle(void *opaque, const char *method, const char *path, const char *body,
		    size_t blen, uint64_t t0_ns, struct api_reply *reply);

/*
 * Run one request without HTTP (the config file, tests). 0 with *out (GET's
 * JSON, malloc'd, or NULL) or -errno with err. Takes the lock.
 */
int api_vmm_request(struct api_vmm *v, const char *method, const char *path, const char *body,
		    size_t blen, char **out, struct api_err *err);

/*
 * --config-file: a FullVmConfiguration object (GET /vm/config's shape). Each
 * member goes through the same route, validation and rules as its PUT (logger
 * first, then machine-config, boot-source, the rest); null members are
 * skipped, unknown ones refused. 0 or -errno with err ("config file: ...").
 */
int api_vmm_load_config(struct api_vmm *v, const char *text, size_t len, struct api_err *err);

/*
 * Seed the MMDS store from the command line's --metadata/--ssh-key (before
 * any request: Firecracker's --metadata). 0, or -EINVAL (400) with err.
 */
int api_vmm_mmds_seed(struct api_vmm *v, struct api_err *err);

/*
 * The VM boots from the command line (--kernel): lend it the MMDS store and
 * say which --net NICs serve it, so PUT/PATCH /mmds reach the guest. Before
 * vm_create(cfg).
 */
void api_net_lend(struct api_vmm *v, struct vm_config *cfg);

/* InstanceStart without HTTP (--config-file boots this way). 0 or -errno with err. */
int api_vmm_start(struct api_vmm *v, struct api_err *err);

/* The VM was booted outside the API (--kernel): record cfg for GET /vm/config, state Running. */
void api_vmm_started(struct api_vmm *v, const struct vm_config *cfg);
/* The VM stopped: state Stopped, ops are not called again. */
void api_vmm_stopped(struct api_vmm *v);

/* Write one metrics line now. 0; -ENOENT when no metrics file is set; -errno on a write error. */
int api_vmm_flush_metrics(struct api_vmm *v, struct api_err *err);

/* "Not started", "Running", "Paused", "Stopped". */
const char *api_state_str(enum api_state s);
/* 0 if id is [A-Za-z0-9-]{1,64}. */
int api_check_instance_id(const char *id);

/* --- api_json.c: the JSON the API answers and the config file --- */

/* Bodies of GET /, GET /machine-config, GET /vm/config, GET /version (malloc'd, or NULL on ENOMEM). Lock held. */
char *api_json_instance_info(const struct api_vmm *v);
char *api_json_machine_config(const struct api_vmm *v);
char *api_json_vm_config(const struct api_vmm *v);
char *api_json_version(void);

/* --- api_net.c: network interfaces and MMDS (lock held) --- */

int api_net_put(struct api_vmm *v, struct api_request *req, struct api_err *err);
int api_net_patch(struct api_vmm *v, const struct api_request *req, struct api_err *err);
/* GET (*out: the store as JSON), PUT (replace), PATCH (RFC 7396 merge) /mmds. */
int api_mmds_request(struct api_vmm *v, struct api_request *req, char **out, struct api_err *err);
int api_mmds_config_put(struct api_vmm *v, struct api_request *req, struct api_err *err);
/* Create the (empty) store at api_vmm_init. 0 or -ENOMEM. */
int api_mmds_init(struct api_vmm *v);
/* InstanceStart: the interfaces into cfg->nets (the API's first, then --net's), the store lent. */
int api_net_compose(struct api_vmm *v, struct vm_config *cfg, struct api_err *err);
/*
 * RFC 7396 JSON merge patch: apply patch to target (a reference the call
 * takes; NULL is fine) and return the result (a new reference), or NULL on
 * ENOMEM. A null member deletes, an object merges, anything else replaces.
 */
json_t *api_json_merge_patch(json_t *target, json_t *patch);
/* GET /vm/config's "network-interfaces" (array) and "mmds-config" (object or null). */
json_t *api_json_nets(const struct api_vmm *v);
json_t *api_json_mmds_config(const struct api_vmm *v);

/* --- api_metrics.c --- */

/* Add one request to the stats (lock held). ep < 0: the request did not route. */
void api_stats_record(struct api_vmm *v, int ep, int method, int status, uint64_t us);
/* Latency percentile (0 < pct <= 100) in microseconds from a histogram: the upper bound of its bucket. */
uint64_t api_stats_percentile(const struct api_lat_stats *s, unsigned pct);
/* One metrics line: a JSON object as malloc'd text (without the newline), lock held. */
char *api_metrics_line(struct api_vmm *v);
/* Append one line to the metrics file (lock held). 0; -ENOENT (400) without PUT /metrics; -errno. */
int api_metrics_flush(struct api_vmm *v, struct api_err *err);
/*
 * Turn --stats text of one device ("uart: tx=12 rx=3", "acpi_pm: sleeps_ignored 0",
 * "virtio-blk: kicks=4 q0[chains=3 faults=0]") into numeric members of obj:
 * "k=N" and "k N" pairs, "q0[...]" prefixes as "q0.k"; other words are skipped.
 * Bounded by len; returns how many counters were added.
 */
unsigned api_parse_counters(const char *text, size_t len, struct json_t *obj);
/* Start the 60 s timer thread if it is not running (lock held). 0 or -errno. */
int api_metrics_timer_start(struct api_vmm *v);
/* Stop and join it (lock NOT held). */
void api_metrics_timer_stop(struct api_vmm *v);

#endif
