/* Command-line parsing for `kiln serve`: pure, so unit tests can feed it argument vectors. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "manager/manager.h"
#include "cli/options.h"

const char mgr_usage[] =
"usage: kiln serve --state-dir DIR --api-sock PATH [options]\n"
"\n"
"Run many VMs on this host, each a `kiln run` child process, managed over a REST\n"
"API on a Unix socket (docs/manager.md): POST /vms, GET /vms, GET /vms/ID,\n"
"POST /vms/ID/stop, POST /vms/ID/start, DELETE /vms/ID. VMs keep running when\n"
"the manager exits; a new manager on the same DIR re-adopts them.\n"
"\n"
"  --state-dir DIR         where VM configs, state files, logs and API sockets live\n"
"                          (created 0700 if missing; one manager per DIR)\n"
"  --api-sock PATH         the manager's REST socket (created 0600)\n"
"  --stop-grace-ms MS      SIGTERM, then SIGKILL after MS on stop/delete (default 10000)\n"
"  --restart-backoff-ms MS first delay before a policy restart, doubled for each\n"
"                          consecutive one, at most 30 s (default 500)\n"
"  --restart-max N         consecutive restarts (runs shorter than 60 s) before the\n"
"                          policy gives up (default 5)\n"
"  --max-vms N             VMs this manager holds, 1..4096 (default 256)\n"
"  --mmds-size-limit BYTES, --http-api-max-payload-size BYTES\n"
"                          passed to every VM's kiln run (see kiln run --help);\n"
"                          default: kiln run's (51200 and 65536)\n"
"  -v, --verbose           more messages on stderr (repeat for debug)\n"
"  -h, --help              this text\n"
"\n"
"Test option:\n"
"  --vmm PATH              run PATH instead of this kiln for every VM, with the same\n"
"                          arguments (run --api-sock S --config-file F); the\n"
"                          integration test's fake VMM, which needs no /dev/kvm\n";

/* A decimal integer in [min, max]: no sign, space, suffix or overflow. 0 or -1. */
enum { OPT_STATE_DIR = 256, OPT_API_SOCK, OPT_VMM, OPT_GRACE, OPT_BACKOFF, OPT_RESTART_MAX,
       OPT_MAX_VMS, OPT_MMDS_LIMIT, OPT_API_MAX_BODY };

int mgr_parse_args(int argc, char **argv, struct mgr_options *o, char *msg, size_t msglen)
{
	static const struct option longopts[] = {
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "api-sock", required_argument, NULL, OPT_API_SOCK },
		{ "vmm", required_argument, NULL, OPT_VMM },
		{ "stop-grace-ms", required_argument, NULL, OPT_GRACE },
		{ "restart-backoff-ms", required_argument, NULL, OPT_BACKOFF },
		{ "restart-max", required_argument, NULL, OPT_RESTART_MAX },
		{ "max-vms", required_argument, NULL, OPT_MAX_VMS },
		{ "mmds-size-limit", required_argument, NULL, OPT_MMDS_LIMIT },
		{ "http-api-max-payload-size", required_argument, NULL, OPT_API_MAX_BODY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c, li = -1;

	memset(o, 0, sizeof(*o));
	o->params = (struct mgr_params){
		.grace_ms = MGR_DEF_GRACE_MS, .backoff_ms = MGR_DEF_BACKOFF_MS,
		.backoff_cap_ms = MGR_DEF_BACKOFF_CAP_MS, .restart_max = MGR_DEF_RESTART_MAX,
		.stable_ms = MGR_DEF_STABLE_MS, .max_vms = MGR_DEF_MAX_VMS,
	};
	optind = 0;   /* a fresh getopt scan, also when called twice (unit tests) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:vh", longopts, &li)) != -1) {
		switch (c) {
		case OPT_STATE_DIR:
			o->state_dir = optarg;
			break;
		case OPT_API_SOCK:
			o->api_sock = optarg;
			break;
		case OPT_VMM:
			o->vmm = optarg;
			break;
		case OPT_GRACE:
			if (cli_parse_uint(optarg, 0, 3600 * 1000, &v) < 0)
				goto bad_value;
			o->params.grace_ms = v;
			break;
		case OPT_BACKOFF:
			if (cli_parse_uint(optarg, 0, 3600 * 1000, &v) < 0)
				goto bad_value;
			o->params.backoff_ms = v;
			break;
		case OPT_RESTART_MAX:
			if (cli_parse_uint(optarg, 0, 1000000, &v) < 0)
				goto bad_value;
			o->params.restart_max = (unsigned)v;
			break;
		case OPT_MAX_VMS:
			if (cli_parse_uint(optarg, 1, MGR_MAX_VMS_LIMIT, &v) < 0)
				goto bad_value;
			o->params.max_vms = (unsigned)v;
			break;
		case OPT_MMDS_LIMIT:
			if (cli_parse_uint(optarg, CLI_MIN_MMDS_LIMIT, CLI_MAX_LIMIT, &v) < 0)
				goto bad_value;
			o->mmds_size_limit = optarg;
			break;
		case OPT_API_MAX_BODY:
			if (cli_parse_uint(optarg, CLI_MIN_API_BODY, CLI_MAX_LIMIT, &v) < 0)
				goto bad_value;
			o->api_max_body = optarg;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'h':
			o->help = true;
			return 0;
		case ':':
			snprintf(msg, msglen, "serve: %s needs a value", argv[optind - 1]);
			return -1;
		default:
			snprintf(msg, msglen, "serve: unknown option '%s' (see kiln serve --help)",
				 argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		snprintf(msg, msglen, "serve: unexpected argument '%s'", argv[optind]);
		return -1;
	}
	if (!o->state_dir || !*o->state_dir || !o->api_sock || !*o->api_sock) {
		snprintf(msg, msglen, "serve: --state-dir DIR and --api-sock PATH are required");
		return -1;
	}
	if (o->vmm && !*o->vmm) {
		snprintf(msg, msglen, "serve: --vmm needs a path");
		return -1;
	}
	return 0;
bad_value:
	/* The option's own name: with "--opt VALUE", argv[optind - 1] is the value. */
	snprintf(msg, msglen, "serve: bad value '%s' for --%s", optarg, li >= 0 ? longopts[li].name : "?");
	return -1;
}
