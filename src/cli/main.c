/* kiln's entry point: `kiln run ...` parses options, checks the inputs, creates, loads and runs the VM; `kiln ctl` is the API client. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "cli/options.h"
#include "cli/ctl.h"
#include "api/api_run.h"
#include "core/vm.h"
#include "core/loader.h"
#include "core/log.h"
#include "arch/x86/boot.h"
#include "net/net_setup.h"
#include "manager/manager.h"

static uint64_t host_mem_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);

	return (pages > 0 && psz > 0) ? (uint64_t)pages * (uint64_t)psz / MiB : 0;
}

/* Fail fast on a kernel file that is missing, unreadable or no kernel, before touching /dev/kvm. */
static int check_inputs(const struct vm_config *cfg)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	const char *why = NULL;
	char msg[256];

	if (loader_read_file(cfg->kernel_path, &buf, &len, msg, sizeof(msg)) < 0) {
		log_err("--kernel %s", msg);
		return -1;
	}
	if (boot_detect(buf, len, &why) < 0) {
		log_err("--kernel %s: %s", cfg->kernel_path, why ? why : "not a kernel kiln can boot");
		free(buf);
		return -1;
	}
	free(buf);
	if (cfg->initrd_path && access(cfg->initrd_path, R_OK) < 0) {
		log_err("--initrd %s: %s", cfg->initrd_path, strerror(errno));
		return -1;
	}
	if (net_check_inputs(cfg, msg, sizeof(msg)) < 0) {
		log_err("%s", msg);
		return -1;
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		const struct disk_config *d = &cfg->disks[i];
		struct stat st;

		if (stat(d->path, &st) < 0 || access(d->path, d->readonly ? R_OK : R_OK | W_OK) < 0) {
			log_err("--disk %s: %s%s", d->path, strerror(errno),
				errno == EACCES || errno == EROFS ? (d->readonly ? "" : " (add ,ro for read-only)") : "");
			return -1;
		}
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			log_err("--disk %s: not a regular file or block device", d->path);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	enum cli_action action;
	struct vm vm;
	char msg[256];
	int code;

	if (argc < 2) {
		fputs(cli_usage, stderr);
		return KILN_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(cli_usage, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("kiln %s\n", KILN_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "serve"))   /* the host manager of many VMs (docs/manager.md) */
		return manager_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "run")) {
		fprintf(stderr, "kiln: unknown command '%s' (see kiln --help)\n", argv[1]);
		return KILN_EXIT_USAGE;
	}
	if (cli_parse(argc - 1, argv + 1, &cfg, &action, host_mem_mib(), msg, sizeof(msg)) < 0) {
		fprintf(stderr, "kiln: %s\n", msg);
		return KILN_EXIT_USAGE;
	}
	if (action == CLI_HELP) {
		fputs(cli_usage, stdout);
		return 0;
	}
	if (action == CLI_VERSION) {
		printf("kiln %s\n", KILN_VERSION);
		return 0;
	}
	log_set_level(cfg.verbose >= 2 ? LOG_DEBUG : cfg.verbose == 1 ? LOG_INFO : LOG_WARN);
	/* A console reader that goes away (kiln ... | head) must cost output, not the VM. */
	signal(SIGPIPE, SIG_IGN);
	/* The control plane: an API socket and/or a config file (docs/api.md). */
	if (cfg.api_sock || cfg.config_file)
		return api_run(&cfg, check_inputs);
	if (check_inputs(&cfg) < 0)
		return KILN_EXIT_USAGE;

	code = vm_create(&vm, &cfg);
	if (code == 0)
		code = vm_load(&vm);
	if (code == 0)
		code = vm_run(&vm);
	vm_destroy(&vm);
	return code;
}
