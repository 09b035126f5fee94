/* The running manager: struct manager (owns everything), its VMs, and the calls between the loop and the HTTP layer. */
#ifndef KILN_MGR_INTERNAL_H
#define KILN_MGR_INTERNAL_H

#include <signal.h>
#include "manager/manager.h"

/* epoll keys: the kind in the top byte; a pidfd's key carries its VM's serial. */
#define MGR_TAG_SIG   (1ull << 56)
#define MGR_TAG_HTTP  (2ull << 56)
#define MGR_TAG_PIDFD (3ull << 56)
#define MGR_TAG_CONN  (4ull << 56)
#define MGR_TAG_MASK  (0xffull << 56)

struct json_t;
struct mgr_http;             /* the REST server (mgr_http.c) */
struct mgr_req;              /* one HTTP connection and its request (mgr_http.c) */

/* One VM: its record (what state.json says) plus what only this manager process knows. */
struct mgr_vm {
	struct mgr_record rec;
	char *dir;               /* STATE_DIR/vms/ID */
	uint64_t serial;         /* epoll key of its pidfd; never reused */
	int pidfd;               /* adopted VMs only (not our child: no waitpid); else -1 */
	bool adopted;
	bool deleting;           /* DELETE asked: remove the directory once the process is gone */
	char delete_err[128];    /* why removing the directory failed, for DELETE's answer */
	char note[MGR_MSG_MAX];   /* why state.json could not be read, for GET */
	uint64_t deadline;       /* monotonic ms: SIGKILL when stopping, spawn when restarting; 0 none */
	uint64_t started_mono;   /* monotonic ms of our spawn; 0 when adopted */
	struct mgr_req *waiters; /* suspended stop/delete requests, answered when the process ends */
};

/* The manager: one per `kiln serve`, no globals. Everything runs on the one thread of mgr_run(). */
struct manager {
	struct mgr_options opt;
	char *state_dir;         /* absolute */
	char *vms_dir;           /* STATE_DIR/vms */
	char *vmm;               /* what each VM runs: /proc/self/exe or --vmm's absolute path */
	char boot_id[MGR_BOOT_ID_LEN + 1];
	int epfd, sigfd, lockfd;
	sigset_t oldmask;
	struct mgr_http *http;
	struct mgr_vm **vms;     /* sorted by id */
	size_t nvms;
	uint64_t next_serial;
	bool quit;
};

/* --- mgr_vm.c: the VMs --- */

uint64_t mgr_now_ms(void);                      /* monotonic */
char *mgr_path_join(const char *a, const char *b);   /* "a/b", malloc'd; NULL on ENOMEM */
struct mgr_vm *mgr_find(struct manager *m, const char *id);
struct mgr_vm *mgr_find_serial(struct manager *m, uint64_t serial);
/* Forget a VM (its process, if any, is not touched: VMs outlive the manager). */
void mgr_vm_free(struct manager *m, struct mgr_vm *vm);
/* Signal the VM's process group (race-free: see docs/manager.md, Processes). */
void mgr_vm_signal(struct mgr_vm *vm, int sig);
/*
 * The VM's process is gone (reaped, its pidfd fired, found dead at start, or
 * its exec failed): record how, apply the restart policy, queue the answers
 * of waiting requests; a VM being deleted is removed and freed.
 */
void mgr_vm_ended(struct manager *m, struct mgr_vm *vm, struct mgr_exit ex);
/* The VM's restart backoff is over: spawn it again. */
void mgr_vm_restart_due(struct manager *m, struct mgr_vm *vm);
/* Read every STATE_DIR/vms/ID/state.json, re-adopt live VMs, mark dead ones, clean up leftovers. 0 or -1. */
int mgr_load_vms(struct manager *m);
/* GET /vms/{id}'s body. */
struct json_t *mgr_vm_json(struct manager *m, const struct mgr_vm *vm);
/* Create the VM's directory and start it. 0 and *out, or -1 with err (4xx/5xx); nothing left behind. */
int mgr_vm_create(struct manager *m, const struct mgr_create *c, struct mgr_vm **out,
		  struct mgr_err *err);
/* Start an exited VM again (resets the restart count). 0 or -1 with err. */
int mgr_vm_start(struct manager *m, struct mgr_vm *vm, struct mgr_err *err);
/* Stop: SIGTERM, SIGKILL at the grace deadline; no restart. 1: wait for the process, 0: done. */
int mgr_vm_stop(struct manager *m, struct mgr_vm *vm);
/*
 * Delete: stop, then remove the directory and forget the VM. 1: wait for the
 * process (the VM is freed then); 0: gone now (vm is freed); -1 with err:
 * the directory could not be removed (vm is freed all the same).
 */
int mgr_vm_delete(struct manager *m, struct mgr_vm *vm, struct mgr_err *err);

/* --- mgr_http.c, for the loop --- */

/* Bind opt.api_sock and start the HTTP server on the manager's loop. 0 or -1 (logged). */
int mgr_http_start(struct manager *m);
/* Answer any waiting request with 503, close every connection, remove the socket. */
void mgr_http_stop(struct manager *m);
/* An epoll event for the listening socket (MGR_TAG_HTTP) or a connection (MGR_TAG_CONN). */
void mgr_http_event(struct manager *m, uint64_t key, uint32_t events);
/* Send answers queued by mgr_http_vm_done, drop timed-out connections; call after every epoll_wait. */
void mgr_http_run(struct manager *m);
/* The server's own deadline in ms from now; -1: none. */
int64_t mgr_http_timeout(struct manager *m);
/* vm's process is gone: queue the answers of its waiting stop/delete requests. */
void mgr_http_vm_done(struct manager *m, struct mgr_vm *vm);

#endif
