/* kiln serve's VMs: the table, their processes (spawn, signal, end, restart), re-adoption, and the API's operations. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <jansson.h>
#include "core/log.h"
#include "manager/mgr_internal.h"

/* Directory entries looked at when loading the state dir, whatever is in it. */
#define MGR_SCAN_MAX (4 * MGR_MAX_VMS_LIMIT)

uint64_t mgr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *mgr_path_join(const char *a, const char *b)
{
	char *p;

	return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

/* --- the VM table: sorted by id, so GET /vms lists in a stable order --- */

static size_t vm_index(const struct manager *m, const char *id, bool *found)
{
	size_t lo = 0, hi = m->nvms;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->vms[mid]->rec.id, id);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct mgr_vm *mgr_find(struct manager *m, const char *id)
{
	bool found;
	size_t i = vm_index(m, id, &found);

	return found ? m->vms[i] : NULL;
}

struct mgr_vm *mgr_find_serial(struct manager *m, uint64_t serial)
{
	for (size_t i = 0; i < m->nvms; i++)
		if (m->vms[i]->serial == serial)
			return m->vms[i];
	return NULL;
}

/* A new VM entry (record: id only, exited, restart never), inserted in the table. NULL on ENOMEM. */
static struct mgr_vm *vm_new(struct manager *m, const char *id)
{
	struct mgr_vm *vm, **v;
	bool found;
	size_t i = vm_index(m, id, &found);

	if (found)
		return NULL;
	v = realloc(m->vms, (m->nvms + 1) * sizeof(*v));
	if (!v)
		return NULL;
	m->vms = v;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	vm->dir = mgr_path_join(m->vms_dir, id);
	if (!vm->dir) {
		free(vm);
		return NULL;
	}
	snprintf(vm->rec.id, sizeof(vm->rec.id), "%s", id);
	vm->rec.state = MGR_VM_EXITED;
	vm->pidfd = -1;
	vm->serial = ++m->next_serial;
	memmove(&m->vms[i + 1], &m->vms[i], (m->nvms - i) * sizeof(*v));
	m->vms[i] = vm;
	m->nvms++;
	return vm;
}

static void vm_close_pidfd(struct manager *m, struct mgr_vm *vm)
{
	if (vm->pidfd < 0)
		return;
	epoll_ctl(m->epfd, EPOLL_CTL_DEL, vm->pidfd, NULL);
	close(vm->pidfd);
	vm->pidfd = -1;
}

/* Forget a VM (its process, if any, is not touched). */
void mgr_vm_free(struct manager *m, struct mgr_vm *vm)
{
	bool found;
	size_t i = vm_index(m, vm->rec.id, &found);

	if (found && m->vms[i] == vm) {
		memmove(&m->vms[i], &m->vms[i + 1], (m->nvms - i - 1) * sizeof(*m->vms));
		m->nvms--;
	}
	vm_close_pidfd(m, vm);
	free(vm->dir);
	free(vm);
}

static void vm_save(struct mgr_vm *vm)
{
	int rc = mgr_state_save(vm->dir, &vm->rec);

	if (rc < 0)
		log_err("serve: %s: cannot write state.json: %s", vm->rec.id, strerror(-rc));
}

/* Remove the VM's directory: renamed out of the way first, so it vanishes at once even if removal is slow or partial. */
static int vm_remove_files(struct manager *m, struct mgr_vm *vm)
{
	char *tmp = NULL;
	int rc;

	if (asprintf(&tmp, "%s/.del-%s-%llu", m->vms_dir, vm->rec.id,
		     (unsigned long long)vm->serial) < 0)
		return -ENOMEM;
	if (rename(vm->dir, tmp) == 0) {
		rc = mgr_rmtree(tmp);
		if (rc < 0)   /* out of sight already; the next start retries */
			log_warn("serve: %s: left %s behind: %s", vm->rec.id, tmp, strerror(-rc));
		rc = 0;
	} else {
		rc = errno == ENOENT ? 0 : mgr_rmtree(vm->dir);
	}
	free(tmp);
	return rc;
}

/* --- processes --- */

/*
 * Signal the VM's process group (the VMM and anything it started). An
 * unreaped child's pid cannot be reused, so neither can its group id; an
 * adopted process is signalled through its pidfd, and its group only while
 * the pidfd says the leader still lives.
 */
void mgr_vm_signal(struct mgr_vm *vm, int sig)
{
	pid_t pid = vm->rec.pid;

	if (pid <= 0)
		return;
	if (vm->adopted) {
		struct pollfd p = { .fd = vm->pidfd, .events = POLLIN };

		if (pidfd_send_signal(vm->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
			log_warn("serve: %s: pidfd_send_signal: %s", vm->rec.id, strerror(errno));
		if (poll(&p, 1, 0) == 0)
			kill(-pid, sig);
	} else if (kill(-pid, sig) < 0) {
		kill(pid, sig);
	}
}

/* Start the VM's process: `VMM run --api-sock DIR/api.sock --config-file DIR/config.json`. 0 or -errno. */
static int vm_spawn(struct manager *m, struct mgr_vm *vm)
{
	char *sock = mgr_path_join(vm->dir, "api.sock"), *cfg = mgr_path_join(vm->dir, "config.json");
	char *con = mgr_path_join(vm->dir, "console.log"), *klog = mgr_path_join(vm->dir, "kiln.log");
	int fd_null = -1, fd_con = -1, fd_log = -1, rc = -ENOMEM;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	char state;
	uint64_t start = 0;
	pid_t pid;

	if (!sock || !cfg || !con || !klog)
		goto out;
	/* A socket left by the last run would make the new VMM's bind() fail. */
	unlink(sock);
	fd_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fd_con = open(con, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	fd_log = open(klog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd_null < 0 || fd_con < 0 || fd_log < 0) {
		rc = -errno;
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd_null, 0);
	posix_spawn_file_actions_adddup2(&fa, fd_con, 1);
	posix_spawn_file_actions_adddup2(&fa, fd_log, 2);
	/* Everything is O_CLOEXEC already; this also covers fds a library opened without it. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&attr);
	/*
	 * Own process group: stop signals reach the VMM and its helpers, and a
	 * Ctrl-C at the manager's terminal does not. Our blocked signals and
	 * ignored SIGPIPE must not leak into the VMM.
	 */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&attr, &none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGCHLD);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	{
		char *argv[11] = { "kiln", "run", "--api-sock", sock, "--config-file", cfg };
		unsigned n = 6;

		/* kiln serve's limits for every VM (docs/manager.md); argv strings are not written to. */
		if (m->opt.mmds_size_limit) {
			argv[n++] = "--mmds-size-limit";
			argv[n++] = (char *)m->opt.mmds_size_limit;
		}
		if (m->opt.api_max_body) {
			argv[n++] = "--http-api-max-payload-size";
			argv[n++] = (char *)m->opt.api_max_body;
		}
		argv[n] = NULL;

		/* glibc's posix_spawn reports a failed exec here, not as an exit of the child. */
		rc = -posix_spawn(&pid, m->vmm, &fa, &attr, argv, environ);
	}
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (rc < 0)
		goto out;
	/* Not reaped yet, so /proc/PID is this child even if it already exited. */
	if (mgr_proc_stat(pid, &state, &start) < 0)
		log_warn("serve: %s: cannot read /proc/%d/stat: a restarted manager will not re-adopt it",
			 vm->rec.id, (int)pid);
	vm->rec.pid = pid;
	vm->rec.pid_start = start;
	memcpy(vm->rec.boot_id, m->boot_id, sizeof(vm->rec.boot_id));
	vm->rec.started_at_ms = wall_ms();
	vm->rec.state = MGR_VM_RUNNING;
	vm->adopted = false;
	vm->deadline = 0;
	vm->started_mono = mgr_now_ms();
	vm_save(vm);
	log_info("serve: %s: started, pid %d", vm->rec.id, (int)pid);
	rc = 0;
out:
	if (fd_null >= 0)
		close(fd_null);
	if (fd_con >= 0)
		close(fd_con);
	if (fd_log >= 0)
		close(fd_log);
	free(sock);
	free(cfg);
	free(con);
	free(klog);
	return rc;
}

/*
 * The VM's process is gone (reaped, its pidfd fired, found dead at start, or
 * never started): record how, apply the restart policy, answer whoever waits.
 */
void mgr_vm_ended(struct manager *m, struct mgr_vm *vm, struct mgr_exit ex)
{
	const struct mgr_params *p = &m->opt.params;
	struct mgr_record *r = &vm->rec;
	uint64_t now = mgr_now_ms();
	int64_t wall = wall_ms();
	uint64_t ran;
	char why[128];
	enum mgr_decision d;

	vm_close_pidfd(m, vm);
	if (vm->started_mono)
		ran = now - vm->started_mono;
	else   /* adopted: only the wall clock spans the manager's restart */
		ran = wall > r->started_at_ms && r->started_at_ms ? (uint64_t)(wall - r->started_at_ms) : 0;
	r->exit = ex;
	r->exited_at_ms = wall;
	r->pid = 0;
	r->pid_start = 0;
	r->streak = mgr_streak_after_run(r->streak, ran, p);
	vm->adopted = false;
	vm->started_mono = 0;
	d = mgr_restart_decide(r->restart, &ex, r->stop_requested || vm->deleting, r->streak, p);
	r->state = d == MGR_RESTART ? MGR_VM_RESTARTING : MGR_VM_EXITED;
	r->gave_up = d == MGR_GIVE_UP;
	vm->deadline = d == MGR_RESTART ? now + mgr_backoff_ms(r->streak, p) : 0;
	mgr_exit_describe(&ex, why, sizeof(why));
	if (d == MGR_RESTART)
		log_info("serve: %s: %s; restart in %llu ms", r->id, why,
			 (unsigned long long)(vm->deadline - now));
	else if (d == MGR_GIVE_UP)
		log_warn("serve: %s: %s; %u restarts in a row, giving up", r->id, why, r->streak);
	else
		log_info("serve: %s: %s", r->id, why);

	if (vm->deleting) {
		int rc = vm_remove_files(m, vm);

		if (rc == 0) {
			mgr_http_vm_done(m, vm);
			mgr_vm_free(m, vm);
			return;
		}
		snprintf(vm->delete_err, sizeof(vm->delete_err), "cannot remove %s: %s",
			 vm->dir, strerror(-rc));
		vm->deleting = false;
	}
	vm_save(vm);
	mgr_http_vm_done(m, vm);
	vm->delete_err[0] = '\0';
}

/* A restart's backoff is over. */
void mgr_vm_restart_due(struct manager *m, struct mgr_vm *vm)
{
	int rc;

	vm->rec.restarts++;
	vm->rec.streak++;
	rc = vm_spawn(m, vm);
	if (rc < 0) {
		log_err("serve: %s: cannot restart %s: %s", vm->rec.id, m->vmm, strerror(-rc));
		mgr_vm_ended(m, vm, (struct mgr_exit){ MGR_EXIT_SPAWN_FAILED, -rc });
	}
}

/* --- state dir loading and re-adoption --- */

/*
 * A VM that was running when the last manager left: adopt it if its process
 * still lives. The pidfd is opened before the start time is checked, so if
 * the check passes the pidfd is that process and not a later one that got
 * the same pid.
 */
static void vm_adopt(struct manager *m, struct mgr_vm *vm)
{
	struct mgr_record *r = &vm->rec;
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t start;
	char state;
	int fd = -1;

	if (r->state == MGR_VM_RESTARTING) {
		vm->deadline = mgr_now_ms() + mgr_backoff_ms(r->streak, &m->opt.params);
		return;
	}
	if (r->state == MGR_VM_EXITED)
		return;
	if (strcmp(r->boot_id, m->boot_id))
		goto dead;     /* the host rebooted since: that pid is someone else's */
	fd = pidfd_open(r->pid, 0);
	if (fd < 0)
		goto dead;
	if (mgr_proc_stat(r->pid, &state, &start) < 0 || start != r->pid_start ||
	    state == 'Z' || state == 'X')
		goto dead;
	ev.data.u64 = MGR_TAG_PIDFD | vm->serial;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		log_err("serve: %s: epoll_ctl: %s", r->id, strerror(errno));
		goto dead;
	}
	vm->pidfd = fd;
	vm->adopted = true;
	vm->started_mono = 0;
	log_info("serve: %s: re-adopted pid %d", r->id, (int)r->pid);
	if (r->state == MGR_VM_STOPPING) {   /* the last manager's stop, carried on */
		mgr_vm_signal(vm, SIGTERM);
		vm->deadline = mgr_now_ms() + m->opt.params.grace_ms;
	}
	return;
dead:
	if (fd >= 0)
		close(fd);
	log_info("serve: %s: pid %d ended while no manager watched", r->id, (int)r->pid);
	mgr_vm_ended(m, vm, (struct mgr_exit){ MGR_EXIT_UNKNOWN, 0 });
}

int mgr_load_vms(struct manager *m)
{
	DIR *d = opendir(m->vms_dir);
	struct dirent *de;
	unsigned seen = 0;

	if (!d) {
		log_err("serve: %s: %s", m->vms_dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) && seen++ < MGR_SCAN_MAX) {
		const char *name = de->d_name;
		struct mgr_record rec;
		struct mgr_err err;
		struct mgr_vm *vm;
		struct stat st;

		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		/* Leftovers of a create or delete the last manager did not finish. */
		if (!strncmp(name, ".new-", 5) || !strncmp(name, ".del-", 5)) {
			char *p = mgr_path_join(m->vms_dir, name);

			if (p && mgr_rmtree(p) < 0)
				log_warn("serve: cannot remove %s", p);
			free(p);
			continue;
		}
		if (mgr_check_id(name, strlen(name), NULL) < 0 ||
		    fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) {
			log_warn("serve: %s/%s: not a VM directory, ignored", m->vms_dir, name);
			continue;
		}
		if (m->nvms >= MGR_MAX_VMS_LIMIT) {
			log_warn("serve: more than %d VMs in %s: %s ignored", MGR_MAX_VMS_LIMIT,
				 m->vms_dir, name);
			continue;
		}
		vm = vm_new(m, name);
		if (!vm) {
			closedir(d);
			log_err("serve: out of memory");
			return -1;
		}
		/* A VM whose state cannot be read is listed, so it can be seen and deleted; never started or signalled. */
		if (mgr_state_load(vm->dir, &rec, &err) < 0)
			snprintf(vm->note, sizeof(vm->note), "%s", err.msg);
		else if (strcmp(rec.id, name))
			snprintf(vm->note, sizeof(vm->note), "state.json: its id differs from the directory's");
		if (vm->note[0]) {
			log_warn("serve: %s: %s", name, vm->note);
			continue;
		}
		vm->rec = rec;
		vm_adopt(m, vm);
	}
	closedir(d);
	return 0;
}

/* --- the API's operations --- */

json_t *mgr_vm_json(struct manager *m, const struct mgr_vm *vm)
{
	uint64_t now = mgr_now_ms();
	uint64_t left = vm->rec.state == MGR_VM_RESTARTING && vm->deadline > now ? vm->deadline - now : 0;
	json_t *j = mgr_record_view(&vm->rec, vm->dir, vm->adopted, left);

	if (j && vm->note[0])
		json_object_set_new(j, "error", json_string(vm->note));
	return j;
}

int mgr_vm_create(struct manager *m, const struct mgr_create *c, struct mgr_vm **out,
		  struct mgr_err *err)
{
	struct mgr_record rec;
	struct mgr_vm *vm;
	char *dir = NULL, *tmp = NULL, *text = NULL, *cfgpath = NULL;
	size_t socklen;
	int rc = -ENOMEM;

	if (mgr_find(m, c->id)) {
		mgr_err_set(err, 409, "VM '%s' already exists", c->id);
		return -1;
	}
	if (m->nvms >= m->opt.params.max_vms) {
		mgr_err_set(err, 409, "this manager holds its maximum of %u VMs (--max-vms)",
			    m->opt.params.max_vms);
		return -1;
	}
	/* sockaddr_un.sun_path is 108 bytes, NUL included: DIR/vms/ID/api.sock must fit. */
	socklen = strlen(m->vms_dir) + 1 + strlen(c->id) + strlen("/api.sock");
	if (socklen > 107) {
		mgr_err_set(err, 400, "the VM's API socket path would be %zu bytes, over the 107 a Unix "
			    "socket allows: use a shorter id or --state-dir", socklen);
		return -1;
	}
	if (asprintf(&dir, "%s/%s", m->vms_dir, c->id) < 0)
		dir = NULL;
	if (asprintf(&tmp, "%s/.new-%s", m->vms_dir, c->id) < 0)
		tmp = NULL;
	if (!dir || !tmp)
		goto fail;
	mgr_rmtree(tmp);
	if (mkdir(tmp, 0700) < 0) {
		rc = -errno;
		goto fail;
	}
	text = json_dumps(c->config, JSON_INDENT(2));
	cfgpath = mgr_path_join(tmp, "config.json");
	rc = text && cfgpath ? mgr_write_atomic(cfgpath, text, strlen(text)) : -ENOMEM;
	if (rc == 0) {
		memset(&rec, 0, sizeof(rec));
		snprintf(rec.id, sizeof(rec.id), "%s", c->id);
		rec.restart = c->restart;
		rec.state = MGR_VM_EXITED;
		memcpy(rec.boot_id, m->boot_id, sizeof(rec.boot_id));
		rc = mgr_state_save(tmp, &rec);
	}
	/* The directory appears complete or not at all: a crash leaves only .new-ID, removed at start. */
	if (rc == 0 && rename(tmp, dir) < 0)
		rc = -errno;
	if (rc < 0)
		goto fail;
	vm = vm_new(m, c->id);
	if (!vm) {
		mgr_rmtree(dir);
		rc = -ENOMEM;
		goto fail;
	}
	vm->rec.restart = c->restart;
	rc = vm_spawn(m, vm);
	if (rc < 0) {
		mgr_err_set(err, 500, "cannot start %s: %s", m->vmm, strerror(-rc));
		vm_remove_files(m, vm);
		mgr_vm_free(m, vm);
		rc = -1;
		goto out;
	}
	*out = vm;
	rc = 0;
	goto out;
fail:
	if (tmp)
		mgr_rmtree(tmp);
	if (rc == -EEXIST || rc == -ENOTEMPTY)
		mgr_err_set(err, 409, "%s exists already", dir);
	else
		mgr_err_set(err, 500, "cannot create the VM's directory %s: %s", dir ? dir : c->id,
			    strerror(-rc));
	rc = -1;
out:
	free(dir);
	free(tmp);
	free(text);
	free(cfgpath);
	return rc;
}

int mgr_vm_start(struct manager *m, struct mgr_vm *vm, struct mgr_err *err)
{
	int rc;

	if (vm->deleting || vm->rec.state == MGR_VM_RUNNING || vm->rec.state == MGR_VM_STOPPING) {
		mgr_err_set(err, 409, "VM '%s' is %s", vm->rec.id,
			    vm->deleting ? "being deleted" : mgr_state_str(vm->rec.state));
		return -1;
	}
	if (vm->note[0]) {
		mgr_err_set(err, 409, "VM '%s' cannot start: %s", vm->rec.id, vm->note);
		return -1;
	}
	/* A start by the user is a fresh start: the policy's count and verdict begin anew. */
	vm->rec.stop_requested = false;
	vm->rec.gave_up = false;
	vm->rec.streak = 0;
	rc = vm_spawn(m, vm);
	if (rc < 0) {
		vm->rec.state = MGR_VM_EXITED;
		vm->rec.exit = (struct mgr_exit){ MGR_EXIT_SPAWN_FAILED, -rc };
		vm->deadline = 0;
		vm_save(vm);
		mgr_err_set(err, 500, "cannot start %s: %s", m->vmm, strerror(-rc));
		return -1;
	}
	return 0;
}

int mgr_vm_stop(struct manager *m, struct mgr_vm *vm)
{
	vm->rec.stop_requested = true;
	switch (vm->rec.state) {
	case MGR_VM_RUNNING:
		log_info("serve: %s: stopping pid %d (SIGTERM)", vm->rec.id, (int)vm->rec.pid);
		mgr_vm_signal(vm, SIGTERM);
		vm->rec.state = MGR_VM_STOPPING;
		vm->deadline = mgr_now_ms() + m->opt.params.grace_ms;
		if (!vm->deadline)
			vm->deadline = 1;
		vm_save(vm);
		return 1;
	case MGR_VM_STOPPING:
		return 1;
	case MGR_VM_RESTARTING:   /* the planned restart is off */
		vm->rec.state = MGR_VM_EXITED;
		vm->deadline = 0;
		/* fall through */
	default:
		if (!vm->note[0])
			vm_save(vm);
		return 0;
	}
}

int mgr_vm_delete(struct manager *m, struct mgr_vm *vm, struct mgr_err *err)
{
	int rc;

	vm->deleting = true;
	if (vm->rec.state == MGR_VM_RUNNING || vm->rec.state == MGR_VM_STOPPING) {
		mgr_vm_stop(m, vm);
		return 1;
	}
	rc = vm_remove_files(m, vm);
	if (rc < 0) {
		vm->deleting = false;
		mgr_err_set(err, 500, "cannot remove %s: %s", vm->dir, strerror(-rc));
		return -1;
	}
	mgr_vm_free(m, vm);
	return 0;
}
