/* The Firecracker-compatible REST API's request model: routing, body validation, faults, phase rules. */
#ifndef KILN_API_H
#define KILN_API_H

/*
 * This layer is pure: it turns (method, path, body) into a typed request or a
 * 4xx fault, and knows nothing of sockets or of the running VM. The contract
 * is Firecracker's OpenAPI file (swagger 2.0, "Firecracker API" 1.17.0-dev);
 * definitions are named as there (BootSource, MachineConfiguration, ...).
 * docs/api.md lists what is implemented and the rule for every field.
 *
 * Every client-chosen input is bounded here, before anything else sees it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/vm.h"

/* Bodies above this are refused before parsing (Firecracker's default is 51200). */
#define API_MAX_BODY       (64 * 1024)
/*
 * Deepest object/array nesting accepted in a body, checked before jansson
 * parses it (jansson's own limit, JSON_PARSER_MAX_DEPTH, is 2048 recursive
 * frames). The deepest definition (Drive.rate_limiter.bandwidth.size) needs 3;
 * the rest of the budget is for MMDS contents.
 */
#define API_MAX_DEPTH      32
#define API_MAX_PATH       256       /* request path (URI) length */
#define API_MAX_METHOD     16        /* HTTP method token length */
#define API_ID_MAX         64        /* resource ids: [A-Za-z0-9_]{1,64} */
#define API_FILE_PATH_MAX  4095      /* host paths in bodies: PATH_MAX - 1 */
#define API_BOOT_ARGS_MAX  2047      /* x86 COMMAND_LINE_SIZE (2048) - NUL, as Firecracker */
#define API_VCPU_MAX       32        /* MachineConfiguration.vcpu_count maximum */
#define API_IFNAME_MAX     15        /* Linux IFNAMSIZ - 1 */
#define API_MAX_LIST       64        /* MmdsConfig.network_interfaces entries */
#define API_MAX_PROPERTIES 32        /* Metrics.properties entries */
#define API_FAULT_MAX      512       /* fault message length, NUL included */

/* GET /machine-config before any PUT: "vCPU count (=1), memory size (=128 MiB)". */
#define API_DEFAULT_VCPUS    1
#define API_DEFAULT_MEM_MIB  128

enum api_method { API_GET, API_PUT, API_PATCH, API_METHOD_COUNT };

/* The paths kiln serves; every other path of the OpenAPI file answers 400. */
enum api_endpoint {
	API_EP_ROOT,            /* GET /                        InstanceInfo */
	API_EP_ACTIONS,         /* PUT /actions                 InstanceActionInfo */
	API_EP_BOOT_SOURCE,     /* PUT /boot-source             BootSource */
	API_EP_MACHINE_CONFIG,  /* GET|PUT|PATCH /machine-config MachineConfiguration */
	API_EP_DRIVES,          /* PUT|PATCH /drives/{drive_id} Drive, PartialDrive */
	API_EP_NETWORK_IFACES,  /* PUT|PATCH /network-interfaces/{iface_id} */
	API_EP_LOGGER,          /* PUT /logger                  Logger */
	API_EP_METRICS,         /* PUT /metrics                 Metrics */
	API_EP_MMDS,            /* GET|PUT|PATCH /mmds          MmdsContentsObject */
	API_EP_MMDS_CONFIG,     /* PUT /mmds/config             MmdsConfig */
	API_EP_ENTROPY,         /* PUT /entropy                 EntropyDevice */
	API_EP_SERIAL,          /* PUT /serial                  SerialDevice */
	API_EP_VM,              /* PATCH /vm                    Vm */
	API_EP_VM_CONFIG,       /* GET /vm/config               FullVmConfiguration */
	API_EP_VERSION,         /* GET /version                 FirecrackerVersion */
	API_EP_COUNT
};

struct api_route {
	enum api_endpoint ep;
	enum api_method method;
	char id[API_ID_MAX + 1];   /* {drive_id} / {iface_id}; "" for other paths */
};

/* Why a request was refused: an HTTP status (400, 500 on ENOMEM) and the fault message. */
struct api_err {
	int status;
	char msg[API_FAULT_MAX];
};

/*
 * Parsed bodies. Each struct has `present`, bit (1u << FIELD) set for every
 * field the client sent (JSON null counts as absent, as serde's Option does).
 * Absent fields hold the OpenAPI default (enums list their default first).
 * Strings are heap copies owned by the struct; ints are range-checked.
 */
