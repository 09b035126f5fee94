/* `kiln run` with the control plane: --api-sock, --config-file, --no-api (src/api/api_run.c). */
#ifndef KILN_API_RUN_H
#define KILN_API_RUN_H

#include "core/vm.h"

/* Largest --config-file kiln reads. */
#define API_CONFIG_FILE_MAX (1024 * 1024)

/*
 * Does cfg name usable boot files and disks? 0, or -1 after logging why with
 * log_err() (an API client gets that line back).
 */
typedef int (*api_check_inputs_fn)(const struct vm_config *cfg);

/*
 * Run one VM under the control plane, on the calling (main) thread:
 * - with cfg->config_file, load it (as PUTs would) and boot;
 * - else with cfg->kernel_path, boot from the command line;
 * - else wait for PUT /actions InstanceStart on cfg->api_sock (or a signal).
 * With cfg->api_sock the REST API is served on its own thread from before
 * boot until the VM stops; the socket is removed at exit. Returns the
 * process exit code (enum kiln_exit, 128+N for signal N).
 */
int api_run(const struct vm_config *cfg, api_check_inputs_fn check);

#endif
