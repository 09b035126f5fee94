/* The API's network interfaces and MMDS: PUT/PATCH /network-interfaces, GET/PUT/PATCH /mmds, PUT /mmds/config, and their share of InstanceStart. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <jansson.h>
#include "api/api_vmm.h"
#include "core/log.h"

/*
 * Firecracker's model, which kiln follows: an interface is a host tap and a
 * guest MAC, fixed before boot; MMDS is one JSON data store per VM that the
 * API may replace (PUT) or merge into (PATCH, RFC 7396) at any time, served to
 * the guest on the interfaces PUT /mmds/config lists. kiln's store is a
 * struct mmds (net/mmds.h) owned here and lent to the VM at start
 * (vm_config.mmds_store), so what the API writes is what the guest's next GET
 * reads: mmds_set_root() swaps the tree under the store's lock, which the
 * metadata server's thread takes for every answer.
 */

static const char no_limiter[] = "kiln does not support rate limiters: send no limiter, or one "
				 "whose buckets have size or refill_time 0 (no limit).";

/* ---- RFC 7396 JSON merge patch ---- */

json_t *api_json_merge_patch(json_t *target, json_t *patch)
{
	const char *key;
	json_t *val;

	/* §2: a patch that is not an object replaces the target. */
	if (!json_is_object(patch)) {
		json_decref(target);
		return json_incref(patch);
	}
	if (!json_is_object(target)) {
		json_decref(target);
		target = json_object();
		if (!target)
			return NULL;
	}
	/* Depth is bounded by the body's (API_MAX_DEPTH): the recursion is too. */
	json_object_foreach(patch, key, val) {
		if (json_is_null(val)) {
			json_object_del(target, key);   /* absent already is fine */
			continue;
		}
		json_t *cur = json_object_get(target, key);
		json_t *merged = api_json_merge_patch(json_incref(cur), val);

		if (!merged || json_object_set_new(target, key, merged) < 0) {
			json_decref(target);
			return NULL;
		}
	}
	return target;
}

/* ---- network interfaces ---- */

static int find_net(const struct api_vmm *v, const char *id)
{
	for (unsigned i = 0; i < v->nnets; i++)
		if (!strcmp(v->nets[i].u.net.iface_id, id))
			return (int)i;
	return -1;
}

/* A token bucket limits only with both size and refill_time non-zero (Firecracker: else disabled). */
static bool bucket_limits(const struct api_token_bucket *b)
{
	return b->size && b->refill_time;
}

static bool limiter_limits(const struct api_rate_limiter *rl)
{
	return ((rl->present & (1u << API_RL_BANDWIDTH)) && bucket_limits(&rl->bandwidth)) ||
	       ((rl->present & (1u << API_RL_OPS)) && bucket_limits(&rl->ops));
}

static const char *mac_str(char buf[18], const uint8_t m[6])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

/*
 * Firecracker opens the tap at PUT; kiln looks it up here (cheap, and it
 * keeps nothing open across a configuration that may never start) and opens
 * it at InstanceStart. The name was checked by the request model (no '/',
 * not "." or ".."), so it is a plain file name under /sys/class/net.
 */
