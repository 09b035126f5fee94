/* API bodies: parse JSON with jansson and validate it against the OpenAPI definitions into typed structs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include "api/api.h"
#include "cli/options.h"   /* KILN_MIN_MEMORY_MIB / KILN_MAX_MEMORY_MIB: the API and --memory agree */

/*
 * One table per OpenAPI definition drives parsing, validation and freeing.
 * Firecracker deserializes with serde's deny_unknown_fields, so a key that is
 * not in the table is an error, as are duplicate keys (JSON_REJECT_DUPLICATES).
 */
enum fkind {
	FK_STR,          /* string, checked by `str` */
	FK_BOOL,
	FK_U64,          /* integer in [min, max] (JSON reals are refused: serde wants an integer) */
	FK_ENUM,         /* string from `names` (index 0 is the default); stored as unsigned */
	FK_OBJ,          /* nested definition `sub` */
	FK_MAC,          /* "xx:xx:xx:xx:xx:xx" into uint8_t[6] */
	FK_IPV4_LL,      /* MmdsConfig.ipv4_address into uint8_t[4] */
	FK_ID_LIST,      /* array of resource ids into struct api_str_list */
	FK_STR_MAP,      /* object of strings into struct api_str_map */
	FK_UNSUPPORTED,  /* a field of the definition kiln refuses, with `why` */
};

enum fstr {
	S_PATH,          /* host path: 1..4095 bytes, no control characters */
	S_ID,            /* [A-Za-z0-9_]{1,64} */
	S_CMDLINE,       /* printable ASCII, at most API_BOOT_ARGS_MAX */
	S_IFNAME,        /* Linux dev_valid_name(), ASCII */
	S_PARTUUID,      /* [0-9A-Za-z=/-]{1,64}: no space can reach the kernel cmdline */
	S_MODULE,        /* [A-Za-z0-9_:]{1,256} */
};

struct schema;

struct field {
	const char *name;
	unsigned char kind;        /* enum fkind */
	unsigned char str;         /* enum fstr, FK_STR */
	bool required;
	bool nocase;               /* FK_ENUM: Logger.level is case-insensitive */
	size_t off;                /* offset of the value in the target struct */
	uint64_t min, max;         /* FK_U64 */
	const char *const *names;  /* FK_ENUM */
	unsigned nnames;
	const struct schema *sub;  /* FK_OBJ */
	const char *why;           /* FK_UNSUPPORTED */
};

struct schema {
	const char *name;          /* the OpenAPI definition */
	const struct field *f;     /* indexed by the API_* field enums of api.h */
	unsigned n;
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define SCHEMA(nm, arr) { nm, arr, NELEM(arr) }
/* Every body struct starts with `present`, which parse_object() fills. */
#define PRESENT_FIRST(t) _Static_assert(offsetof(t, present) == 0, #t ": present first")
#define ENUM_IS_UNSIGNED(t) _Static_assert(sizeof(t) == sizeof(unsigned), #t ": stored as unsigned")

ENUM_IS_UNSIGNED(enum api_cpu_template);
ENUM_IS_UNSIGNED(enum api_huge_pages);
ENUM_IS_UNSIGNED(enum api_cache_type);
ENUM_IS_UNSIGNED(enum api_io_engine);
ENUM_IS_UNSIGNED(enum api_action_type);
ENUM_IS_UNSIGNED(enum api_vm_state);
ENUM_IS_UNSIGNED(enum api_log_level);
ENUM_IS_UNSIGNED(enum api_mmds_version);

#define STR(t, fld, s, req) { .name = #fld, .kind = FK_STR, .str = (s), .required = (req), \
			      .off = offsetof(t, fld) }
#define BOOL(t, fld) { .name = #fld, .kind = FK_BOOL, .off = offsetof(t, fld) }
#define U64(t, fld, lo, hi, req) { .name = #fld, .kind = FK_U64, .required = (req), \
				   .off = offsetof(t, fld), .min = (lo), .max = (hi) }
#define ENUM(t, fld, arr, req) { .name = #fld, .kind = FK_ENUM, .required = (req), \
				 .off = offsetof(t, fld), .names = (arr), .nnames = NELEM(arr) }
#define OBJ(t, fld, sch) { .name = #fld, .kind = FK_OBJ, .off = offsetof(t, fld), .sub = &(sch) }

/* TokenBucket: size, refill_time, one_time_burst are int64 with minimum 0. */
PRESENT_FIRST(struct api_token_bucket);
static const struct field token_bucket_f[] = {
	[API_TB_SIZE]           = U64(struct api_token_bucket, size, 0, INT64_MAX, true),
	[API_TB_REFILL_TIME]    = U64(struct api_token_bucket, refill_time, 0, INT64_MAX, true),
	[API_TB_ONE_TIME_BURST] = U64(struct api_token_bucket, one_time_burst, 0, INT64_MAX, false),
};
static const struct schema token_bucket_s = SCHEMA("TokenBucket", token_bucket_f);

PRESENT_FIRST(struct api_rate_limiter);
static const struct field rate_limiter_f[] = {
	[API_RL_BANDWIDTH] = OBJ(struct api_rate_limiter, bandwidth, token_bucket_s),
	[API_RL_OPS]       = OBJ(struct api_rate_limiter, ops, token_bucket_s),
};
static const struct schema rate_limiter_s = SCHEMA("RateLimiter", rate_limiter_f);

PRESENT_FIRST(struct api_boot_source);
static const struct field boot_source_f[] = {
	[API_BS_KERNEL_IMAGE_PATH] = STR(struct api_boot_source, kernel_image_path, S_PATH, true),
	[API_BS_BOOT_ARGS]         = STR(struct api_boot_source, boot_args, S_CMDLINE, false),
	[API_BS_INITRD_PATH]       = STR(struct api_boot_source, initrd_path, S_PATH, false),
};
static const struct schema boot_source_s = SCHEMA("BootSource", boot_source_f);

