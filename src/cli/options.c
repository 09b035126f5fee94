/* Command-line parsing for `kiln run`: pure, so unit tests can feed it argument vectors. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "cli/options.h"

const char cli_usage[] =
"usage: kiln run --kernel PATH [options]\n"
"       kiln run --api-sock PATH [options]      (configure and start over the REST API)\n"
"       kiln run --config-file FILE [--api-sock PATH | --no-api] [options]\n"
"       kiln ctl --api-sock PATH VERB [ARGS]     (kiln ctl --help for the verbs)\n"
"       kiln serve --state-dir DIR --api-sock PATH   (many VMs; kiln serve --help)\n"
"       kiln --help | --version\n"
"\n"
"Boot a guest kernel in a KVM virtual machine.\n"
"\n"
"  --kernel PATH        Linux bzImage, or an ELF with a PVH entry note (vmlinux, test guests)\n"
"  --initrd PATH        initial ramdisk (cpio, optionally compressed)\n"
"  --cmdline STR        kernel command line (default for Linux: \"console=ttyS0 reboot=k panic=-1\")\n"
"  --cpus N             vCPUs, 1.." "254" " and at most the host's KVM limit (default 1)\n"
"  --memory MiB         guest RAM in MiB (default 256; minimum 8; at most the host's RAM)\n"
"  --memory-backing B   memfd (default), thp (memfd + transparent huge pages),\n"
"                       or hugetlb (memfd on hugetlbfs pages; reserve them first)\n"
"  --console C[,C]      where the console goes: stdio (default; raw terminal, Ctrl-A x\n"
"                       quits), file:PATH, or none; and which device carries it: serial\n"
"                       (default: 16550A, ttyS0) or virtio (virtio-console, hvc0).\n"
"                       E.g. --console virtio,file:/tmp/console.log (PATH without commas)\n"
"  --disk path=FILE[,ro][,serial=ID][,io=uring|sync]\n"
"                       a virtio-blk disk on a raw image (repeatable, up to 16; vda, vdb,\n"
"                       ...); ro: read-only; serial: up to 20 bytes (default: from the\n"
"                       file's device and inode); io: io_uring (default, falls back to\n"
"                       sync if the host has none) or pread/pwrite\n"
"  --rng                a virtio-rng device fed by the host's getrandom()\n"
"  --io-poll US         busy-poll virtio-blk and virtio-net tx queues on the I/O thread\n"
"                       for up to US microseconds (1.." "1000" ") after the last work, with\n"
"                       the guest's queue notifications (VM exits) suppressed meanwhile;\n"
"                       0 (default) sleeps until a kick. Costs host CPU while the guest\n"
"                       does I/O\n"
"  --net user[,hostfwd=tcp|udp:[HOSTIP]:HOSTPORT-[GUESTIP]:GUESTPORT]...[,restrict=on][,mac=MAC][,txdelay=US]\n"
"                       virtio-net on user-mode networking (libslirp, no root): NAT to\n"
"                       the host's network, DHCP (guest 10.0.2.15, gateway 10.0.2.2),\n"
"                       DNS at 10.0.2.3; hostfwd forwards a host port (HOSTIP default\n"
"                       127.0.0.1) to the guest; restrict=on: no connection leaves the\n"
"                       guest except through hostfwd\n"
"  --net tap=NAME[,queues=N][,mac=MAC][,txdelay=US]\n"
"                       virtio-net on an existing tap device (ip tuntap add NAME mode\n"
"                       tap [multi_queue]) with checksum/TSO offloads; queues: 1..7\n"
"                       queue pairs (multiqueue tap). --net tapfd=FD: a tap fd kiln\n"
"                       inherits (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR), with mac=, txdelay=.\n"
"                       txdelay (any --net): once the guest's frames are sent, look for\n"
"                       its next ones this much later, its kicks off meanwhile\n"
"                       (default 25, 0..1000; 0: at once). --net repeats (4)\n"
"  --metadata FILE      serve FILE (a JSON object) at http://169.254.169.254/ on every\n"
"                       --net: Firecracker MMDS paths, the EC2 layout (/latest/meta-data/)\n"
"                       and the OpenStack layout (/openstack/latest/meta_data.json); with\n"
"                       the API it seeds the store PUT/PATCH /mmds change\n"
"  --ssh-key FILE       public keys (one a line) for all three layouts of the metadata\n"
"                       service; works without --metadata\n"
"  --metadata-version V 1 (default: no token needed) or 2 (every GET needs a token from\n"
"                       PUT /latest/api/token with X-metadata-token-ttl-seconds)\n"
"  --virtio-transport T pci (default: virtio-pci on a PCI host bridge, for stock kernels)\n"
"                       or mmio (virtio-mmio, announced in the DSDT; with acpi=off in\n"
"                       --cmdline, also as virtio_mmio.device= on the command line)\n"
"  --compat M           kvm_pvm compatibility layer: auto (default: on when the host's\n"
"                       /dev/kvm is kvm_pvm), on, off (docs/compat-pvm.md)\n"
"  --symbols PATH       the kernel's System.map, to name functions in compat-layer\n"
"                       diagnostics (default: System.map next to --kernel, if any)\n"
"  --api-sock PATH      serve Firecracker's REST API (HTTP/1.1, JSON) on a Unix socket\n"
"                       created at PATH (mode 0600; a stale socket file is replaced,\n"
"                       removed at exit). Without --kernel or --config-file kiln waits\n"
"                       for PUT /boot-source, /machine-config, /drives/ID ... and\n"
"                       PUT /actions {\"action_type\":\"InstanceStart\"} (docs/api.md)\n"
"  --config-file FILE   boot from a JSON file shaped like GET /vm/config (boot-source,\n"
"                       machine-config, drives, network-interfaces, mmds-config, logger,\n"
"                       metrics, entropy); not with --kernel\n"
"  --no-api             no API server (the default without --api-sock; needs --config-file\n"
"                       or --kernel)\n"
"  --id ID              instance id for GET / and logs (default anonymous-instance)\n"
"  --http-api-max-payload-size BYTES\n"
"                       largest API request body (default 65536; more is refused, 400)\n"
"  --mmds-size-limit BYTES\n"
"                       largest metadata store, as compact JSON (default 51200, as\n"
"                       Firecracker): a PUT/PATCH /mmds beyond it gets 413, a --metadata\n"
"                       file beyond it is refused at start\n"
"  --stats              print per-vCPU exit counters and device counters at exit\n"
"  -v, --verbose        more messages on stderr (repeat for debug)\n"
"  -h, --help           this text\n"
"  --version            kiln's version\n"
"\n"
"Exit codes:\n"
"  0  guest powered off (or Ctrl-A x)     4  guest reset (i8042 or ACPI reset)\n"
"  1  VMM error, or a guest exit kiln      5  guest triple fault\n"
"     cannot handle                        6  guest panic (pvpanic)\n"
"  2  bad command line or input file       128+N  killed by signal N\n"
"  3  host setup failed (/dev/kvm, memory)\n";

_Static_assert(IOLOOP_MAX_POLL_US == 1000, "--help states --io-poll's cap");
_Static_assert(NET_TX_DELAY_US == 25 && NET_TX_DELAY_MAX_US == 1000, "--help states txdelay's default and cap");

int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_CPUS, OPT_MEMORY, OPT_BACKING, OPT_CONSOLE,
       OPT_COMPAT, OPT_STATS, OPT_VERSION, OPT_SYMBOLS, OPT_DISK, OPT_RNG, OPT_TRANSPORT,
       OPT_NET, OPT_METADATA, OPT_SSH_KEY, OPT_METADATA_VERSION,
       OPT_API_SOCK, OPT_CONFIG_FILE, OPT_NO_API, OPT_ID, OPT_IO_POLL, OPT_MMDS_LIMIT, OPT_API_MAX_BODY };

/* --id: Firecracker's instance id rule, [A-Za-z0-9-]{1,64}. */
static bool valid_instance_id(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
			return false;
	return true;
}

