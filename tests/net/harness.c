/*
 * A test harness for kiln's user-mode network and metadata service without a VM: the host kernel, through a tap in a
 * network namespace, plays the guest; this program plays virtio-net (frames in, the metadata split, frames out).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>
#include "cli/options.h"
#include "virtio/net.h"
#include "net/mds_server.h"
#include "net/mmds.h"
#include "net/netloop.h"
#include "core/ioloop.h"
#include "net/slirp.h"

/*
 * usage: harness TAP [--metadata FILE] [--ssh-key FILE] [--metadata-version N] [--net user,...]
 * Runs until SIGTERM/SIGINT. The net_dev functions the backends call are
 * provided here: net_inject writes to the tap, net_tx_resume retries.
 */

static int tap_fd = -1;
static volatile sig_atomic_t stop;
static pthread_mutex_t tap_lock = PTHREAD_MUTEX_INITIALIZER;

void net_inject(struct net_dev *nd, const void *frame, size_t len)
{
	pthread_mutex_lock(&tap_lock);
	if (write(tap_fd, frame, len) < 0)
		perror("harness: tap write");
	pthread_mutex_unlock(&tap_lock);
}

void net_inject_flush(struct net_dev *nd)
{
}

void net_tx_resume(struct net_dev *nd, unsigned pair)
{
}

static void on_signal(int sig)
{
	stop = 1;
}

int main(int argc, char **argv)
{
	struct ifreq ifr = { 0 };
	struct net_config nc = { .kind = NET_USER, .queues = 1 };
	const char *md = NULL, *key = NULL;
	int version = 1;
	struct ioloop io;
	struct netloop loop;
	struct mmds m;
	struct mds_server *srv = NULL;
	struct net_backend *user = NULL, *mds = NULL;
	char msg[256];
	uint32_t mip, malt;
	static uint8_t buf[VNET_HDR_LEN + 65536];

	if (argc < 2) {
		fprintf(stderr, "usage: harness TAP [--metadata FILE] [--ssh-key FILE] [--metadata-version N] [--net ...]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--metadata"))
			md = argv[i + 1];
		else if (!strcmp(argv[i], "--ssh-key"))
			key = argv[i + 1];
		else if (!strcmp(argv[i], "--metadata-version"))
			version = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--net") && cli_parse_net(argv[i + 1], &nc, msg, sizeof(msg)) < 0) {
			fprintf(stderr, "harness: %s\n", msg);
			return 2;
		}
	}
	tap_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[1]);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	if (tap_fd < 0 || ioctl(tap_fd, TUNSETIFF, &ifr) < 0) {
		perror("harness: tap");
		return 3;
	}
	if (netloop_init(&loop) < 0)
		return 3;
	if (slirp_backend_create(&loop, &nc, &user, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "harness: %s\n", msg);
		return 3;
	}
	if (md || key) {
		if (mmds_init_files(&m, md, key, (enum mmds_version)version, msg, sizeof(msg)) < 0 ||
		    mds_server_create(&loop, &m, &srv, msg, sizeof(msg)) < 0 ||
		    slirp_mds_create(&loop, mds_server_path(srv), &mds, msg, sizeof(msg)) < 0) {
			fprintf(stderr, "harness: %s\n", msg);
			return 3;
		}
	}
	/* The backends hand frames to their device; here net_inject() ignores which. */
	user->nd = (struct net_dev *)&tap_fd;
	if (mds)
		mds->nd = user->nd;
	inet_pton(AF_INET, MDS_ADDR, &mip);
	inet_pton(AF_INET, MDS_HOST, &malt);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	/* As in kiln: the network loop is a source of the I/O thread. */
	if (ioloop_init(&io) < 0 || netloop_attach(&loop, &io) < 0 || ioloop_start(&io) < 0)
		return 3;
	fprintf(stderr, "harness: running on %s\n", argv[1]);
	while (!stop) {
		struct pollfd p = { .fd = tap_fd, .events = POLLIN };
		ssize_t n;
		struct iovec iov;
		struct net_backend *be;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = read(tap_fd, buf + VNET_HDR_LEN, sizeof(buf) - VNET_HDR_LEN);
		if (n <= 0)
			continue;
		memset(buf, 0, VNET_HDR_LEN);
		iov = (struct iovec){ .iov_base = buf, .iov_len = VNET_HDR_LEN + (size_t)n };
		be = (mds && net_frame_for_mds(buf + VNET_HDR_LEN, (size_t)n, mip, malt)) ? mds : user;
		/* -EAGAIN (ring full): the frame is lost here, TCP resends; the device keeps it instead. */
		be->ops->tx(be, 0, &iov, 1, iov.iov_len);
	}
	netloop_fini(&loop);
	ioloop_destroy(&io);
	if (srv)
		mds_server_destroy(srv);
	if (mds)
		mds->ops->destroy(mds);
	user->ops->destroy(user);
	if (md || key)
		mmds_fini(&m);
	return 0;
}