/* CpuTemplate, default "None" first; HugePages, default "None" first. */
static const char *const cpu_template_names[] = {
	[API_CPU_TEMPLATE_NONE] = "None", [API_CPU_TEMPLATE_C3] = "C3", [API_CPU_TEMPLATE_T2] = "T2",
	[API_CPU_TEMPLATE_T2S] = "T2S", [API_CPU_TEMPLATE_T2CL] = "T2CL",
	[API_CPU_TEMPLATE_T2A] = "T2A", [API_CPU_TEMPLATE_V1N1] = "V1N1",
};
static const char *const huge_pages_names[] = {
	[API_HUGE_PAGES_NONE] = "None", [API_HUGE_PAGES_TRANSPARENT] = "Transparent",
	[API_HUGE_PAGES_2M] = "2M",
};

PRESENT_FIRST(struct api_machine_config);
static const struct field machine_f[] = {
	[API_MC_VCPU_COUNT]   = U64(struct api_machine_config, vcpu_count, 1, API_VCPU_MAX, true),
	[API_MC_MEM_SIZE_MIB] = U64(struct api_machine_config, mem_size_mib,
				    KILN_MIN_MEMORY_MIB, KILN_MAX_MEMORY_MIB, true),
	[API_MC_SMT]               = BOOL(struct api_machine_config, smt),
	[API_MC_TRACK_DIRTY_PAGES] = BOOL(struct api_machine_config, track_dirty_pages),
	[API_MC_CPU_TEMPLATE] = ENUM(struct api_machine_config, cpu_template, cpu_template_names, false),
	[API_MC_HUGE_PAGES]   = ENUM(struct api_machine_config, huge_pages, huge_pages_names, false),
};
static const struct schema machine_s = SCHEMA("MachineConfiguration", machine_f);

/* PATCH /machine-config: the same definition with every field optional. */
static const struct field machine_patch_f[] = {
	[API_MC_VCPU_COUNT]   = U64(struct api_machine_config, vcpu_count, 1, API_VCPU_MAX, false),
	[API_MC_MEM_SIZE_MIB] = U64(struct api_machine_config, mem_size_mib,
				    KILN_MIN_MEMORY_MIB, KILN_MAX_MEMORY_MIB, false),
	[API_MC_SMT]               = BOOL(struct api_machine_config, smt),
	[API_MC_TRACK_DIRTY_PAGES] = BOOL(struct api_machine_config, track_dirty_pages),
	[API_MC_CPU_TEMPLATE] = ENUM(struct api_machine_config, cpu_template, cpu_template_names, false),
	[API_MC_HUGE_PAGES]   = ENUM(struct api_machine_config, huge_pages, huge_pages_names, false),
};
static const struct schema machine_patch_s = SCHEMA("MachineConfiguration", machine_patch_f);

static const char *const cache_type_names[] = {
	[API_CACHE_UNSAFE] = "Unsafe", [API_CACHE_WRITEBACK] = "Writeback",
};
static const char *const io_engine_names[] = { [API_IO_SYNC] = "Sync", [API_IO_ASYNC] = "Async" };

PRESENT_FIRST(struct api_drive);
static const struct field drive_f[] = {
	[API_DRV_DRIVE_ID]       = STR(struct api_drive, drive_id, S_ID, true),
	/* Required unless `socket` (vhost-user-block), which kiln refuses: checked after. */
	[API_DRV_PATH_ON_HOST]   = STR(struct api_drive, path_on_host, S_PATH, false),
	[API_DRV_IS_ROOT_DEVICE] = { .name = "is_root_device", .kind = FK_BOOL, .required = true,
				     .off = offsetof(struct api_drive, is_root_device) },
	[API_DRV_IS_READ_ONLY]   = BOOL(struct api_drive, is_read_only),
	[API_DRV_PARTUUID]       = STR(struct api_drive, partuuid, S_PARTUUID, false),
	[API_DRV_CACHE_TYPE]     = ENUM(struct api_drive, cache_type, cache_type_names, false),
	[API_DRV_IO_ENGINE]      = ENUM(struct api_drive, io_engine, io_engine_names, false),
	[API_DRV_RATE_LIMITER]   = OBJ(struct api_drive, rate_limiter, rate_limiter_s),
	[API_DRV_SOCKET]         = { .name = "socket", .kind = FK_UNSUPPORTED,
				     .why = "vhost-user-block is not supported by kiln" },
};
static const struct schema drive_s = SCHEMA("Drive", drive_f);

PRESENT_FIRST(struct api_drive_patch);
static const struct field drive_patch_f[] = {
	[API_PDRV_DRIVE_ID]     = STR(struct api_drive_patch, drive_id, S_ID, true),
	[API_PDRV_PATH_ON_HOST] = STR(struct api_drive_patch, path_on_host, S_PATH, false),
	[API_PDRV_RATE_LIMITER] = OBJ(struct api_drive_patch, rate_limiter, rate_limiter_s),
};
static const struct schema drive_patch_s = SCHEMA("PartialDrive", drive_patch_f);

PRESENT_FIRST(struct api_net);
static const struct field net_f[] = {
	[API_NET_IFACE_ID]        = STR(struct api_net, iface_id, S_ID, true),
	[API_NET_HOST_DEV_NAME]   = STR(struct api_net, host_dev_name, S_IFNAME, true),
	[API_NET_GUEST_MAC]       = { .name = "guest_mac", .kind = FK_MAC,
				      .off = offsetof(struct api_net, guest_mac) },
	[API_NET_MTU]             = U64(struct api_net, mtu, 68, 65535, false),
	[API_NET_RX_RATE_LIMITER] = OBJ(struct api_net, rx_rate_limiter, rate_limiter_s),
	[API_NET_TX_RATE_LIMITER] = OBJ(struct api_net, tx_rate_limiter, rate_limiter_s),
};
static const struct schema net_s = SCHEMA("NetworkInterface", net_f);

