/* Builds the VM's networks from --net/--metadata/--ssh-key: backends, virtio-net devices, the network loop and the metadata service. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/net_setup.h"
#include "net/mds_server.h"
#include "net/mmds.h"
#include "net/netloop.h"
#include "net/slirp.h"
#include "net/tap.h"
#include "virtio/net.h"
#include "core/vm.h"
#include "core/log.h"

/*
 * Ownership: each virtio-net device owns its backends (freed with the
 * device). This context owns the network loop, the metadata server and
 * store; it is handed to the VM after the devices, so it is destroyed
 * before them (vm_destroy goes in reverse): the loop that feeds the
 * devices is detached first.
 */
struct net_ctx {
	struct vm *vm;
	struct netloop loop;
	bool loop_inited;
	struct mds_server *server;
	struct mmds mmds;
	bool mmds_inited;
};

static void ctx_destroy(void *opaque)
{
	struct net_ctx *c = opaque;

	if (c->loop_inited)
		netloop_fini(&c->loop);
	mds_server_destroy(c->server);
	if (c->mmds_inited)
		mmds_fini(&c->mmds);
	/* A lent store (the API's) outlives the VM; it is only forgotten here. */
	if (c->vm->mmds == &c->mmds || c->vm->mmds == c->vm->cfg.mmds_store)
		c->vm->mmds = NULL;
	free(c);
}

static void ctx_print_stats(void *opaque, int fd)
{
	struct net_ctx *c = opaque;

	if (c->loop.io)
		netloop_print_stats(&c->loop, fd);
	if (c->server)
		mds_server_print_stats(c->server, fd);
}

/* Does NIC nc answer the metadata address? With a lent store its flag says; else --metadata/--ssh-key do. */
static bool serves_mmds(const struct vm_config *cfg, const struct net_config *nc)
{
	if (nc->no_mmds)
		return false;
	return cfg->mmds_store || cfg->metadata_path || cfg->ssh_key_path;
}

int net_check_inputs(const struct vm_config *cfg, char *msg, size_t msglen)
{
	struct mmds m;
	int ret;

	if (cfg->mmds_store)
		return 0;   /* the API read the files into its store already */
	if ((cfg->metadata_path || cfg->ssh_key_path) && !cfg->nnets) {
		snprintf(msg, msglen, "--metadata/--ssh-key need a --net for the guest to reach the service");
		return -1;
	}
	if (!cfg->metadata_path && !cfg->ssh_key_path)
		return 0;
	if (mmds_init_files(&m, cfg->metadata_path, cfg->ssh_key_path, (enum mmds_version)cfg->metadata_version,
			    msg, msglen) < 0)
		return -1;
	ret = mmds_check_size(&m, cfg->mmds_size_limit, msg, msglen);
	mmds_fini(&m);
	return ret;
}

static int net_setup(struct vm *vm)
{
	const struct vm_config *cfg = &vm->cfg;
	struct net_ctx *c;
	char msg[256];
	bool need_loop = false, need_mds = false;
	struct vm_device dev;
	int ret = -EINVAL;
	uint32_t mds_ip = 0, mds_alt = 0;
	struct mmds *store = cfg->mmds_store;

	if (!cfg->nnets)
		return 0;
	for (unsigned i = 0; i < cfg->nnets; i++)
		need_mds |= serves_mmds(cfg, &cfg->nets[i]);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->vm = vm;
	if (netloop_init(&c->loop) < 0) {
		free(c);
		return -errno;
	}
	c->loop_inited = true;
	if (need_mds) {
		if (!store) {
			if (mmds_init_files(&c->mmds, cfg->metadata_path, cfg->ssh_key_path,
					    (enum mmds_version)cfg->metadata_version, msg, sizeof(msg)) < 0) {
				log_err("--metadata: %s", msg);
				goto fail;
			}
			c->mmds_inited = true;
			if (mmds_check_size(&c->mmds, cfg->mmds_size_limit, msg, sizeof(msg)) < 0) {
				log_err("--metadata: %s", msg);
				goto fail;
			}
			store = &c->mmds;
		}
		vm->mmds = store;
		if (mds_server_create(&c->loop, store, &c->server, msg, sizeof(msg)) < 0) {
			log_err("%s", msg);
			goto fail;
		}
		/* Set before boot only (PUT /mmds/config is pre-boot): no writer races this read. */
		mds_ip = store->addr;
		mds_alt = slirp_mds_host(mds_ip);
		need_loop = true;
	}
	for (unsigned i = 0; i < cfg->nnets; i++) {
		const struct net_config *nc = &cfg->nets[i];
		struct net_backend *be = NULL, *mds = NULL;
		struct net_dev *nd;
		int r;

		if (nc->kind == NET_USER) {
			r = slirp_backend_create(&c->loop, nc, &be, msg, sizeof(msg));
			need_loop = true;
		} else {
			r = tap_backend_create(vm, nc, &be, msg, sizeof(msg));
		}
		if (r < 0) {
			log_err("--net: %s", msg);
			goto fail;
		}
		if (c->server && serves_mmds(cfg, nc) &&
		    slirp_mds_create_at(&c->loop, mds_server_path(c->server), mds_ip, &mds, msg, sizeof(msg)) < 0) {
			log_err("%s", msg);
			be->ops->destroy(be);
			goto fail;
		}
		r = net_dev_create(vm, nc, i, be, mds, mds ? mds_ip : 0, mds ? mds_alt : 0, &nd);
		if (r < 0) {
			log_err("virtio-net%u: %s", i, strerror(-r));
			if (mds)
				mds->ops->destroy(mds);
			be->ops->destroy(be);
			ret = r;
			goto fail;
		}
		r = virtio_add(vm, &nd->vdev);
		if (r < 0) {
			log_err("virtio-net%u: no transport slot: %s", i, strerror(-r));
			virtio_dev_destroy(&nd->vdev);
			ret = r;
			goto fail;
		}
	}
	dev = (struct vm_device){ .name = "net", .state = c, .destroy = ctx_destroy, .print_stats = ctx_print_stats };
	ret = vm_add_device(vm, &dev);
	if (ret < 0)
		goto fail;
	if (need_loop) {
		ret = netloop_attach(&c->loop, &vm->io);
		if (ret < 0) {
			log_err("network loop: %s", strerror(-ret));
			return ret; /* the VM owns c now */
		}
	}
	return 0;
fail:
	/*
	 * Devices already added stay with the VM (torn down with it); their
	 * backends were registered as sources on this loop, which never ran.
	 */
	ctx_destroy(c);
	return ret;
}

DEVICE_REGISTER(virtio_net, net_setup);
