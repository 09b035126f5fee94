/* `kiln serve`, the host manager of many VMs: its pure model (ids, routes, records, restart policy) and entry point. */
#ifndef KILN_MANAGER_H
#define KILN_MANAGER_H

/*
 * The manager is the KubeVirt virt-handler role on one host: each VM is a
 * `kiln run` child process; the manager starts, reaps, restarts, stops and
 * deletes them, and keeps one state file per VM so that a restarted manager
 * re-adopts the VMs still alive. docs/manager.md is the user's view.
 *
 * This header is the part unit tests see: everything here is pure, or touches
 * only the files it is handed. The event loop, the processes and the HTTP
 * server are in mgr_internal.h.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MGR_ID_MAX        64          /* VM ids: [A-Za-z0-9_-]{1,64} */
#define MGR_MAX_BODY      (64 * 1024) /* request bodies (a VM config); Firecracker's is 51200 */
#define MGR_BOOT_ID_LEN   36          /* /proc/sys/kernel/random/boot_id, a UUID */
#define MGR_MSG_MAX       256         /* fault messages, NUL included */
#define MGR_STATE_VERSION 1           /* state.json "version" */
#define MGR_STATE_MAX     (16 * 1024) /* a state.json larger than this is corrupt */

/* Defaults of the tunables (kiln serve --help). */
#define MGR_DEF_GRACE_MS       10000  /* SIGTERM -> SIGKILL */
#define MGR_DEF_BACKOFF_MS     500    /* first restart delay, doubled per consecutive restart */
#define MGR_DEF_BACKOFF_CAP_MS 30000
#define MGR_DEF_RESTART_MAX    5      /* consecutive restarts before giving up */
#define MGR_DEF_STABLE_MS      60000  /* a run this long resets the consecutive count */
#define MGR_DEF_MAX_VMS        256
#define MGR_MAX_VMS_LIMIT      4096

enum mgr_restart { MGR_RESTART_NEVER, MGR_RESTART_ON_FAILURE, MGR_RESTART_ALWAYS };

/*
 * running: a process is up. stopping: a stop was asked for, SIGTERM sent, the
 * process is still up (SIGKILL at the grace deadline). restarting: the
 * process ended and the policy restarts it after the backoff. exited: no
 * process, none planned.
 */
enum mgr_vm_state { MGR_VM_RUNNING, MGR_VM_STOPPING, MGR_VM_RESTARTING, MGR_VM_EXITED };

/* How the last process of a VM ended. */
enum mgr_exit_kind {
	MGR_EXIT_NONE,         /* never ended (or never started) */
	MGR_EXIT_CODE,         /* value: exit code */
	MGR_EXIT_SIGNAL,       /* value: signal number */
	MGR_EXIT_UNKNOWN,      /* ended while not our child (adopted, or while the manager was down) */
	MGR_EXIT_SPAWN_FAILED, /* value: errno of the failed exec */
};
struct mgr_exit {
	enum mgr_exit_kind kind;
	int value;
};

/* What state.json holds: enough to re-adopt, restart or report a VM after the manager restarts. */
struct mgr_record {
	char id[MGR_ID_MAX + 1];
	enum mgr_restart restart;
	enum mgr_vm_state state;
	pid_t pid;                        /* the VM process; 0: none */
	uint64_t pid_start;               /* its /proc/PID/stat starttime (ticks after boot) */
	char boot_id[MGR_BOOT_ID_LEN + 1];/* the host boot the pid belongs to */
	int64_t started_at_ms;            /* wall clock, ms since the epoch; 0: never */
	int64_t exited_at_ms;             /* wall clock of the last exit; 0: none */
	unsigned restarts;                /* restarts done by the policy, in total */
	unsigned streak;                  /* ... since the last run that lasted stable_ms */
	bool stop_requested;              /* stopped by the user: never restarted */
	bool gave_up;                     /* the policy hit restart_max */
	struct mgr_exit exit;
};

/* Tunables: restart policy and stop behaviour. */
struct mgr_params {
	uint64_t grace_ms;
	uint64_t backoff_ms;
	uint64_t backoff_cap_ms;
	unsigned restart_max;
	uint64_t stable_ms;
	unsigned max_vms;
};

/* A refused request: HTTP status and the fault message. */
struct mgr_err {
	int status;
	char msg[MGR_MSG_MAX];
};

/* --- mgr_model.c: pure --- */