PRESENT_FIRST(struct api_net_patch);
static const struct field net_patch_f[] = {
	[API_PNET_IFACE_ID]        = STR(struct api_net_patch, iface_id, S_ID, true),
	[API_PNET_RX_RATE_LIMITER] = OBJ(struct api_net_patch, rx_rate_limiter, rate_limiter_s),
	[API_PNET_TX_RATE_LIMITER] = OBJ(struct api_net_patch, tx_rate_limiter, rate_limiter_s),
};
static const struct schema net_patch_s = SCHEMA("PartialNetworkInterface", net_patch_f);

static const char *const action_names[] = {
	[API_ACTION_FLUSH_METRICS] = "FlushMetrics", [API_ACTION_INSTANCE_START] = "InstanceStart",
	[API_ACTION_SEND_CTRL_ALT_DEL] = "SendCtrlAltDel",
};
PRESENT_FIRST(struct api_action);
static const struct field action_f[] = {
	[API_ACT_ACTION_TYPE] = ENUM(struct api_action, action_type, action_names, true),
};
static const struct schema action_s = SCHEMA("InstanceActionInfo", action_f);

static const char *const vm_state_names[] = { [API_VM_PAUSED] = "Paused", [API_VM_RESUMED] = "Resumed" };
PRESENT_FIRST(struct api_vm);
static const struct field vm_f[] = {
	[API_VM_STATE] = ENUM(struct api_vm, state, vm_state_names, true),
};
static const struct schema vm_s = SCHEMA("Vm", vm_f);

static const char *const log_level_names[] = {
	[API_LOG_INFO] = "Info", [API_LOG_ERROR] = "Error", [API_LOG_WARNING] = "Warning",
	[API_LOG_DEBUG] = "Debug", [API_LOG_TRACE] = "Trace", [API_LOG_OFF] = "Off",
};
PRESENT_FIRST(struct api_logger);
static const struct field logger_f[] = {
	[API_LOG_LEVEL] = { .name = "level", .kind = FK_ENUM, .nocase = true,
			    .off = offsetof(struct api_logger, level),
			    .names = log_level_names, .nnames = NELEM(log_level_names) },
	[API_LOG_LOG_PATH]        = STR(struct api_logger, log_path, S_PATH, false),
	[API_LOG_SHOW_LEVEL]      = BOOL(struct api_logger, show_level),
	[API_LOG_SHOW_LOG_ORIGIN] = BOOL(struct api_logger, show_log_origin),
	[API_LOG_MODULE]          = STR(struct api_logger, module, S_MODULE, false),
};
static const struct schema logger_s = SCHEMA("Logger", logger_f);

PRESENT_FIRST(struct api_metrics);
static const struct field metrics_f[] = {
	[API_MET_METRICS_PATH] = STR(struct api_metrics, metrics_path, S_PATH, true),
	[API_MET_EMIT_ID]      = BOOL(struct api_metrics, emit_id),
	[API_MET_PROPERTIES]   = { .name = "properties", .kind = FK_STR_MAP,
				   .off = offsetof(struct api_metrics, properties) },
};
static const struct schema metrics_s = SCHEMA("Metrics", metrics_f);

static const char *const mmds_version_names[] = { [API_MMDS_V1] = "V1", [API_MMDS_V2] = "V2" };
PRESENT_FIRST(struct api_mmds_config);
static const struct field mmds_config_f[] = {
	[API_MMDS_VERSION] = ENUM(struct api_mmds_config, version, mmds_version_names, false),
	[API_MMDS_NETWORK_INTERFACES] = { .name = "network_interfaces", .kind = FK_ID_LIST,
					  .required = true,
					  .off = offsetof(struct api_mmds_config, network_interfaces) },
	[API_MMDS_IPV4_ADDRESS] = { .name = "ipv4_address", .kind = FK_IPV4_LL,
				    .off = offsetof(struct api_mmds_config, ipv4_address) },
	[API_MMDS_IMDS_COMPAT] = BOOL(struct api_mmds_config, imds_compat),
};
static const struct schema mmds_config_s = SCHEMA("MmdsConfig", mmds_config_f);

PRESENT_FIRST(struct api_entropy);
static const struct field entropy_f[] = {
	[API_ENT_RATE_LIMITER] = OBJ(struct api_entropy, rate_limiter, rate_limiter_s),
};
static const struct schema entropy_s = SCHEMA("EntropyDevice", entropy_f);

PRESENT_FIRST(struct api_serial);
static const struct field serial_f[] = {
	[API_SER_SERIAL_OUT_PATH] = STR(struct api_serial, serial_out_path, S_PATH, false),
	/* SerialDevice.rate_limiter is a TokenBucket, not a RateLimiter. */
	[API_SER_RATE_LIMITER]    = OBJ(struct api_serial, rate_limiter, token_bucket_s),
};
static const struct schema serial_s = SCHEMA("SerialDevice", serial_f);

/* ---- string rules ---- */

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_print(char c)
{
	return (unsigned char)c >= 0x20 && (unsigned char)c < 0x7f;
}