enum { API_TB_SIZE, API_TB_REFILL_TIME, API_TB_ONE_TIME_BURST };
struct api_token_bucket {          /* TokenBucket */
	unsigned present;
	uint64_t size;
	uint64_t refill_time;          /* ms */
	uint64_t one_time_burst;
};

enum { API_RL_BANDWIDTH, API_RL_OPS };
struct api_rate_limiter {          /* RateLimiter */
	unsigned present;
	struct api_token_bucket bandwidth;
	struct api_token_bucket ops;
};

enum { API_BS_KERNEL_IMAGE_PATH, API_BS_BOOT_ARGS, API_BS_INITRD_PATH };
struct api_boot_source {           /* BootSource */
	unsigned present;
	char *kernel_image_path;
	char *boot_args;               /* NULL: kiln's default for the kernel kind */
	char *initrd_path;
};

enum api_cpu_template {            /* CpuTemplate */
	API_CPU_TEMPLATE_NONE, API_CPU_TEMPLATE_C3, API_CPU_TEMPLATE_T2, API_CPU_TEMPLATE_T2S,
	API_CPU_TEMPLATE_T2CL, API_CPU_TEMPLATE_T2A, API_CPU_TEMPLATE_V1N1,
};
enum api_huge_pages { API_HUGE_PAGES_NONE, API_HUGE_PAGES_TRANSPARENT, API_HUGE_PAGES_2M };
enum { API_MC_VCPU_COUNT, API_MC_MEM_SIZE_MIB, API_MC_SMT, API_MC_TRACK_DIRTY_PAGES,
       API_MC_CPU_TEMPLATE, API_MC_HUGE_PAGES };
struct api_machine_config {        /* MachineConfiguration */
	unsigned present;
	uint64_t vcpu_count;           /* 1..32; 1 or even with smt */
	uint64_t mem_size_mib;         /* kiln's --memory bounds; even with 2M pages */
	bool smt;
	bool track_dirty_pages;
	enum api_cpu_template cpu_template;
	enum api_huge_pages huge_pages;
};

enum api_cache_type { API_CACHE_UNSAFE, API_CACHE_WRITEBACK };
enum api_io_engine { API_IO_SYNC, API_IO_ASYNC };
enum { API_DRV_DRIVE_ID, API_DRV_PATH_ON_HOST, API_DRV_IS_ROOT_DEVICE, API_DRV_IS_READ_ONLY,
       API_DRV_PARTUUID, API_DRV_CACHE_TYPE, API_DRV_IO_ENGINE, API_DRV_RATE_LIMITER,
       API_DRV_SOCKET };
struct api_drive {                 /* Drive (PUT) */
	unsigned present;
	char *drive_id;
	char *path_on_host;
	bool is_root_device;
	bool is_read_only;
	char *partuuid;                /* [0-9A-Za-z=/-]{1,64}: it lands on the kernel cmdline */
	enum api_cache_type cache_type;
	enum api_io_engine io_engine;
	struct api_rate_limiter rate_limiter;
};

enum { API_PDRV_DRIVE_ID, API_PDRV_PATH_ON_HOST, API_PDRV_RATE_LIMITER };
struct api_drive_patch {           /* PartialDrive (PATCH) */
	unsigned present;
	char *drive_id;
	char *path_on_host;
	struct api_rate_limiter rate_limiter;
};

enum { API_NET_IFACE_ID, API_NET_HOST_DEV_NAME, API_NET_GUEST_MAC, API_NET_MTU,
       API_NET_RX_RATE_LIMITER, API_NET_TX_RATE_LIMITER };
struct api_net {                   /* NetworkInterface (PUT) */
	unsigned present;
	char *iface_id;
	char *host_dev_name;           /* a Linux interface name: 1..15 bytes, no '/', ':', space */
	uint8_t guest_mac[6];          /* "xx:xx:xx:xx:xx:xx" */
	uint64_t mtu;                  /* 68..65535 */
	struct api_rate_limiter rx_rate_limiter;
	struct api_rate_limiter tx_rate_limiter;
};

enum { API_PNET_IFACE_ID, API_PNET_RX_RATE_LIMITER, API_PNET_TX_RATE_LIMITER };
struct api_net_patch {             /* PartialNetworkInterface (PATCH) */
	unsigned present;
	char *iface_id;
	struct api_rate_limiter rx_rate_limiter;
	struct api_rate_limiter tx_rate_limiter;
};

