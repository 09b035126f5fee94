/* The metadata HTTP server in the network loop (I/O thread): a private Unix socket that libslirp's guestfwd connects to. */
#ifndef KILN_MDS_SERVER_H
#define KILN_MDS_SERVER_H

#include <stddef.h>

struct netloop;
struct mmds;
struct mds_server;

/* Listen on a fresh private socket and serve m on loop l. 0, or -1 with a reason. */
int mds_server_create(struct netloop *l, struct mmds *m, struct mds_server **out, char *msg, size_t msglen);
const char *mds_server_path(const struct mds_server *s);
/* After the loop stopped: close everything, remove the socket and its directory. */
void mds_server_destroy(struct mds_server *s);
void mds_server_print_stats(const struct mds_server *s, int fd);

#endif