/* NULL if s[0..len) obeys rule r, else why not. jansson has already checked UTF-8 and NULs. */
static const char *check_str(enum fstr r, const char *s, size_t len)
{
	size_t i;

	switch (r) {
	case S_PATH:
		if (!len)
			return "must not be empty";
		if (len > API_FILE_PATH_MAX)
			return "is longer than 4095 bytes";
		for (i = 0; i < len; i++)
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				return "contains a control character";
		return NULL;
	case S_ID:
		if (!len || len > API_ID_MAX)
			return "must be 1 to 64 characters";
		for (i = 0; i < len; i++)
			if (!is_alnum(s[i]) && s[i] != '_')
				return "may only contain alphanumeric characters and underscores";
		return NULL;
	case S_CMDLINE:
		/* Firecracker's Cmdline: printable ASCII, COMMAND_LINE_SIZE on x86. */
		if (len > API_BOOT_ARGS_MAX)
			return "is longer than 2047 bytes";
		for (i = 0; i < len; i++)
			if (!is_print(s[i]))
				return "may only contain printable ASCII characters";
		return NULL;
	case S_IFNAME:
		/* Linux dev_valid_name(): < IFNAMSIZ, not "." or "..", no '/', ':' or space. */
		if (!len || len > API_IFNAME_MAX)
			return "must be 1 to 15 bytes (IFNAMSIZ)";
		if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
			return "must not be \".\" or \"..\"";
		for (i = 0; i < len; i++)
			if (!is_print(s[i]) || s[i] == '/' || s[i] == ':' || s[i] == ' ')
				return "is not a valid interface name";
		return NULL;
	case S_PARTUUID:
		if (!len || len > 64)
			return "must be 1 to 64 characters";
		for (i = 0; i < len; i++)
			if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '/' && s[i] != '=')
				return "may only contain [0-9A-Za-z=/-]";
		return NULL;
	case S_MODULE:
		if (!len || len > 256)
			return "must be 1 to 256 characters";
		for (i = 0; i < len; i++)
			if (!is_alnum(s[i]) && s[i] != '_' && s[i] != ':')
				return "may only contain [A-Za-z0-9_:]";
		return NULL;
	}
	return "has an unknown rule";
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "xx:xx:xx:xx:xx:xx", two hex digits per byte, as Firecracker's MacAddr. */
static bool parse_mac(const char *s, size_t len, uint8_t mac[6])
{
	if (len != 17)
		return false;
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* One decimal octet without leading zeros, as the regex spells it; -1 if none. */
static int parse_octet(const char **p, const char *end)
{
	const char *s = *p;
	int v = 0, n = 0;

	while (s < end && *s >= '0' && *s <= '9' && n < 3) {
		v = v * 10 + (*s - '0');
		s++;
		n++;
	}
	if (!n || (n > 1 && **p == '0') || (s < end && *s >= '0' && *s <= '9'))
		return -1;
	*p = s;
	return v;
}

/*
 * MmdsConfig.ipv4_address's format: "169.254.([1-9]|..|25[0-4]).([0-9]|..|25[5])",
 * i.e. 169.254.1.0 to 169.254.254.255, octets without leading zeros.
 */
static bool parse_ipv4_ll(const char *s, size_t len, uint8_t ip[4])
{
	const char *p = s, *end = s + len;
	int o[4];

	for (int i = 0; i < 4; i++) {
		o[i] = parse_octet(&p, end);
		if (o[i] < 0 || o[i] > 255)
			return false;
		if (i < 3) {
			if (p >= end || *p != '.')
				return false;
			p++;
		}
	}
	if (p != end || o[0] != 169 || o[1] != 254 || o[2] < 1 || o[2] > 254)
		return false;
	for (int i = 0; i < 4; i++)
		ip[i] = (uint8_t)o[i];
	return true;
}

/* ---- generic parse and free ---- */

static const char *json_type_str(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction or exponent";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

static int type_error(const char *where, const char *name, const char *want, const json_t *v,
		      struct api_err *err)
{
	api_err_set(err, 400, "%s.%s: expected %s, got %s.", where, name, want, json_type_str(v));
	return -EINVAL;
}

static int oom(struct api_err *err)
{
	api_err_set(err, 500, "Out of memory.");
	return -ENOMEM;
}

static void free_object(const struct schema *s, void *obj);

static void free_field(const struct field *f, void *obj)
{
	char *p = (char *)obj + f->off;

	switch ((enum fkind)f->kind) {
	case FK_STR: {
		char **sp = (char **)(void *)p;
		free(*sp);
		*sp = NULL;
		break;
	}
	case FK_OBJ:
		free_object(f->sub, p);
		break;
	case FK_ID_LIST: {
		struct api_str_list *l = (struct api_str_list *)(void *)p;
		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
		l->v = NULL;
		l->n = 0;
		break;
	}
	case FK_STR_MAP: {
		struct api_str_map *m = (struct api_str_map *)(void *)p;
		for (size_t i = 0; i < m->n; i++) {
			free(m->v[i].key);
			free(m->v[i].value);
		}
		free(m->v);
		m->v = NULL;
		m->n = 0;
		break;
	}
	case FK_BOOL:
	case FK_U64:
	case FK_ENUM:
	case FK_MAC:
	case FK_IPV4_LL:
	case FK_UNSUPPORTED:
		break;
	}
}

static void free_object(const struct schema *s, void *obj)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->f[i].name)
			free_field(&s->f[i], obj);
}

static int parse_object(const struct schema *s, const json_t *o, void *obj, const char *where,
			struct api_err *err);