/* One --console word: a backend or a device. 0 or -1. */
static int parse_console_word(char *w, struct vm_config *cfg)
{
	if (!strcmp(w, "stdio")) {
		cfg->console = CONSOLE_STDIO;
	} else if (!strcmp(w, "none")) {
		cfg->console = CONSOLE_NONE;
	} else if (!strncmp(w, "file:", 5) && w[5]) {
		cfg->console = CONSOLE_FILE;
		cfg->console_path = w + 5;
	} else if (!strcmp(w, "serial")) {
		cfg->console_dev = CONSOLE_DEV_SERIAL;
	} else if (!strcmp(w, "virtio")) {
		cfg->console_dev = CONSOLE_DEV_VIRTIO;
	} else {
		return -1;
	}
	return 0;
}

/*
 * --disk path=FILE[,ro][,serial=ID][,io=uring|sync]. Splits `arg` in place
 * (argv strings are writable), so cfg points into it. 0 or -1 with msg.
 */
int cli_parse_disk(char *arg, struct disk_config *d, char *msg, size_t msglen)
{
	char *save = NULL, *tok;

	memset(d, 0, sizeof(*d));
	for (tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strncmp(tok, "path=", 5) && tok[5]) {
			d->path = tok + 5;
		} else if (!strcmp(tok, "ro")) {
			d->readonly = true;
		} else if (!strncmp(tok, "serial=", 7)) {
			if (strlen(tok + 7) > 20) {
				snprintf(msg, msglen, "--disk serial '%s': at most 20 bytes (virtio 1.2 5.2.6 GET_ID)", tok + 7);
				return -1;
			}
			d->serial = tok + 7;
		} else if (!strcmp(tok, "io=sync")) {
			d->sync_io = true;
		} else if (!strcmp(tok, "io=uring")) {
			d->sync_io = false;
		} else {
			snprintf(msg, msglen, "--disk: unknown part '%s' (expected path=FILE, ro, serial=ID, io=uring|sync)", tok);
			return -1;
		}
	}
	if (!d->path) {
		snprintf(msg, msglen, "--disk needs path=FILE");
		return -1;
	}
	return 0;
}