enum api_action_type { API_ACTION_FLUSH_METRICS, API_ACTION_INSTANCE_START,
		       API_ACTION_SEND_CTRL_ALT_DEL };
enum { API_ACT_ACTION_TYPE };
struct api_action {                /* InstanceActionInfo */
	unsigned present;
	enum api_action_type action_type;
};

enum api_vm_state { API_VM_PAUSED, API_VM_RESUMED };
enum { API_VM_STATE };
struct api_vm {                    /* Vm */
	unsigned present;
	enum api_vm_state state;
};

enum api_log_level { API_LOG_INFO, API_LOG_ERROR, API_LOG_WARNING, API_LOG_DEBUG,
		     API_LOG_TRACE, API_LOG_OFF };
enum { API_LOG_LEVEL, API_LOG_LOG_PATH, API_LOG_SHOW_LEVEL, API_LOG_SHOW_LOG_ORIGIN,
       API_LOG_MODULE };
struct api_logger {                /* Logger */
	unsigned present;
	enum api_log_level level;      /* case-insensitive in the body */
	char *log_path;
	bool show_level;
	bool show_log_origin;
	char *module;                  /* [A-Za-z0-9_:]{1,256} */
};

struct api_kv { char *key; char *value; };
struct api_str_map { struct api_kv *v; size_t n; };
struct api_str_list { char **v; size_t n; };

enum { API_MET_METRICS_PATH, API_MET_EMIT_ID, API_MET_PROPERTIES };
struct api_metrics {               /* Metrics */
	unsigned present;
	char *metrics_path;
	bool emit_id;
	struct api_str_map properties; /* printable ASCII: keys 1..64, values 0..256 bytes */
};

enum api_mmds_version { API_MMDS_V1, API_MMDS_V2 };
enum { API_MMDS_VERSION, API_MMDS_NETWORK_INTERFACES, API_MMDS_IPV4_ADDRESS,
       API_MMDS_IMDS_COMPAT };
struct api_mmds_config {           /* MmdsConfig */
	unsigned present;
	enum api_mmds_version version;
	struct api_str_list network_interfaces; /* ids, 1..API_MAX_LIST of them */
	uint8_t ipv4_address[4];       /* link-local per the OpenAPI format; default 169.254.169.254 */
	bool imds_compat;
};

enum { API_ENT_RATE_LIMITER };
struct api_entropy {               /* EntropyDevice */
	unsigned present;
	struct api_rate_limiter rate_limiter;
};

enum { API_SER_SERIAL_OUT_PATH, API_SER_RATE_LIMITER };
struct api_serial {                /* SerialDevice */
	unsigned present;
	char *serial_out_path;
	struct api_token_bucket rate_limiter;
};

/* Which member of api_request.u a body filled. */
enum api_body_kind {
	API_BODY_NONE,                 /* GET */
	API_BODY_ACTION, API_BODY_BOOT_SOURCE, API_BODY_MACHINE_CONFIG, API_BODY_DRIVE,
	API_BODY_DRIVE_PATCH, API_BODY_NET, API_BODY_NET_PATCH, API_BODY_LOGGER,
	API_BODY_METRICS, API_BODY_MMDS, API_BODY_MMDS_CONFIG, API_BODY_ENTROPY,
	API_BODY_SERIAL, API_BODY_VM,
};

struct json_t;   /* jansson's; only MMDS contents keep a JSON tree */

struct api_request {
	struct api_route route;
	enum api_body_kind kind;
	union {
		struct api_action action;
		struct api_boot_source boot;
		struct api_machine_config machine;  /* PUT: complete; PATCH: `present` says what */
		struct api_drive drive;
		struct api_drive_patch drive_patch;
		struct api_net net;
		struct api_net_patch net_patch;
		struct api_logger logger;
		struct api_metrics metrics;
		struct json_t *mmds;                /* a JSON object; one reference owned */
		struct api_mmds_config mmds_config;
		struct api_entropy entropy;
		struct api_serial serial;
		struct api_vm vm;
	} u;
};

/* --- api_fault.c --- */