static int parse_id_list(const struct field *f, const json_t *v, struct api_str_list *l,
			 const char *where, struct api_err *err)
{
	size_t n = json_array_size(v);

	if (!json_is_array(v))
		return type_error(where, f->name, "an array of ids", v, err);
	if (n > API_MAX_LIST) {
		api_err_set(err, 400, "%s.%s: more than %d entries.", where, f->name, API_MAX_LIST);
		return -EINVAL;
	}
	l->v = calloc(n ? n : 1, sizeof(*l->v));
	if (!l->v)
		return oom(err);
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(v, i);
		const char *why;

		if (!json_is_string(e)) {
			api_err_set(err, 400, "%s.%s[%zu]: expected a string, got %s.", where, f->name,
				    i, json_type_str(e));
			return -EINVAL;
		}
		why = check_str(S_ID, json_string_value(e), json_string_length(e));
		if (why) {
			api_err_set(err, 400, "%s.%s[%zu]: %s.", where, f->name, i, why);
			return -EINVAL;
		}
		l->v[i] = strdup(json_string_value(e));
		if (!l->v[i])
			return oom(err);
		l->n = i + 1;   /* what free_field() must release */
	}
	return 0;
}

static int parse_str_map(const struct field *f, const json_t *v, struct api_str_map *m,
			 const char *where, struct api_err *err)
{
	const char *key;
	json_t *val;
	size_t n = json_object_size(v), i = 0;

	if (!json_is_object(v))
		return type_error(where, f->name, "an object of strings", v, err);
	if (n > API_MAX_PROPERTIES) {
		api_err_set(err, 400, "%s.%s: more than %d entries.", where, f->name,
			    API_MAX_PROPERTIES);
		return -EINVAL;
	}
	m->v = calloc(n ? n : 1, sizeof(*m->v));
	if (!m->v)
		return oom(err);
	json_object_foreach((json_t *)v, key, val) {
		size_t klen = strlen(key), vlen;
		char echo[64 + 4];

		if (i >= n)
			break;   /* cannot happen: the object is not shared */
		if (!klen || klen > 64 || check_str(S_CMDLINE, key, klen)) {
			api_err_set(err, 400, "%s.%s: key `%s` must be 1 to 64 printable ASCII "
				    "characters.", where, f->name, api_echo(echo, sizeof(echo), key,
				    klen, 64));
			return -EINVAL;
		}
		if (!json_is_string(val)) {
			api_err_set(err, 400, "%s.%s.%s: expected a string, got %s.", where, f->name,
				    key, json_type_str(val));
			return -EINVAL;
		}
		vlen = json_string_length(val);
		if (vlen > 256 || check_str(S_CMDLINE, json_string_value(val), vlen)) {
			api_err_set(err, 400, "%s.%s.%s: must be at most 256 printable ASCII "
				    "characters.", where, f->name, key);
			return -EINVAL;
		}
		m->v[i].key = strdup(key);
		m->v[i].value = strdup(json_string_value(val));
		m->n = ++i;
		if (!m->v[i - 1].key || !m->v[i - 1].value)
			return oom(err);
	}
	return 0;
}

static int parse_field(const struct field *f, const json_t *v, void *obj, const char *where,
		       struct api_err *err)
{
	char *p = (char *)obj + f->off;

	switch ((enum fkind)f->kind) {
	case FK_STR: {
		const char *why;
		char *copy;

		if (!json_is_string(v))
			return type_error(where, f->name, "a string", v, err);
		why = check_str((enum fstr)f->str, json_string_value(v), json_string_length(v));
		if (why) {
			api_err_set(err, 400, "%s.%s: %s.", where, f->name, why);
			return -EINVAL;
		}
		copy = strdup(json_string_value(v));
		if (!copy)
			return oom(err);
		*(char **)(void *)p = copy;
		return 0;
	}
	case FK_BOOL:
		if (!json_is_boolean(v))
			return type_error(where, f->name, "a boolean", v, err);
		*(bool *)(void *)p = json_is_true(v);
		return 0;
	case FK_U64: {
		json_int_t x;

		if (!json_is_integer(v))
			return type_error(where, f->name, "an integer", v, err);
		x = json_integer_value(v);
		if (x < 0 || (uint64_t)x < f->min || (uint64_t)x > f->max) {
			api_err_set(err, 400, "%s.%s: %lld is out of range [%llu, %llu].", where,
				    f->name, (long long)x, (unsigned long long)f->min,
				    (unsigned long long)f->max);
			return -EINVAL;
		}
		*(uint64_t *)(void *)p = (uint64_t)x;
		return 0;
	}
	case FK_ENUM: {
		const char *s;
		char allowed[128] = "", echo[32 + 4];
		size_t len;

		if (!json_is_string(v))
			return type_error(where, f->name, "a string", v, err);
		s = json_string_value(v);
		len = json_string_length(v);
		for (unsigned i = 0; i < f->nnames; i++) {
			if (len == strlen(f->names[i]) &&
			    !(f->nocase ? strcasecmp(s, f->names[i]) : strcmp(s, f->names[i]))) {
				*(unsigned *)(void *)p = i;
				return 0;
			}
		}
		for (unsigned i = 0; i < f->nnames; i++) {
			size_t used = strlen(allowed);
			snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "",
				 f->names[i]);
		}
		api_err_set(err, 400, "%s.%s: unknown variant `%s`, expected one of %s.", where,
			    f->name, api_echo(echo, sizeof(echo), s, len, 32), allowed);
		return -EINVAL;
	}
	case FK_OBJ: {
		char sub[96];

		snprintf(sub, sizeof(sub), "%s.%s", where, f->name);
		return parse_object(f->sub, v, p, sub, err);
	}
	case FK_MAC:
		if (!json_is_string(v))
			return type_error(where, f->name, "a string", v, err);
		if (!parse_mac(json_string_value(v), json_string_length(v), (uint8_t *)p)) {
			api_err_set(err, 400, "%s.%s: expected a MAC address as xx:xx:xx:xx:xx:xx.",
				    where, f->name);
			return -EINVAL;
		}
		return 0;
	case FK_IPV4_LL:
		if (!json_is_string(v))
			return type_error(where, f->name, "a string", v, err);
		if (!parse_ipv4_ll(json_string_value(v), json_string_length(v), (uint8_t *)p)) {
			api_err_set(err, 400, "%s.%s: expected a link-local IPv4 address "
				    "169.254.1.0 to 169.254.254.255.", where, f->name);
			return -EINVAL;
		}
		return 0;
	case FK_ID_LIST:
		return parse_id_list(f, v, (struct api_str_list *)(void *)p, where, err);
	case FK_STR_MAP:
		return parse_str_map(f, v, (struct api_str_map *)(void *)p, where, err);
	case FK_UNSUPPORTED:
		api_err_set(err, 400, "%s.%s: %s.", where, f->name, f->why);
		return -EINVAL;
	}
	api_err_set(err, 500, "%s.%s: no rule for this field.", where, f->name);
	return -EINVAL;
}