/* ---- networking (docs/networking.md) ---- */

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6 ||
	    strlen(s) != 17)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	/* A unicast address: the group bit set would make every frame to the guest a multicast. */
	return (mac[0] & 1) ? -1 : 0;
}

/* "[IP]:PORT" -> address (default def) and port 1..65535. */
static int parse_ep(char *s, const char *def, struct in_addr *a, uint16_t *port)
{
	char *colon = strrchr(s, ':');
	uint64_t v;

	if (!colon)
		return -1;
	*colon = 0;
	if (inet_pton(AF_INET, *s ? s : def, a) != 1 || cli_parse_uint(colon + 1, 1, 65535, &v))
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* hostfwd=tcp|udp:[HOSTIP]:HOSTPORT-[GUESTIP]:GUESTPORT (QEMU's form; HOSTIP may be left out entirely). */
static int parse_hostfwd(char *v, struct net_hostfwd *f)
{
	char *dash, *host;

	memset(f, 0, sizeof(*f));
	if (!strncmp(v, "tcp:", 4))
		f->udp = false;
	else if (!strncmp(v, "udp:", 4))
		f->udp = true;
	else
		return -1;
	host = v + 4;
	dash = strchr(host, '-');
	if (!dash)
		return -1;
	*dash = 0;
	if (!strchr(host, ':')) {
		/* "tcp:2222-:22": a bare port. */
		char buf[32];

		if (strlen(host) > 8)
			return -1;
		snprintf(buf, sizeof(buf), ":%s", host);
		if (parse_ep(buf, "127.0.0.1", &f->host_addr, &f->host_port))
			return -1;
	} else if (parse_ep(host, "127.0.0.1", &f->host_addr, &f->host_port)) {
		return -1;
	}
	return parse_ep(dash + 1, "0.0.0.0", &f->guest_addr, &f->guest_port);
}

int cli_parse_net(char *arg, struct net_config *n, char *msg, size_t msglen)
{
	char *save = NULL, *tok;
	uint64_t v;
	bool first = true;

	memset(n, 0, sizeof(*n));
	n->queues = 1;
	n->fd = -1;
	for (tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save), first = false) {
		if (first && !strcmp(tok, "user")) {
			n->kind = NET_USER;
		} else if (first && !strncmp(tok, "tap=", 4) && tok[4]) {
			n->kind = NET_TAP;
			n->ifname = tok + 4;
		} else if (first && !strncmp(tok, "tapfd=", 6)) {
			if (cli_parse_uint(tok + 6, 0, 65535, &v)) {
				snprintf(msg, msglen, "--net tapfd '%s': expected a file descriptor number", tok + 6);
				return -1;
			}
			n->kind = NET_TAPFD;
			n->fd = (int)v;
		} else if (first) {
			snprintf(msg, msglen, "--net '%s': expected user, tap=NAME or tapfd=FD first", tok);
			return -1;
		} else if (!strncmp(tok, "mac=", 4)) {
			if (parse_mac(tok + 4, n->mac)) {
				snprintf(msg, msglen, "--net mac '%s': expected a unicast xx:xx:xx:xx:xx:xx", tok + 4);
				return -1;
			}
			n->mac_set = true;
		} else if (!strncmp(tok, "queues=", 7) && n->kind == NET_TAP) {
			if (cli_parse_uint(tok + 7, 1, NET_MAX_PAIRS, &v)) {
				snprintf(msg, msglen, "--net queues '%s': expected 1 to %d", tok + 7, NET_MAX_PAIRS);
				return -1;
			}
			n->queues = (unsigned)v;
		} else if (!strncmp(tok, "txdelay=", 8)) {
			if (cli_parse_uint(tok + 8, 0, NET_TX_DELAY_MAX_US, &v)) {
				snprintf(msg, msglen, "--net txdelay '%s': expected microseconds from 0 to %d", tok + 8,
					 NET_TX_DELAY_MAX_US);
				return -1;
			}
			n->tx_delay_set = true;
			n->tx_delay_us = (unsigned)v;
		} else if (!strncmp(tok, "hostfwd=", 8) && n->kind == NET_USER) {
			if (n->nfwd == NET_MAX_HOSTFWD) {
				snprintf(msg, msglen, "--net: at most %d hostfwd", NET_MAX_HOSTFWD);
				return -1;
			}
			if (parse_hostfwd(tok + 8, &n->fwd[n->nfwd])) {
				snprintf(msg, msglen, "--net hostfwd: expected tcp|udp:[HOSTIP]:HOSTPORT-[GUESTIP]:GUESTPORT");
				return -1;
			}
			n->nfwd++;
		} else if ((!strcmp(tok, "restrict=on") || !strcmp(tok, "restrict=off")) && n->kind == NET_USER) {
			n->restrict_ = !strcmp(tok, "restrict=on");
		} else {
			snprintf(msg, msglen, "--net: unknown or misplaced part '%s' (user takes hostfwd=, restrict=, mac=, "
				 "txdelay=; tap= takes queues=, mac=, txdelay=; tapfd= takes mac=, txdelay=)", tok);
			return -1;
		}
	}
	if (first) {
		snprintf(msg, msglen, "--net needs a value (user, tap=NAME or tapfd=FD)");
		return -1;
	}
	return 0;
}

int cli_parse(int argc, char **argv, struct vm_config *cfg, enum cli_action *action,
	      uint64_t host_mem_mib, char *msg, size_t msglen)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "memory", required_argument, NULL, OPT_MEMORY },
		{ "memory-backing", required_argument, NULL, OPT_BACKING },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "compat", required_argument, NULL, OPT_COMPAT },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "symbols", required_argument, NULL, OPT_SYMBOLS },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "rng", no_argument, NULL, OPT_RNG },
		{ "io-poll", required_argument, NULL, OPT_IO_POLL },
		{ "virtio-transport", required_argument, NULL, OPT_TRANSPORT },
		{ "net", required_argument, NULL, OPT_NET },
		{ "metadata", required_argument, NULL, OPT_METADATA },
		{ "metadata-version", required_argument, NULL, OPT_METADATA_VERSION },
		{ "ssh-key", required_argument, NULL, OPT_SSH_KEY },
		{ "api-sock", required_argument, NULL, OPT_API_SOCK },
		{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
		{ "no-api", no_argument, NULL, OPT_NO_API },
		{ "id", required_argument, NULL, OPT_ID },
		{ "mmds-size-limit", required_argument, NULL, OPT_MMDS_LIMIT },
		{ "http-api-max-payload-size", required_argument, NULL, OPT_API_MAX_BODY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t max_mib = KILN_MAX_MEMORY_MIB, v;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->ncpus = 1;
	cfg->mem_bytes = 256 * MiB;
	cfg->backing = MEM_BACKING_MEMFD;
	cfg->console = CONSOLE_STDIO;
	cfg->compat = -1;
	cfg->metadata_version = 1;
	*action = CLI_RUN;
	if (host_mem_mib && host_mem_mib < max_mib)
		max_mib = host_mem_mib;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: cfg->kernel_path = optarg; break;
		case OPT_INITRD: cfg->initrd_path = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_CPUS:
			if (cli_parse_uint(optarg, 1, KILN_MAX_CPUS, &v)) {
				snprintf(msg, msglen, "--cpus '%s': expected a whole number from 1 to %d", optarg, KILN_MAX_CPUS);
				return -1;
			}
			cfg->ncpus = (unsigned)v;
			break;
		case OPT_MEMORY:
			if (cli_parse_uint(optarg, KILN_MIN_MEMORY_MIB, max_mib, &v)) {
				snprintf(msg, msglen, "--memory '%s': expected MiB as a whole number from %d to %llu%s",
					 optarg, KILN_MIN_MEMORY_MIB, (unsigned long long)max_mib,
					 max_mib == host_mem_mib ? " (this host's RAM)" : "");
				return -1;
			}
			cfg->mem_bytes = v * MiB;
			break;
		case OPT_BACKING:
			if (mem_backing_parse(optarg, &cfg->backing)) {
				snprintf(msg, msglen, "--memory-backing '%s': expected memfd, thp or hugetlb", optarg);
				return -1;
			}
			break;
		case OPT_CONSOLE: {
			/* A comma list; "file:" takes the rest of the word, so a path may not hold a comma. */
			char *save = NULL, *w;
			char copy[64];

			snprintf(copy, sizeof(copy), "%s", optarg);
			for (w = strtok_r(optarg, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
				if (parse_console_word(w, cfg) < 0) {
					snprintf(msg, msglen, "--console '%s': expected stdio, file:PATH or none, "
						 "and/or serial or virtio", copy);
					return -1;
				}
			}
			if (!optarg[0]) {
				snprintf(msg, msglen, "--console needs a value");
				return -1;
			}
			break;
		}
		case OPT_DISK:
			if (cfg->ndisks >= VM_MAX_DISKS) {
				snprintf(msg, msglen, "--disk: at most %d disks", VM_MAX_DISKS);
				return -1;
			}
			if (cli_parse_disk(optarg, &cfg->disks[cfg->ndisks], msg, msglen) < 0)
				return -1;
			cfg->ndisks++;
			break;
		case OPT_RNG: cfg->rng = true; break;
		case OPT_IO_POLL:
			if (cli_parse_uint(optarg, 0, IOLOOP_MAX_POLL_US, &v)) {
				snprintf(msg, msglen, "--io-poll '%s': expected microseconds as a whole number from 0 to %u",
					 optarg, IOLOOP_MAX_POLL_US);
				return -1;
			}
			cfg->io_poll_us = (unsigned)v;
			break;
		case OPT_NET:
			if (cfg->nnets >= VM_MAX_NETS) {
				snprintf(msg, msglen, "--net: at most %d networks", VM_MAX_NETS);
				return -1;
			}
			if (cli_parse_net(optarg, &cfg->nets[cfg->nnets], msg, msglen) < 0)
				return -1;
			cfg->nnets++;
			break;
		case OPT_METADATA: cfg->metadata_path = optarg; break;
		case OPT_SSH_KEY: cfg->ssh_key_path = optarg; break;
		case OPT_METADATA_VERSION:
			if (cli_parse_uint(optarg, 1, 2, &v)) {
				snprintf(msg, msglen, "--metadata-version '%s': expected 1 or 2", optarg);
				return -1;
			}
			cfg->metadata_version = (int)v;
			break;
		case OPT_TRANSPORT:
			if (!strcmp(optarg, "pci")) cfg->virtio_transport = VIRTIO_TRANSPORT_PCI;
			else if (!strcmp(optarg, "mmio")) cfg->virtio_transport = VIRTIO_TRANSPORT_MMIO;
			else {
				snprintf(msg, msglen, "--virtio-transport '%s': expected pci or mmio", optarg);
				return -1;
			}
			break;
		case OPT_COMPAT:
			if (!strcmp(optarg, "auto")) cfg->compat = -1;
			else if (!strcmp(optarg, "on")) cfg->compat = 1;
			else if (!strcmp(optarg, "off")) cfg->compat = 0;
			else {
				snprintf(msg, msglen, "--compat '%s': expected auto, on or off", optarg);
				return -1;
			}
			break;
		case OPT_API_SOCK:
			if (!optarg[0]) {
				snprintf(msg, msglen, "--api-sock needs a path");
				return -1;
			}
			cfg->api_sock = optarg;
			break;
		case OPT_CONFIG_FILE: cfg->config_file = optarg; break;
		case OPT_NO_API: cfg->no_api = true; break;
		case OPT_ID:
			if (!valid_instance_id(optarg)) {
				snprintf(msg, msglen, "--id '%s': expected 1 to 64 letters, digits or '-'", optarg);
				return -1;
			}
			cfg->instance_id = optarg;
			break;
		case OPT_MMDS_LIMIT:
			if (cli_parse_uint(optarg, CLI_MIN_MMDS_LIMIT, CLI_MAX_LIMIT, &v)) {
				snprintf(msg, msglen, "--mmds-size-limit '%s': expected bytes as a whole number from %u to %u",
					 optarg, CLI_MIN_MMDS_LIMIT, CLI_MAX_LIMIT);
				return -1;
			}
			cfg->mmds_size_limit = (size_t)v;
			break;
		case OPT_API_MAX_BODY:
			if (cli_parse_uint(optarg, CLI_MIN_API_BODY, CLI_MAX_LIMIT, &v)) {
				snprintf(msg, msglen, "--http-api-max-payload-size '%s': expected bytes as a whole number "
					 "from %u to %u", optarg, CLI_MIN_API_BODY, CLI_MAX_LIMIT);
				return -1;
			}
			cfg->api_max_body = (size_t)v;
			break;
		case OPT_STATS: cfg->stats = true; break;
		case OPT_SYMBOLS: cfg->symbols_path = optarg; break;
		case 'v': cfg->verbose++; break;
		case 'h': *action = CLI_HELP; return 0;
		case OPT_VERSION: *action = CLI_VERSION; return 0;
		case ':':
			snprintf(msg, msglen, "%s needs a value", argv[optind - 1]);
			return -1;
		default:
			snprintf(msg, msglen, "unknown option '%s' (see kiln --help)", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(msg, msglen, "unexpected argument '%s' (see kiln --help)", argv[optind]);
		return -1;
	}
	if (cfg->no_api && cfg->api_sock) {
		snprintf(msg, msglen, "--no-api and --api-sock exclude each other");
		return -1;
	}
	if (cfg->config_file && cfg->kernel_path) {
		snprintf(msg, msglen, "--config-file and --kernel exclude each other (the file has a boot-source)");
		return -1;
	}
	if (cfg->no_api && !cfg->config_file && !cfg->kernel_path) {
		snprintf(msg, msglen, "--no-api needs --config-file (or --kernel)");
		return -1;
	}
	if (!cfg->kernel_path && !cfg->config_file && !cfg->api_sock) {
		snprintf(msg, msglen, "--kernel PATH is required, or --api-sock PATH / --config-file FILE (see kiln --help)");
		return -1;
	}
	return 0;
}
