/* API routing: method + path to an endpoint and {id}, and the pre-boot / post-boot rule of each. */
#include <errno.h>
#include <string.h>
#include "api/api.h"

/* When a (path, method) may run; R_NONE means the method does not exist there. */
enum phase_rule { R_NONE = 0, R_ANY, R_PRE, R_POST };

struct ep_desc {
	const char *path;       /* fixed path, or the prefix before "/{id}" */
	const char *tmpl;       /* for messages and logs */
	bool has_id;
	unsigned char rule[API_METHOD_COUNT];
};

/*
 * Methods per path from the OpenAPI "paths" section; the phase from its
 * summaries ("Pre-boot only.", "Post-boot only.") and, where the yaml is
 * silent, from Firecracker's controllers: the runtime one refuses logger,
 * metrics, serial, entropy and mmds/config after boot; the pre-boot one
 * refuses PATCH /vm (pause/resume) and the PATCHes of drives and network
 * interfaces. MMDS contents stay writable after boot (guest metadata).
 */
static const struct ep_desc eps[API_EP_COUNT] = {
	[API_EP_ROOT]           = { "/", "/", false, { [API_GET] = R_ANY } },
	/* The rule of PUT /actions depends on action_type: api_check_action_phase(). */
	[API_EP_ACTIONS]        = { "/actions", "/actions", false, { [API_PUT] = R_ANY } },
	[API_EP_BOOT_SOURCE]    = { "/boot-source", "/boot-source", false, { [API_PUT] = R_PRE } },
	[API_EP_MACHINE_CONFIG] = { "/machine-config", "/machine-config", false,
				    { [API_GET] = R_ANY, [API_PUT] = R_PRE, [API_PATCH] = R_PRE } },
	[API_EP_DRIVES]         = { "/drives", "/drives/{drive_id}", true,
				    { [API_PUT] = R_PRE, [API_PATCH] = R_POST } },
	[API_EP_NETWORK_IFACES] = { "/network-interfaces", "/network-interfaces/{iface_id}", true,
				    { [API_PUT] = R_PRE, [API_PATCH] = R_POST } },
	[API_EP_LOGGER]         = { "/logger", "/logger", false, { [API_PUT] = R_PRE } },
	[API_EP_METRICS]        = { "/metrics", "/metrics", false, { [API_PUT] = R_PRE } },
	[API_EP_MMDS]           = { "/mmds", "/mmds", false,
				    { [API_GET] = R_ANY, [API_PUT] = R_ANY, [API_PATCH] = R_ANY } },
	[API_EP_MMDS_CONFIG]    = { "/mmds/config", "/mmds/config", false, { [API_PUT] = R_PRE } },
	[API_EP_ENTROPY]        = { "/entropy", "/entropy", false, { [API_PUT] = R_PRE } },
	[API_EP_SERIAL]         = { "/serial", "/serial", false, { [API_PUT] = R_PRE } },
	[API_EP_VM]             = { "/vm", "/vm", false, { [API_PATCH] = R_POST } },
	[API_EP_VM_CONFIG]      = { "/vm/config", "/vm/config", false, { [API_GET] = R_ANY } },
	[API_EP_VERSION]        = { "/version", "/version", false, { [API_GET] = R_ANY } },
};

/* Paths of the OpenAPI file kiln does not serve yet: still 400, but said plainly. */
static const char *const unimplemented[] = {
	"balloon", "cpu-config", "pmem", "hotplug", "snapshot", "vsock",
};

/* Firecracker's VmmActionError texts for the phase rules. */
static const char not_pre[] = "The requested operation is not supported before starting the microVM.";
static const char not_post[] = "The requested operation is not supported after starting the microVM.";

static const char *const method_names[API_METHOD_COUNT] = {
	[API_GET] = "GET", [API_PUT] = "PUT", [API_PATCH] = "PATCH",
};

const char *api_method_str(enum api_method m)
{
	return (unsigned)m < API_METHOD_COUNT ? method_names[m] : "?";
}

const char *api_endpoint_str(enum api_endpoint ep)
{
	return (unsigned)ep < API_EP_COUNT ? eps[ep].tmpl : "?";
}

static int method_parse(const char *s, size_t len)
{
	for (int m = 0; m < API_METHOD_COUNT; m++)
		if (len == strlen(method_names[m]) && !memcmp(s, method_names[m], len))
			return m;
	return -1;   /* HTTP methods are case-sensitive (RFC 9110 §9.1) */
}