/*
 * Fill obj (zeroed by the caller) from the JSON object o. On error obj may
 * hold some strings: the caller frees it with free_object() either way.
 */
static int parse_object(const struct schema *s, const json_t *o, void *obj, const char *where,
			struct api_err *err)
{
	unsigned *present = obj;
	const char *key;
	json_t *v;
	int ret;

	if (!json_is_object(o)) {
		api_err_set(err, 400, "%s: expected an object, got %s.", where, json_type_str(o));
		return -EINVAL;
	}
	json_object_foreach((json_t *)o, key, v) {
		const struct field *f = NULL;
		char echo[64 + 4];

		for (unsigned i = 0; i < s->n; i++) {
			if (s->f[i].name && !strcmp(s->f[i].name, key)) {
				f = &s->f[i];
				break;
			}
		}
		if (!f) {
			/* serde's deny_unknown_fields. Keys are client text: echo them safely. */
			api_err_set(err, 400, "%s: unknown field `%s`.", where,
				    api_echo(echo, sizeof(echo), key, strlen(key), 64));
			return -EINVAL;
		}
		if (json_is_null(v) && !f->required)
			continue;   /* serde: null is None for an optional field */
		ret = parse_field(f, v, obj, where, err);
		if (ret)
			return ret;
		*present |= 1u << (unsigned)(f - s->f);
	}
	for (unsigned i = 0; i < s->n; i++) {
		if (s->f[i].name && s->f[i].required && !(*present & (1u << i))) {
			api_err_set(err, 400, "%s: missing field `%s`.", where, s->f[i].name);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- per-request checks beyond the field rules ---- */

static int check_machine(const struct api_machine_config *mc, struct api_err *err)
{
	/* Both rules are in putMachineConfiguration's description. */
	if (mc->smt && mc->vcpu_count > 1 && mc->vcpu_count % 2) {
		api_err_set(err, 400, "The vCPU number is invalid! The vCPU number can only be 1 "
			    "or an even number when SMT is enabled.");
		return -EINVAL;
	}
	if (mc->huge_pages == API_HUGE_PAGES_2M && mc->mem_size_mib % 2) {
		api_err_set(err, 400, "MachineConfiguration.mem_size_mib: must be a multiple of 2 "
			    "with 2M huge pages.");
		return -EINVAL;
	}
	return 0;
}

static int check_path_id(const struct api_route *r, const char *body_id, const char *what,
			 struct api_err *err)
{
	/* Firecracker: "The id from the path does not match the id from the body!" */
	if (strcmp(r->id, body_id)) {
		api_err_set(err, 400, "The id from the path does not match the id from the body! "
			    "(%s)", what);
		return -EINVAL;
	}
	return 0;
}

static int check_body(struct api_request *req, struct api_err *err)
{
	switch (req->kind) {
	case API_BODY_MACHINE_CONFIG:
		if (req->route.method == API_PATCH) {
			if (!req->u.machine.present) {
				api_err_set(err, 400, "Empty PATCH request: MachineConfiguration "
					    "needs at least one field.");
				return -EINVAL;
			}
			return 0;   /* the merged result is checked by api_machine_config_patch() */
		}
		return check_machine(&req->u.machine, err);
	case API_BODY_DRIVE:
		if (!req->u.drive.path_on_host) {
			api_err_set(err, 400, "Drive: missing field `path_on_host`.");
			return -EINVAL;
		}
		return check_path_id(&req->route, req->u.drive.drive_id, "drive_id", err);
	case API_BODY_DRIVE_PATCH:
		if (!(req->u.drive_patch.present & ~(1u << API_PDRV_DRIVE_ID))) {
			api_err_set(err, 400, "PartialDrive: nothing to update; send path_on_host "
				    "and/or rate_limiter.");
			return -EINVAL;
		}
		return check_path_id(&req->route, req->u.drive_patch.drive_id, "drive_id", err);
	case API_BODY_NET:
		return check_path_id(&req->route, req->u.net.iface_id, "iface_id", err);
	case API_BODY_NET_PATCH:
		if (!(req->u.net_patch.present & ~(1u << API_PNET_IFACE_ID))) {
			api_err_set(err, 400, "PartialNetworkInterface: nothing to update; send "
				    "rx_rate_limiter and/or tx_rate_limiter.");
			return -EINVAL;
		}
		return check_path_id(&req->route, req->u.net_patch.iface_id, "iface_id", err);
	case API_BODY_MMDS_CONFIG:
		if (!req->u.mmds_config.network_interfaces.n) {
			api_err_set(err, 400, "The list of network interface IDs that allow "
				    "forwarding MMDS requests is empty.");
			return -EINVAL;
		}
		if (!(req->u.mmds_config.present & (1u << API_MMDS_IPV4_ADDRESS)))
			memcpy(req->u.mmds_config.ipv4_address, (uint8_t[4]){ 169, 254, 169, 254 }, 4);
		return 0;
	default:
		return 0;
	}
}

/* ---- requests ---- */

struct body_desc {
	enum api_body_kind kind;
	const struct schema *s;    /* NULL: any JSON object (MMDS contents) */
};

/* Which definition each PUT/PATCH takes ("parameters: in: body" of the yaml). */
static const struct body_desc bodies[API_EP_COUNT][API_METHOD_COUNT] = {
	[API_EP_ACTIONS]        = { [API_PUT] = { API_BODY_ACTION, &action_s } },
	[API_EP_BOOT_SOURCE]    = { [API_PUT] = { API_BODY_BOOT_SOURCE, &boot_source_s } },
	[API_EP_MACHINE_CONFIG] = { [API_PUT] = { API_BODY_MACHINE_CONFIG, &machine_s },
				    [API_PATCH] = { API_BODY_MACHINE_CONFIG, &machine_patch_s } },
	[API_EP_DRIVES]         = { [API_PUT] = { API_BODY_DRIVE, &drive_s },
				    [API_PATCH] = { API_BODY_DRIVE_PATCH, &drive_patch_s } },
	[API_EP_NETWORK_IFACES] = { [API_PUT] = { API_BODY_NET, &net_s },
				    [API_PATCH] = { API_BODY_NET_PATCH, &net_patch_s } },
	[API_EP_LOGGER]         = { [API_PUT] = { API_BODY_LOGGER, &logger_s } },
	[API_EP_METRICS]        = { [API_PUT] = { API_BODY_METRICS, &metrics_s } },
	[API_EP_MMDS]           = { [API_PUT] = { API_BODY_MMDS, NULL },
				    [API_PATCH] = { API_BODY_MMDS, NULL } },
	[API_EP_MMDS_CONFIG]    = { [API_PUT] = { API_BODY_MMDS_CONFIG, &mmds_config_s } },
	[API_EP_ENTROPY]        = { [API_PUT] = { API_BODY_ENTROPY, &entropy_s } },
	[API_EP_SERIAL]         = { [API_PUT] = { API_BODY_SERIAL, &serial_s } },
	[API_EP_VM]             = { [API_PATCH] = { API_BODY_VM, &vm_s } },
};

static const struct schema *schema_of(const struct api_request *req)
{
	if ((unsigned)req->route.ep >= API_EP_COUNT || (unsigned)req->route.method >= API_METHOD_COUNT)
		return NULL;
	return bodies[req->route.ep][req->route.method].s;
}

/*
 * Nesting depth of the JSON text, counted before jansson recurses into it
 * (its parser is recursive, bounded only by JSON_PARSER_MAX_DEPTH = 2048).
 * Brackets inside strings do not count; malformed text is left to jansson.
 */
static bool depth_ok(const char *s, size_t len, unsigned max)
{
	unsigned depth = 0;
	bool in_str = false, esc = false;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return false;
		} else if ((c == '}' || c == ']') && depth) {
			depth--;
		}
	}
	return true;
}

void api_request_free(struct api_request *req)
{
	const struct schema *s;

	if (!req)
		return;
	if (req->kind == API_BODY_MMDS) {
		json_decref(req->u.mmds);
	} else if (req->kind != API_BODY_NONE) {
		s = schema_of(req);
		if (s)
			free_object(s, &req->u);
	}
	memset(&req->u, 0, sizeof(req->u));
	req->kind = API_BODY_NONE;
}

int api_parse_body(const struct api_route *route, const char *body, size_t blen, size_t max_body,
		   struct api_request *req, struct api_err *err)
{
	const struct body_desc *d;
	json_error_t jerr;
	json_t *root = NULL;
	int ret;