/* Fill err with status and a printf-style message (truncated to API_FAULT_MAX - 1). */
void api_err_set(struct api_err *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Copy at most `max` bytes of client text for echoing in a message: printable
 * ASCII kept, anything else '?', "..." when cut. dst gets max + 4 bytes at most.
 * Returns dst.
 */
char *api_echo(char *dst, size_t dstlen, const char *src, size_t srclen, size_t max);

/*
 * The Error definition's body, {"fault_message":"..."}, JSON-escaped by jansson.
 * A message that is not valid UTF-8 has its non-ASCII bytes replaced by '?'.
 * Returns a malloc'd NUL-terminated string (free()), or NULL on ENOMEM.
 */
char *api_fault_body(const char *msg);

/* --- api_route.c --- */

/* "GET", "PUT", "PATCH"; "?" for anything else. */
const char *api_method_str(enum api_method m);
/* The path template, e.g. "/drives/{drive_id}"; "?" for an unknown endpoint. */
const char *api_endpoint_str(enum api_endpoint ep);

/*
 * Route a request line: method and path are length-delimited bytes straight
 * from the client. 0 and *out filled, or -EINVAL with a 400 in err: unknown
 * path or method ("Invalid request method and/or path: ..."), missing or bad
 * {id}, over-long method or path, NUL bytes.
 */
int api_route(const char *method, size_t mlen, const char *path, size_t plen,
	      struct api_route *out, struct api_err *err);

/* 0 if id is [A-Za-z0-9_]{1,API_ID_MAX}, else -EINVAL with a 400 in err (err may be NULL). */
int api_check_id(const char *id, size_t len, struct api_err *err);

/*
 * May (ep, method) run now? The yaml's "Pre-boot only" / "Post-boot only",
 * completed from Firecracker's pre-boot and runtime controllers (logger,
 * metrics, serial, mmds/config and entropy are pre-boot there too).
 * 0 allowed; -EPERM with *why = Firecracker's message (answer 400);
 * -EINVAL for an endpoint/method pair that does not exist.
 */
int api_check_phase(enum api_endpoint ep, enum api_method method, bool started,
		    const char **why);
/* The same for PUT /actions, whose rule depends on action_type. */
int api_check_action_phase(enum api_action_type action, bool started, const char **why);

/* --- api_validate.c --- */

/*
 * Parse and validate a body for a routed request (body may be NULL when
 * blen is 0). GET must have no body, PUT and PATCH must. Size and nesting are
 * checked before jansson sees the bytes; unknown fields, duplicate keys,
 * wrong JSON types, missing required fields, out-of-range values and bad
 * strings are refused; a path {id} must equal the body's id.
 * 0 and *req filled (free with api_request_free), or -EINVAL (400) /
 * -ENOMEM (500) with err filled and nothing left to free.
 */
int api_parse_body(const struct api_route *route, const char *body, size_t blen, size_t max_body,
		   struct api_request *req, struct api_err *err);
void api_request_free(struct api_request *req);

/* Free the strings of a struct api_boot_source (for one moved out of a request). */
void api_boot_source_free(struct api_boot_source *bs);

/*
 * Apply a PATCH /machine-config body to cur: the merged configuration is
 * checked as a whole (smt needs 1 or an even vcpu_count; 2M pages an even
 * mem_size_mib) and cur changes only if it passes. 0 or -EINVAL (400).
 */
int api_machine_config_patch(struct api_machine_config *cur,
			     const struct api_machine_config *patch, struct api_err *err);

/*
 * Refuse what kiln cannot honour yet (smt, track_dirty_pages, a CPU template
 * other than None) rather than ignore it: a client relying on it would be
 * misled. 0 or -EINVAL (400).
 */
int api_machine_config_supported(const struct api_machine_config *mc, struct api_err *err);

/* The OpenAPI spelling of an enum value ("2M", "Writeback", "Info", ...); "?" if out of range. */
enum api_enum { API_ENUM_CPU_TEMPLATE, API_ENUM_HUGE_PAGES, API_ENUM_CACHE_TYPE, API_ENUM_IO_ENGINE,
		API_ENUM_LOG_LEVEL, API_ENUM_ACTION, API_ENUM_VM_STATE };
const char *api_enum_str(enum api_enum e, unsigned v);

/*
 * Map a validated BootSource and MachineConfiguration (NULL: the defaults,
 * 1 vCPU and 128 MiB) onto cfg's kernel_path, initrd_path, cmdline, ncpus,
 * mem_bytes and backing. The strings are borrowed from bs: cfg is valid until
 * api_boot_source_free(bs). Settings kiln cannot honour yet (smt,
 * track_dirty_pages, a CPU template) are refused, not ignored.
 * 0, or -EINVAL (400) with cfg untouched.
 */
int api_apply_config(const struct api_boot_source *bs, const struct api_machine_config *mc,
		     struct vm_config *cfg, struct api_err *err);

#endif