int api_check_id(const char *id, size_t len, struct api_err *err)
{
	/* Firecracker's checked_id(): "The ID cannot be empty." / alphanumeric and '_'. */
	if (!len) {
		api_err_set(err, 400, "The ID cannot be empty.");
		return -EINVAL;
	}
	if (len > API_ID_MAX) {
		api_err_set(err, 400, "API Resource IDs can be at most %d characters long.", API_ID_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_')) {
			api_err_set(err, 400, "API Resource IDs can only contain alphanumeric "
				    "characters and underscores.");
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * Firecracker's InvalidPathMethod text names the method and the first path
 * segment: "Invalid request method and/or path: PUT vm." Both are client
 * bytes, so they are echoed through api_echo().
 */
static int invalid_path_method(const char *method, size_t mlen, const char *path, size_t plen,
			       const char *extra, struct api_err *err)
{
	char m[API_MAX_METHOD + 4], p[64 + 4];
	size_t seg = 0;

	if (plen && path[0] == '/') {
		path++;
		plen--;
	}
	while (seg < plen && path[seg] != '/')
		seg++;
	api_echo(m, sizeof(m), method, mlen, API_MAX_METHOD);
	api_echo(p, sizeof(p), path, seg, 64);
	api_err_set(err, 400, "Invalid request method and/or path: %s %s.%s", m, p, extra);
	return -EINVAL;
}

/* Is path the fixed path s, or (for an {id} endpoint) s or s + "/..."? */
static bool path_matches(const struct ep_desc *d, const char *path, size_t plen)
{
	size_t n = strlen(d->path);

	if (plen < n || memcmp(path, d->path, n))
		return false;
	if (plen == n)
		return true;
	return d->has_id && path[n] == '/';
}

int api_route(const char *method, size_t mlen, const char *path, size_t plen,
	      struct api_route *out, struct api_err *err)
{
	int m = -1;
	int ep = -1;

	if (!method || !path || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (mlen <= API_MAX_METHOD)
		m = method_parse(method, mlen);
	if (!plen || path[0] != '/') {
		api_err_set(err, 400, "Invalid request path: it must start with '/'.");
		return -EINVAL;
	}
	if (plen > API_MAX_PATH) {
		api_err_set(err, 400, "Invalid request path: longer than %d bytes.", API_MAX_PATH);
		return -EINVAL;
	}
	if (memchr(path, '\0', plen)) {
		api_err_set(err, 400, "Invalid request path: it contains a NUL byte.");
		return -EINVAL;
	}
	for (int i = 0; i < API_EP_COUNT; i++) {
		if (path_matches(&eps[i], path, plen)) {
			ep = i;
			break;
		}
	}
	if (ep < 0) {
		const char *p = path + 1;
		size_t rest = plen - 1;

		for (size_t i = 0; i < sizeof(unimplemented) / sizeof(unimplemented[0]); i++) {
			size_t n = strlen(unimplemented[i]);
			if (rest >= n && !memcmp(p, unimplemented[i], n) && (rest == n || p[n] == '/'))
				return invalid_path_method(method, mlen, path, plen,
					" kiln does not implement this Firecracker endpoint yet.", err);
		}
		return invalid_path_method(method, mlen, path, plen, "", err);
	}
	if (m < 0 || eps[ep].rule[m] == R_NONE)
		return invalid_path_method(method, mlen, path, plen, "", err);

	out->ep = (enum api_endpoint)ep;
	out->method = (enum api_method)m;
	if (eps[ep].has_id) {
		size_t n = strlen(eps[ep].path);
		const char *id = path + n;
		size_t idlen = plen - n;
		int ret;

		/* "/drives" and "/drives/" both leave the id empty (Firecracker: EmptyID). */
		if (idlen) {
			id++;
			idlen--;
		}
		ret = api_check_id(id, idlen, err);
		if (ret)
			return ret;
		memcpy(out->id, id, idlen);
		out->id[idlen] = '\0';
	}
	return 0;
}

int api_check_phase(enum api_endpoint ep, enum api_method method, bool started,
		    const char **why)
{
	enum phase_rule r;

	if ((unsigned)ep >= API_EP_COUNT || (unsigned)method >= API_METHOD_COUNT) {
		if (why)
			*why = "Invalid request method and/or path.";
		return -EINVAL;
	}
	r = (enum phase_rule)eps[ep].rule[method];
	switch (r) {
	case R_ANY:
		return 0;
	case R_PRE:
		if (!started)
			return 0;
		if (why)
			*why = not_post;
		return -EPERM;
	case R_POST:
		if (started)
			return 0;
		if (why)
			*why = not_pre;
		return -EPERM;
	case R_NONE:
		break;
	}
	if (why)
		*why = "Invalid request method and/or path.";
	return -EINVAL;
}

int api_check_action_phase(enum api_action_type action, bool started, const char **why)
{
	switch (action) {
	case API_ACTION_FLUSH_METRICS:
		return 0;
	case API_ACTION_INSTANCE_START:
		/* Firecracker: StartMicroVm is OperationNotSupportedPostBoot at runtime. */
		if (!started)
			return 0;
		if (why)
			*why = not_post;
		return -EPERM;
	case API_ACTION_SEND_CTRL_ALT_DEL:
		/* There is no i8042 to press before the guest runs. */
		if (started)
			return 0;
		if (why)
			*why = not_pre;
		return -EPERM;
	}
	if (why)
		*why = "Unknown action_type.";
	return -EINVAL;
}
