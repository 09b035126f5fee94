/* Network setup from the VM configuration (--net, --metadata, --ssh-key). */
#ifndef KILN_NET_SETUP_H
#define KILN_NET_SETUP_H

#include <stddef.h>

struct vm_config;

/* Before any VM exists: the metadata inputs parse and the options fit together. 0, or -1 with a reason. */
int net_check_inputs(const struct vm_config *cfg, char *msg, size_t msglen);

#endif