static int check_tap(const struct api_vmm *v, const char *name, struct api_err *err)
{
	char path[API_FILE_PATH_MAX + 32], buf[32];
	unsigned long flags;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", v->sys_net, name);
	if (access(path, F_OK) < 0) {
		api_err_set(err, 400, "Could not create the network device: no host interface %s "
			    "(create the tap first: ip tuntap add %s mode tap).", name, name);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/%s/tun_flags", v->sys_net, name);
	f = fopen(path, "re");
	if (!f || !fgets(buf, sizeof(buf), f) || sscanf(buf, "%lx", &flags) != 1 || !(flags & IFF_TAP)) {
		if (f)
			fclose(f);
		api_err_set(err, 400, "Could not create the network device: %s is not a tap device.",
			    name);
		return -EINVAL;
	}
	fclose(f);
	if (flags & IFF_MULTI_QUEUE) {
		api_err_set(err, 400, "Could not create the network device: tap %s was made with "
			    "multi_queue; the API opens one queue (use --net tap=%s,queues=N).", name, name);
		return -EINVAL;
	}
	return 0;
}

int api_net_put(struct api_vmm *v, struct api_request *req, struct api_err *err)
{
	const struct api_net *n = &req->u.net;
	int slot = find_net(v, n->iface_id);
	char mac[18];

	if (((n->present & (1u << API_NET_RX_RATE_LIMITER)) && limiter_limits(&n->rx_rate_limiter)) ||
	    ((n->present & (1u << API_NET_TX_RATE_LIMITER)) && limiter_limits(&n->tx_rate_limiter))) {
		api_err_set(err, 400, "NetworkInterface: %s", no_limiter);
		return -EOPNOTSUPP;
	}
	if ((n->present & (1u << API_NET_MTU)) && n->mtu != 1500) {
		api_err_set(err, 400, "NetworkInterface.mtu: kiln's virtio-net advertises MTU 1500 "
			    "only.");
		return -EOPNOTSUPP;
	}
	if ((n->present & (1u << API_NET_GUEST_MAC)) && (n->guest_mac[0] & 1)) {
		api_err_set(err, 400, "NetworkInterface.guest_mac: %s is a multicast address; the "
			    "guest needs a unicast one.", mac_str(mac, n->guest_mac));
		return -EINVAL;
	}
	for (unsigned i = 0; i < v->nnets; i++) {
		const struct api_net *o = &v->nets[i].u.net;

		if ((int)i == slot)
			continue;
		if (!strcmp(o->host_dev_name, n->host_dev_name)) {
			api_err_set(err, 400, "The host device %s is already used by interface %s.",
				    n->host_dev_name, o->iface_id);
			return -EINVAL;
		}
		if ((n->present & (1u << API_NET_GUEST_MAC)) && (o->present & (1u << API_NET_GUEST_MAC)) &&
		    !memcmp(o->guest_mac, n->guest_mac, 6)) {
			/* Firecracker's GuestMacAddressInUse. */
			api_err_set(err, 400, "The MAC address is already in use: %s",
				    mac_str(mac, n->guest_mac));
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < v->base.nnets; i++) {
		const struct net_config *nc = &v->base.nets[i];

		if (nc->kind == NET_TAP && !strcmp(nc->ifname, n->host_dev_name)) {
			api_err_set(err, 400, "The host device %s is already used by --net.",
				    n->host_dev_name);
			return -EINVAL;
		}
		if ((n->present & (1u << API_NET_GUEST_MAC)) && nc->mac_set &&
		    !memcmp(nc->mac, n->guest_mac, 6)) {
			api_err_set(err, 400, "The MAC address is already in use: %s (--net)",
				    mac_str(mac, n->guest_mac));
			return -EINVAL;
		}
	}
	if (slot < 0 && v->nnets + v->base.nnets >= VM_MAX_NETS) {
		api_err_set(err, 400, "kiln supports at most %d network interfaces (%u from the "
			    "command line).", VM_MAX_NETS, v->base.nnets);
		return -EINVAL;
	}
	if (check_tap(v, n->host_dev_name, err))
		return -EINVAL;
	if (slot < 0)
		slot = (int)v->nnets++;
	api_request_free(&v->nets[slot]);
	v->nets[slot] = *req;
	memset(req, 0, sizeof(*req));
	return 0;
}

int api_net_patch(struct api_vmm *v, const struct api_request *req, struct api_err *err)
{
	const struct api_net_patch *p = &req->u.net_patch;

	if (find_net(v, p->iface_id) < 0) {
		api_err_set(err, 400, "Invalid network interface ID: there is no interface %s.",
			    p->iface_id);
		return -ENOENT;
	}
	if (((p->present & (1u << API_PNET_RX_RATE_LIMITER)) && limiter_limits(&p->rx_rate_limiter)) ||
	    ((p->present & (1u << API_PNET_TX_RATE_LIMITER)) && limiter_limits(&p->tx_rate_limiter))) {
		api_err_set(err, 400, "PartialNetworkInterface: %s", no_limiter);
		return -EOPNOTSUPP;
	}
	/* "No limit" on an interface that has none: nothing to change. */
	return 0;
}

/* ---- MMDS ---- */

int api_mmds_init(struct api_vmm *v)
{
	char msg[128];
	enum mmds_version ver = v->base.metadata_version == 2 ? MMDS_V2 : MMDS_V1;

	v->mmds_limit = v->base.mmds_size_limit ? v->base.mmds_size_limit : MMDS_SIZE_LIMIT_DEFAULT;
	v->sys_net = "/sys/class/net";
	if (mmds_init_files(&v->mmds, NULL, NULL, ver, msg, sizeof(msg)) < 0) {
		log_err("MMDS store: %s", msg);
		return -ENOMEM;
	}
	v->mmds_ok = true;
	return 0;
}

int api_vmm_mmds_seed(struct api_vmm *v, struct api_err *err)
{
	char msg[256];
	enum mmds_version ver = v->base.metadata_version == 2 ? MMDS_V2 : MMDS_V1;
	int ret = 0;

	if (!v->base.metadata_path && !v->base.ssh_key_path)
		return 0;
	pthread_mutex_lock(&v->lock);
	/*
	 * Firecracker's --metadata: the file seeds the data store, as a PUT
	 * /mmds would. Nothing else holds the store yet (no VM, no server):
	 * build it again from the files.
	 */
	mmds_fini(&v->mmds);
	if (mmds_init_files(&v->mmds, v->base.metadata_path, v->base.ssh_key_path, ver, msg,
			    sizeof(msg)) < 0) {
		api_err_set(err, 400, "--metadata: %s", msg);
		ret = -EINVAL;
		v->mmds_ok = mmds_init_files(&v->mmds, NULL, NULL, ver, msg, sizeof(msg)) == 0;
	} else if (mmds_check_size(&v->mmds, v->mmds_limit, msg, sizeof(msg)) < 0) {
		api_err_set(err, 400, "--metadata: %s", msg);
		ret = -EINVAL;
		mmds_fini(&v->mmds);
		v->mmds_ok = mmds_init_files(&v->mmds, NULL, NULL, ver, msg, sizeof(msg)) == 0;
	} else {
		v->mmds_initialized = true;
	}
	pthread_mutex_unlock(&v->lock);
	return ret;
}

/* The store's size as Firecracker counts it: the compact serialisation. */
static int check_size(const struct api_vmm *v, json_t *root, struct api_err *err)
{
	size_t n = mmds_json_size(root);

	if (n == SIZE_MAX) {
		api_err_set(err, 500, "out of memory");
		return -ENOMEM;
	}
	if (n > v->mmds_limit) {
		/* Firecracker: DataStoreLimitExceeded, answered 413. */
		api_err_set(err, 413, "The MMDS patch request doesn't fit: the data store would be %zu "
			    "bytes, the limit is %zu.", n, v->mmds_limit);
		return -EFBIG;
	}
	return 0;
}

int api_mmds_request(struct api_vmm *v, struct api_request *req, char **out, struct api_err *err)
{
	json_t *root;
	int ret;

	if (!v->mmds_ok) {
		api_err_set(err, 500, "The MMDS data store could not be created.");
		return -ENOMEM;
	}
	switch (req->route.method) {
	case API_GET:
		*out = mmds_dump_root(&v->mmds);
		if (!*out) {
			api_err_set(err, 500, "out of memory");
			return -ENOMEM;
		}
		return 0;
	case API_PUT:
		ret = check_size(v, req->u.mmds, err);
		if (ret)
			return ret;
		if (mmds_set_root(&v->mmds, req->u.mmds) < 0) {
			api_err_set(err, 500, "out of memory");
			return -ENOMEM;
		}
		v->mmds_initialized = true;
		return 0;
	case API_PATCH:
		if (!v->mmds_initialized) {
			/* Firecracker's NotInitialized: PATCH needs a PUT (or --metadata) first. */
			api_err_set(err, 400, "The MMDS data store is not initialized.");
			return -ENOENT;
		}
		root = mmds_copy_root(&v->mmds);
		/* A NULL copy (no memory) must not read as an absent target: the patch alone would replace the store. */
		if (root)
			root = api_json_merge_patch(root, req->u.mmds);
		if (!root) {
			api_err_set(err, 500, "out of memory");
			return -ENOMEM;
		}
		ret = check_size(v, root, err);
		if (!ret && mmds_set_root(&v->mmds, root) < 0) {
			/* Not an object cannot happen: the patch is one, so the result is too. */
			api_err_set(err, 500, "out of memory");
			ret = -ENOMEM;
		}
		json_decref(root);
		return ret;
	case API_METHOD_COUNT:
		break;
	}
	api_err_set(err, 400, "Invalid request method and/or path.");
	return -EINVAL;
}

int api_mmds_config_put(struct api_vmm *v, struct api_request *req, struct api_err *err)
{
	const struct api_mmds_config *c = &req->u.mmds_config;
	uint32_t addr;

	for (size_t i = 0; i < c->network_interfaces.n; i++) {
		if (find_net(v, c->network_interfaces.v[i]) < 0) {
			/* Firecracker's InvalidNetworkInterfaceId, naming the culprit. */
			api_err_set(err, 400, "The list of network interface IDs provided contains at "
				    "least one ID that does not correspond to any existing network "
				    "interface: %s.", c->network_interfaces.v[i]);
			return -EINVAL;
		}
	}
	if (!v->mmds_ok) {
		api_err_set(err, 500, "The MMDS data store could not be created.");
		return -ENOMEM;
	}
	memcpy(&addr, c->ipv4_address, 4);   /* network order, as the bytes were written */
	mmds_configure(&v->mmds, c->version == API_MMDS_V2 ? MMDS_V2 : MMDS_V1, addr, c->imds_compat);
	api_request_free(&v->mmds_config);
	v->mmds_config = *req;
	memset(req, 0, sizeof(*req));
	return 0;
}

static bool mmds_listed(const struct api_vmm *v, const char *id)
{
	const struct api_str_list *l = &v->mmds_config.u.mmds_config.network_interfaces;

	if (v->mmds_config.kind != API_BODY_MMDS_CONFIG)
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], id))
			return true;
	return false;
}