	if (!route || !req || (blen && !body))
		return -EINVAL;
	memset(req, 0, sizeof(*req));
	req->route = *route;
	if ((unsigned)route->ep >= API_EP_COUNT || (unsigned)route->method >= API_METHOD_COUNT) {
		api_err_set(err, 400, "Invalid request method and/or path.");
		return -EINVAL;
	}
	/* micro_http's SizeLimitExceeded, before a byte is parsed. */
	if (blen > max_body) {
		api_err_set(err, 400, "Request payload with size %zu is larger than the limit of "
			    "%zu allowed by server.", blen, max_body);
		return -EINVAL;
	}
	if (route->method == API_GET) {
		if (blen) {
			api_err_set(err, 400, "GET request cannot have a body.");
			return -EINVAL;
		}
		return 0;
	}
	d = &bodies[route->ep][route->method];
	if (d->kind == API_BODY_NONE) {
		api_err_set(err, 400, "Invalid request method and/or path.");
		return -EINVAL;
	}
	if (!blen) {
		api_err_set(err, 400, "Empty %s request: %s needs a JSON body.",
			    api_method_str(route->method), api_endpoint_str(route->ep));
		return -EINVAL;
	}
	if (!depth_ok(body, blen, API_MAX_DEPTH)) {
		api_err_set(err, 400, "JSON body nested deeper than %d levels.", API_MAX_DEPTH);
		return -EINVAL;
	}
	root = json_loadb(body, blen, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		char text[JSON_ERROR_TEXT_LENGTH + 4];

		if (json_error_code(&jerr) == json_error_out_of_memory)
			return oom(err);
		/* jansson quotes the offending input ("near '...'"): echo it safely. */
		api_echo(text, sizeof(text), jerr.text, strnlen(jerr.text, sizeof(jerr.text)),
			 JSON_ERROR_TEXT_LENGTH);
		api_err_set(err, 400, "Malformed JSON body: %s at line %d column %d.", text,
			    jerr.line, jerr.column);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		api_err_set(err, 400, "%s: expected a JSON object, got %s.",
			    d->s ? d->s->name : "MmdsContentsObject", json_type_str(root));
		ret = -EINVAL;
		goto out;
	}
	req->kind = d->kind;
	if (!d->s) {
		/* MmdsContentsObject: "additionalProperties: true", kept as a tree. */
		req->u.mmds = root;
		return 0;
	}
	ret = parse_object(d->s, root, &req->u, d->s->name, err);
	if (!ret)
		ret = check_body(req, err);
	if (ret)
		api_request_free(req);
out:
	json_decref(root);
	return ret;
}

void api_boot_source_free(struct api_boot_source *bs)
{
	if (!bs)
		return;
	free_object(&boot_source_s, bs);
	bs->present = 0;
}

int api_machine_config_patch(struct api_machine_config *cur,
			     const struct api_machine_config *patch, struct api_err *err)
{
	struct api_machine_config m = *cur;
	unsigned p = patch->present;
	int ret;

	if (!p) {
		api_err_set(err, 400, "Empty PATCH request: MachineConfiguration needs at least "
			    "one field.");
		return -EINVAL;
	}
	if (p & (1u << API_MC_VCPU_COUNT))
		m.vcpu_count = patch->vcpu_count;
	if (p & (1u << API_MC_MEM_SIZE_MIB))
		m.mem_size_mib = patch->mem_size_mib;
	if (p & (1u << API_MC_SMT))
		m.smt = patch->smt;
	if (p & (1u << API_MC_TRACK_DIRTY_PAGES))
		m.track_dirty_pages = patch->track_dirty_pages;
	if (p & (1u << API_MC_CPU_TEMPLATE))
		m.cpu_template = patch->cpu_template;
	if (p & (1u << API_MC_HUGE_PAGES))
		m.huge_pages = patch->huge_pages;
	m.present |= p;
	ret = check_machine(&m, err);
	if (ret)
		return ret;
	*cur = m;
	return 0;
}

int api_machine_config_supported(const struct api_machine_config *mc, struct api_err *err)
{
	/* Refused rather than silently ignored: a client relying on them would be misled. */
	if (mc->smt) {
		api_err_set(err, 400, "MachineConfiguration.smt: kiln does not support SMT "
			    "topologies yet.");
		return -EINVAL;
	}
	if (mc->track_dirty_pages) {
		api_err_set(err, 400, "MachineConfiguration.track_dirty_pages: kiln does not "
			    "support dirty page tracking (diff snapshots) yet.");
		return -EINVAL;
	}
	if (mc->cpu_template != API_CPU_TEMPLATE_NONE) {
		api_err_set(err, 400, "MachineConfiguration.cpu_template: kiln supports only "
			    "\"None\".");
		return -EINVAL;
	}
	return 0;
}

int api_apply_config(const struct api_boot_source *bs, const struct api_machine_config *mc,
		     struct vm_config *cfg, struct api_err *err)
{
	struct api_machine_config def = {
		.vcpu_count = API_DEFAULT_VCPUS, .mem_size_mib = API_DEFAULT_MEM_MIB,
	};
	enum mem_backing backing;
	int ret;

