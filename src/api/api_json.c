/* The JSON of the API's answers (InstanceInfo, MachineConfiguration, FullVmConfiguration) and of --config-file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "api/api_vmm.h"

/* json_dumps of a fresh object (consumed), or NULL. */
static char *dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

/* Set key to a string when s is not NULL (jansson refuses invalid UTF-8: then the key is left out). */
static void set_str(json_t *o, const char *key, const char *s)
{
	if (s)
		json_object_set_new(o, key, json_string(s));
}

char *api_json_instance_info(const struct api_vmm *v)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "app_name", json_string("kiln"));
	json_object_set_new(o, "id", json_string(v->id));
	json_object_set_new(o, "state", json_string(api_state_str(
		v->state == API_STATE_STOPPED ? API_STATE_RUNNING : v->state)));
	json_object_set_new(o, "vmm_version", json_string(KILN_VERSION));
	return dump(o);
}

char *api_json_version(void)
{
	return dump(json_pack("{ss}", "firecracker_version", KILN_VERSION));
}

static json_t *machine_obj(const struct api_machine_config *m)
{
	json_t *o = json_pack("{sIsIsbsbss}", "vcpu_count", (json_int_t)m->vcpu_count,
			      "mem_size_mib", (json_int_t)m->mem_size_mib, "smt", m->smt,
			      "track_dirty_pages", m->track_dirty_pages, "huge_pages",
			      api_enum_str(API_ENUM_HUGE_PAGES, m->huge_pages));

	if (o && m->cpu_template != API_CPU_TEMPLATE_NONE)
		json_object_set_new(o, "cpu_template",
				    json_string(api_enum_str(API_ENUM_CPU_TEMPLATE, m->cpu_template)));
	return o;
}

char *api_json_machine_config(const struct api_vmm *v)
{
	return dump(machine_obj(&v->machine));
}

static json_t *boot_obj(const struct api_boot_source *bs)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	set_str(o, "kernel_image_path", bs->kernel_image_path);
	set_str(o, "initrd_path", bs->initrd_path);
	set_str(o, "boot_args", bs->boot_args);
	return o;
}

static json_t *drive_obj(const struct api_drive *d)
{
	json_t *o = json_object();
	bool sync = (d->present & (1u << API_DRV_IO_ENGINE)) && d->io_engine == API_IO_SYNC;

	if (!o)
		return NULL;
	set_str(o, "drive_id", d->drive_id);
	set_str(o, "path_on_host", d->path_on_host);
	json_object_set_new(o, "is_root_device", json_boolean(d->is_root_device));
	json_object_set_new(o, "is_read_only", json_boolean(d->is_read_only));
	set_str(o, "partuuid", d->partuuid);
	json_object_set_new(o, "cache_type",
			    json_string(api_enum_str(API_ENUM_CACHE_TYPE, d->cache_type)));
	/* What kiln does: Sync only when asked, io_uring ("Async") otherwise. */
	json_object_set_new(o, "io_engine", json_string(sync ? "Sync" : "Async"));
	return o;
}

static json_t *logger_obj(const struct api_logger *lg)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "level", json_string(api_enum_str(API_ENUM_LOG_LEVEL, lg->level)));
	set_str(o, "log_path", lg->log_path);
	json_object_set_new(o, "show_level", json_boolean(lg->show_level));
	json_object_set_new(o, "show_log_origin", json_boolean(lg->show_log_origin));
	set_str(o, "module", lg->module);
	return o;
}

static json_t *metrics_obj(const struct api_metrics *m)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	set_str(o, "metrics_path", m->metrics_path);
	if (m->present & (1u << API_MET_EMIT_ID))
		json_object_set_new(o, "emit_id", json_boolean(m->emit_id));
	if (m->properties.n) {
		json_t *p = json_object();
		for (size_t i = 0; p && i < m->properties.n; i++)
			set_str(p, m->properties.v[i].key, m->properties.v[i].value);
		json_object_set_new(o, "properties", p);
	}
	return o;
}

/* A member that is set, or JSON null (Firecracker serialises unset Options as null). */
static void set_or_null(json_t *o, const char *key, json_t *val, bool set)
{
	json_object_set_new(o, key, set ? val : json_null());
	if (!set)
		json_decref(val);
}

char *api_json_vm_config(const struct api_vmm *v)
{
	json_t *o = json_object(), *drives = json_array();

	if (!o || !drives) {
		json_decref(o);
		json_decref(drives);
		return NULL;
	}
	for (unsigned i = 0; i < v->ndrives; i++)
		json_array_append_new(drives, drive_obj(&v->drives[i].u.drive));
	json_object_set_new(o, "balloon", json_null());
	json_object_set_new(o, "drives", drives);
	set_or_null(o, "boot-source", v->boot.kind == API_BODY_BOOT_SOURCE ?
		    boot_obj(&v->boot.u.boot) : NULL, v->boot.kind == API_BODY_BOOT_SOURCE);
	json_object_set_new(o, "cpu-config", json_null());
	set_or_null(o, "logger", v->logger.kind == API_BODY_LOGGER ? logger_obj(&v->logger.u.logger) :
		    NULL, v->logger.kind == API_BODY_LOGGER);
	json_object_set_new(o, "machine-config", machine_obj(&v->machine));
	set_or_null(o, "metrics", v->metrics.kind == API_BODY_METRICS ?
		    metrics_obj(&v->metrics.u.metrics) : NULL, v->metrics.kind == API_BODY_METRICS);
	json_object_set_new(o, "mmds-config", api_json_mmds_config(v));
	json_object_set_new(o, "network-interfaces", api_json_nets(v));
	json_object_set_new(o, "vsock", json_null());
	set_or_null(o, "entropy", v->entropy.kind == API_BODY_ENTROPY ? json_object() : NULL,
		    v->entropy.kind == API_BODY_ENTROPY);
	return dump(o);
}