void api_net_lend(struct api_vmm *v, struct vm_config *cfg)
{
	bool cli_md = v->base.metadata_path || v->base.ssh_key_path;

	/* --net NICs serve the metadata service when --metadata/--ssh-key ask, as without the API. */
	for (unsigned i = 0; i < cfg->nnets; i++)
		if (i >= cfg->nnets - v->base.nnets)
			cfg->nets[i].no_mmds = !cli_md;
	cfg->mmds_store = v->mmds_ok ? &v->mmds : NULL;
	/* Their contents are in the store already (api_vmm_mmds_seed). */
	cfg->metadata_path = NULL;
	cfg->ssh_key_path = NULL;
}

int api_net_compose(struct api_vmm *v, struct vm_config *cfg, struct api_err *err)
{
	unsigned n = 0;

	/* The API's interfaces first, in PUT order (eth0, eth1, ...), then the command line's. */
	for (unsigned i = 0; i < v->nnets; i++) {
		const struct api_net *an = &v->nets[i].u.net;
		struct net_config *nc = &cfg->nets[n++];

		memset(nc, 0, sizeof(*nc));
		nc->kind = NET_TAP;
		nc->ifname = an->host_dev_name;
		nc->fd = -1;
		nc->queues = 1;
		nc->mac_set = an->present & (1u << API_NET_GUEST_MAC);
		if (nc->mac_set)
			memcpy(nc->mac, an->guest_mac, 6);
		nc->no_mmds = !mmds_listed(v, an->iface_id);
	}
	if (n + v->base.nnets > VM_MAX_NETS) {
		api_err_set(err, 400, "kiln supports at most %d network interfaces.", VM_MAX_NETS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < v->base.nnets; i++)
		cfg->nets[n++] = v->base.nets[i];
	cfg->nnets = n;
	api_net_lend(v, cfg);
	return 0;
}

/* ---- GET /vm/config ---- */

json_t *api_json_nets(const struct api_vmm *v)
{
	json_t *a = json_array();
	char mac[18];

	for (unsigned i = 0; a && i < v->nnets; i++) {
		const struct api_net *n = &v->nets[i].u.net;
		json_t *o = json_pack("{ssss}", "iface_id", n->iface_id, "host_dev_name", n->host_dev_name);

		if (o && (n->present & (1u << API_NET_GUEST_MAC)))
			json_object_set_new(o, "guest_mac", json_string(mac_str(mac, n->guest_mac)));
		if (o && (n->present & (1u << API_NET_MTU)))
			json_object_set_new(o, "mtu", json_integer((json_int_t)n->mtu));
		json_array_append_new(a, o);
	}
	return a;
}

json_t *api_json_mmds_config(const struct api_vmm *v)
{
	const struct api_mmds_config *c = &v->mmds_config.u.mmds_config;
	char ip[INET_ADDRSTRLEN];
	json_t *o, *ids;

	if (v->mmds_config.kind != API_BODY_MMDS_CONFIG)
		return json_null();
	ids = json_array();
	for (size_t i = 0; ids && i < c->network_interfaces.n; i++)
		json_array_append_new(ids, json_string(c->network_interfaces.v[i]));
	if (!inet_ntop(AF_INET, c->ipv4_address, ip, sizeof(ip)))
		snprintf(ip, sizeof(ip), "169.254.169.254");
	o = json_pack("{sssosssb}", "version", c->version == API_MMDS_V2 ? "V2" : "V1",
		      "network_interfaces", ids ? ids : json_array(), "ipv4_address", ip,
		      "imds_compat", c->imds_compat);
	return o ? o : json_null();
}