	if (!bs || !bs->kernel_image_path) {
		/* Firecracker's StartMicrovmError::MissingKernelConfig. */
		api_err_set(err, 400, "Cannot start microvm without kernel configuration.");
		return -EINVAL;
	}
	if (!mc)
		mc = &def;
	/* mc may not have come through api_parse_body(): check what cfg relies on. */
	if (mc->vcpu_count < 1 || mc->vcpu_count > API_VCPU_MAX ||
	    mc->mem_size_mib < KILN_MIN_MEMORY_MIB || mc->mem_size_mib > KILN_MAX_MEMORY_MIB) {
		api_err_set(err, 400, "MachineConfiguration: vcpu_count or mem_size_mib out of range.");
		return -EINVAL;
	}
	ret = check_machine(mc, err);
	if (ret)
		return ret;
	ret = api_machine_config_supported(mc, err);
	if (ret)
		return ret;
	switch (mc->huge_pages) {
	case API_HUGE_PAGES_NONE:
		backing = MEM_BACKING_MEMFD;
		break;
	case API_HUGE_PAGES_TRANSPARENT:
		backing = MEM_BACKING_THP;
		break;
	case API_HUGE_PAGES_2M:
		backing = MEM_BACKING_HUGETLB;   /* x86's default hugetlb size is 2 MiB */
		break;
	default:
		api_err_set(err, 400, "MachineConfiguration.huge_pages: unknown value.");
		return -EINVAL;
	}
	cfg->kernel_path = bs->kernel_image_path;
	cfg->initrd_path = bs->initrd_path;
	cfg->cmdline = bs->boot_args;
	cfg->ncpus = (unsigned)mc->vcpu_count;
	cfg->mem_bytes = mc->mem_size_mib << 20;   /* <= 1 TiB: no overflow */
	cfg->backing = backing;
	return 0;
}

const char *api_enum_str(enum api_enum e, unsigned v)
{
	static const struct { const char *const *names; unsigned n; } t[] = {
		[API_ENUM_CPU_TEMPLATE] = { cpu_template_names, NELEM(cpu_template_names) },
		[API_ENUM_HUGE_PAGES]   = { huge_pages_names, NELEM(huge_pages_names) },
		[API_ENUM_CACHE_TYPE]   = { cache_type_names, NELEM(cache_type_names) },
		[API_ENUM_IO_ENGINE]    = { io_engine_names, NELEM(io_engine_names) },
		[API_ENUM_LOG_LEVEL]    = { log_level_names, NELEM(log_level_names) },
		[API_ENUM_ACTION]       = { action_names, NELEM(action_names) },
		[API_ENUM_VM_STATE]     = { vm_state_names, NELEM(vm_state_names) },
	};

	if ((unsigned)e >= NELEM(t) || v >= t[e].n)
		return "?";
	return t[e].names[v];
}