/* ---- --config-file ---- */

/*
 * FullVmConfiguration members in the order kiln applies them: the logger
 * first, so what follows is logged where the file says; machine-config before
 * boot-source and the devices. `path` is the PUT path (an {id} one when
 * `id_field` is set, for arrays); NULL path: a device kiln lacks.
 */
static const struct {
	const char *key;
	const char *path;
	const char *id_field;
	bool array;
} members[] = {
	{ "logger", "/logger", NULL, false },
	{ "metrics", "/metrics", NULL, false },
	{ "machine-config", "/machine-config", NULL, false },
	{ "boot-source", "/boot-source", NULL, false },
	{ "drives", "/drives/", "drive_id", true },
	{ "network-interfaces", "/network-interfaces/", "iface_id", true },
	{ "entropy", "/entropy", NULL, false },
	{ "mmds-config", "/mmds/config", NULL, false },
	{ "balloon", NULL, NULL, false },
	{ "vsock", NULL, NULL, false },
	{ "cpu-config", NULL, NULL, false },
	{ "pmem", NULL, NULL, true },
	{ "memory-hotplug", NULL, NULL, false },
};
#define NMEMBERS (sizeof(members) / sizeof(members[0]))

static int put_member(struct api_vmm *v, unsigned m, const json_t *val, int idx,
		      struct api_err *err)
{
	char path[API_MAX_PATH + 1], where[64], echo[API_ID_MAX + 4];
	struct api_err e = { 0 };
	const char *id = NULL;
	char *body;
	int ret;

	if (idx >= 0)
		snprintf(where, sizeof(where), "%s[%d]", members[m].key, idx);
	else
		snprintf(where, sizeof(where), "%s", members[m].key);
	if (!members[m].path) {
		api_err_set(err, 400, "config file: %s: kiln does not implement this device yet.",
			    where);
		return -EOPNOTSUPP;
	}
	if (members[m].id_field) {
		/* The path {id} comes from the body; validation checks both anyway. */
		const json_t *j = json_is_object(val) ? json_object_get(val, members[m].id_field) : NULL;
		id = json_is_string(j) && json_string_length(j) <= API_ID_MAX ? json_string_value(j) : "_";
		snprintf(path, sizeof(path), "%s%s", members[m].path, id);
	} else {
		snprintf(path, sizeof(path), "%s", members[m].path);
	}
	body = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!body) {
		api_err_set(err, 500, "config file: out of memory");
		return -ENOMEM;
	}
	ret = api_vmm_request(v, "PUT", path, body, strlen(body), NULL, &e);
	free(body);
	if (ret) {
		api_err_set(err, e.status ? e.status : 400, "config file: %s%s%s: %s", where,
			    id ? " " : "", id ? api_echo(echo, sizeof(echo), id, strlen(id), API_ID_MAX) : "",
			    e.msg);
	}
	return ret;
}

int api_vmm_load_config(struct api_vmm *v, const char *text, size_t len, struct api_err *err)
{
	json_error_t jerr;
	json_t *root;
	const char *key;
	json_t *val;
	int ret = 0;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		char t[JSON_ERROR_TEXT_LENGTH + 4];
		api_echo(t, sizeof(t), jerr.text, strnlen(jerr.text, sizeof(jerr.text)),
			 JSON_ERROR_TEXT_LENGTH);
		api_err_set(err, 400, "config file: malformed JSON: %s at line %d column %d.", t,
			    jerr.line, jerr.column);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		api_err_set(err, 400, "config file: expected a JSON object (FullVmConfiguration).");
		json_decref(root);
		return -EINVAL;
	}
	json_object_foreach(root, key, val) {
		unsigned m;

		for (m = 0; m < NMEMBERS; m++)
			if (!strcmp(key, members[m].key))
				break;
		if (m == NMEMBERS) {
			char k[68];
			api_err_set(err, 400, "config file: unknown member \"%s\" (FullVmConfiguration "
				    "has boot-source, machine-config, drives, ...).",
				    api_echo(k, sizeof(k), key, strlen(key), 64));
			json_decref(root);
			return -EINVAL;
		}
	}
	for (unsigned m = 0; m < NMEMBERS && !ret; m++) {
		val = json_object_get(root, members[m].key);
		if (!val || json_is_null(val))
			continue;
		if (!members[m].array) {
			ret = put_member(v, m, val, -1, err);
			continue;
		}
		if (!json_is_array(val)) {
			api_err_set(err, 400, "config file: %s: expected an array.", members[m].key);
			ret = -EINVAL;
			break;
		}
		for (size_t i = 0; i < json_array_size(val) && !ret; i++)
			ret = put_member(v, m, json_array_get(val, i), (int)i, err);
	}
	json_decref(root);
	return ret;
}
