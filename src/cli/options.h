/* Command-line parsing for `kiln run`: pure, so unit tests can feed it argument vectors. */
#ifndef KILN_OPTIONS_H
#define KILN_OPTIONS_H

#include "core/vm.h"

#define KILN_MAX_CPUS 254          /* xAPIC ids 0..254 (255 is broadcast) */
#define KILN_MIN_MEMORY_MIB 8
#define KILN_MAX_MEMORY_MIB (1024 * 1024) /* 1 TiB */

enum cli_action { CLI_RUN, CLI_HELP, CLI_VERSION };

/*
 * Parse argv (after "run"). Returns 0 and fills cfg/action, or -1 with a
 * one-line message in msg. `host_mem_mib` bounds --memory (0: unknown).
 */
int cli_parse(int argc, char **argv, struct vm_config *cfg, enum cli_action *action,
	      uint64_t host_mem_mib, char *msg, size_t msglen);

/* Parse a decimal integer in [min, max]; 0 or -1. Rejects signs, spaces, suffixes, overflow. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* The largest --mmds-size-limit and --http-api-max-payload-size: 16 MiB, held in memory whole. */
#define CLI_MAX_LIMIT (16u << 20)
/* The smallest of each. */
#define CLI_MIN_MMDS_LIMIT 2u
#define CLI_MIN_API_BODY 1024u

/* Parse one --disk value in place (arg is split); 0 or -1 with a message. */
int cli_parse_disk(char *arg, struct disk_config *d, char *msg, size_t msglen);

/* Parse one --net value in place (arg is split); 0 or -1 with a message. */
int cli_parse_net(char *arg, struct net_config *n, char *msg, size_t msglen);

extern const char cli_usage[];

#endif