void mgr_err_set(struct mgr_err *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* 0 if id is [A-Za-z0-9_-]{1,MGR_ID_MAX} (len bytes, NULs included), else -1 with a 400 in err (may be NULL). */
int mgr_check_id(const char *id, size_t len, struct mgr_err *err);

const char *mgr_restart_str(enum mgr_restart r);
int mgr_restart_parse(const char *s, enum mgr_restart *out);  /* 0 or -1 */
const char *mgr_state_str(enum mgr_vm_state s);
int mgr_state_parse(const char *s, enum mgr_vm_state *out);   /* 0 or -1 */

/* One line for humans, e.g. "killed by signal 9 (SIGKILL)"; "" for MGR_EXIT_NONE. Returns buf. */
const char *mgr_exit_describe(const struct mgr_exit *e, char *buf, size_t len);

/* A waitpid() status as an exit. */
struct mgr_exit mgr_exit_from_wait(int wstatus);

/* What the restart policy does when a VM's process has ended. */
enum mgr_decision {
	MGR_KEEP_EXITED,   /* policy or a stop says no */
	MGR_RESTART,       /* after mgr_backoff_ms(streak) */
	MGR_GIVE_UP,       /* the policy wanted to, but `streak` reached restart_max */
};
/*
 * never: no. on-failure: a non-zero exit code, a signal, or a failed spawn;
 * an unknown status is not evidence of failure, so no. always: yes, whatever
 * the exit. A stop_requested VM is never restarted.
 */
enum mgr_decision mgr_restart_decide(enum mgr_restart policy, const struct mgr_exit *e,
				     bool stop_requested, unsigned streak, const struct mgr_params *p);
/* Delay before restart number streak+1: backoff_ms * 2^streak, capped at max(backoff_cap_ms, backoff_ms). */
uint64_t mgr_backoff_ms(unsigned streak, const struct mgr_params *p);
/* The consecutive-restart count after a run of ran_ms: 0 if the run was stable, else unchanged. */
unsigned mgr_streak_after_run(unsigned streak, uint64_t ran_ms, const struct mgr_params *p);

/* state.json <-> record. from_json checks every field; -1 with a reason in err->msg. */
struct json_t *mgr_record_to_json(const struct mgr_record *r);
int mgr_record_from_json(const struct json_t *j, struct mgr_record *r, struct mgr_err *err);

/*
 * Parse /proc/PID/stat text: the state letter (field 3) and starttime
 * (field 22). comm (field 2) may hold spaces and parentheses: the fields
 * after it are counted from its last ')'. 0 or -1.
 */
int mgr_parse_proc_stat(const char *buf, size_t len, char *state, uint64_t *starttime);

/* The REST API's paths. */
enum mgr_ep { MGR_EP_ROOT, MGR_EP_VMS, MGR_EP_VM, MGR_EP_VM_STOP, MGR_EP_VM_START };
enum mgr_method { MGR_GET, MGR_POST, MGR_DELETE };
struct mgr_route {
	enum mgr_ep ep;
	enum mgr_method method;
	char id[MGR_ID_MAX + 1];
};
/*
 * Route (method, path): 0, or -1 with 404 (no such path), 405 (path exists,
 * method does not; err->msg names the allowed ones) or 400 (bad id).
 */
int mgr_route(const char *method, const char *path, struct mgr_route *r, struct mgr_err *err);

/* A POST /vms body: {"id": ..., "config": {...}, "restart": ...}. */
struct mgr_create {
	char id[MGR_ID_MAX + 1];
	enum mgr_restart restart;     /* default never */
	struct json_t *config;        /* an object; one reference owned */
};
/*
 * Parse and check a POST /vms body: size, JSON syntax (no duplicate keys, no
 * trailing bytes), no unknown fields, id and config required with the right
 * types. 0 (free c->config with json_decref) or -1 with a 400/413 in err.
 */
int mgr_parse_create(const char *body, size_t len, struct mgr_create *c, struct mgr_err *err);

/*
 * The API's view of a VM (GET /vms/{id}): the record plus what only the
 * running manager knows. dir is the VM's state directory; next_restart_ms is
 * the time left before a planned restart (used when restarting).
 */
struct json_t *mgr_record_view(const struct mgr_record *r, const char *dir, bool adopted,
			       uint64_t next_restart_ms);

/* --- mgr_state.c: files --- */

/*
 * Write data to path atomically: path.tmp, fsync, rename over path. A reader
 * sees the old or the new content, never a mix, whenever the writer dies.
 * 0 or -errno.
 */
int mgr_write_atomic(const char *path, const char *data, size_t len);
/* Read a whole file of at most max bytes into a malloc'd NUL-terminated buffer. 0 or -errno (-EFBIG). */
int mgr_read_file(const char *path, size_t max, char **out, size_t *len);
/* Save rec as DIR/state.json, atomically. 0 or -errno. */
int mgr_state_save(const char *dir, const struct mgr_record *rec);
/* Load DIR/state.json. 0, or -1 with the reason in err->msg. */
int mgr_state_load(const char *dir, struct mgr_record *rec, struct mgr_err *err);
/* This boot's id (MGR_BOOT_ID_LEN chars + NUL into buf). 0 or -errno. */
int mgr_read_boot_id(char buf[MGR_BOOT_ID_LEN + 1]);
/* State letter and starttime of a live (or zombie) pid. 0, or -errno (-ESRCH: no such process). */
int mgr_proc_stat(pid_t pid, char *state, uint64_t *starttime);
/* Remove a directory tree without following symlinks. 0 or -errno (first failure). */
int mgr_rmtree(const char *path);

/* --- mgr_args.c --- */

struct mgr_options {
	const char *state_dir;
	const char *api_sock;
	const char *vmm;          /* NULL: /proc/self/exe (this kiln) */
	struct mgr_params params;
	/* Passed as they are to every VM's `kiln run` (validated here); NULL: kiln run's default. */
	const char *mmds_size_limit;
	const char *api_max_body;
	int verbose;
	bool help;
};
extern const char mgr_usage[];
/* Parse argv (after "serve"). 0, or -1 with a one-line message. */
int mgr_parse_args(int argc, char **argv, struct mgr_options *o, char *msg, size_t msglen);

/* --- manager.c --- */

/* `kiln serve ...` (argv[0] is "serve"): runs until SIGTERM/SIGINT; the exit code. */
int manager_main(int argc, char **argv);

#endif
