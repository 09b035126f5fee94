/* kiln serve's core: the epoll loop (signals, reaping, deadlines, HTTP, pidfds), setup and teardown. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "core/log.h"
#include "core/vm.h"
#include "manager/mgr_internal.h"

/* Reap every exited child: signalfd coalesces SIGCHLDs, so loop until none is left. */
static void reap_children(struct manager *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct mgr_vm *vm = NULL;

		for (size_t i = 0; i < m->nvms; i++) {
			struct mgr_vm *v = m->vms[i];

			if (v->rec.pid == pid && !v->adopted &&
			    (v->rec.state == MGR_VM_RUNNING || v->rec.state == MGR_VM_STOPPING)) {
				vm = v;
				break;
			}
		}
		if (vm)
			mgr_vm_ended(m, vm, mgr_exit_from_wait(status));
		else
			log_debug("serve: reaped pid %d, not a VM", (int)pid);
	}
}

static void handle_signals(struct manager *m)
{
	struct signalfd_siginfo si;
	bool chld = false;

	while (read(m->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			chld = true;
		} else {
			log_info("serve: %s: shutting down; the VMs keep running",
				 sigabbrev_np((int)si.ssi_signo) ? sigabbrev_np((int)si.ssi_signo) : "signal");
			m->quit = true;
		}
	}
	if (chld)
		reap_children(m);
}

/* Restart and SIGKILL deadlines that have come. */
static void run_deadlines(struct manager *m)
{
	uint64_t now = mgr_now_ms();

	/* Neither action removes a VM (a deleting VM is never restarting), so the index stays valid. */
	for (size_t i = 0; i < m->nvms; i++) {
		struct mgr_vm *vm = m->vms[i];

		if (!vm->deadline || vm->deadline > now)
			continue;
		vm->deadline = 0;
		if (vm->rec.state == MGR_VM_RESTARTING) {
			mgr_vm_restart_due(m, vm);
		} else if (vm->rec.state == MGR_VM_STOPPING) {
			log_info("serve: %s: still running %llu ms after SIGTERM: SIGKILL", vm->rec.id,
				 (unsigned long long)m->opt.params.grace_ms);
			mgr_vm_signal(vm, SIGKILL);
		}
	}
}

/* ms to the next deadline, the HTTP server's included; -1: none. */
static int next_timeout(struct manager *m)
{
	uint64_t now = mgr_now_ms();
	int64_t t = mgr_http_timeout(m);

	for (size_t i = 0; i < m->nvms; i++) {
		uint64_t d = m->vms[i]->deadline;
		int64_t left;

		if (!d)
			continue;
		left = d > now ? (int64_t)(d - now) : 0;
		if (t < 0 || left < t)
			t = left;
	}
	return t > INT_MAX ? INT_MAX : (int)t;
}

static int setup_dirs(struct manager *m)
{
	const char *dir = m->opt.state_dir;
	char *lock;
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		log_err("serve: --state-dir %s: %s", dir, strerror(errno));
		return -1;
	}
	m->state_dir = realpath(dir, NULL);
	if (!m->state_dir || stat(m->state_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_err("serve: --state-dir %s: %s", dir, m->state_dir ? "not a directory" : strerror(errno));
		return -1;
	}
	m->vms_dir = mgr_path_join(m->state_dir, "vms");
	lock = mgr_path_join(m->state_dir, "manager.lock");
	if (!m->vms_dir || !lock || (mkdir(m->vms_dir, 0700) < 0 && errno != EEXIST)) {
		log_err("serve: %s/vms: %s", m->state_dir, strerror(errno));
		free(lock);
		return -1;
	}
	/* One manager per state dir: two would both reap, restart and adopt the same VMs. */
	m->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (m->lockfd < 0 || flock(m->lockfd, LOCK_EX | LOCK_NB) < 0) {
		log_err("serve: %s: %s", lock, errno == EWOULDBLOCK ?
			"another kiln serve manages this state dir" : strerror(errno));
		free(lock);
		return -1;
	}
	free(lock);
	return 0;
}

static int setup(struct manager *m)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t set;
	int rc;

	if (setup_dirs(m) < 0)
		return -1;
	if ((rc = mgr_read_boot_id(m->boot_id)) < 0) {
		log_err("serve: /proc/sys/kernel/random/boot_id: %s", strerror(-rc));
		return -1;
	}
	if (m->opt.vmm) {
		m->vmm = realpath(m->opt.vmm, NULL);
		if (!m->vmm || access(m->vmm, X_OK) < 0) {
			log_err("serve: --vmm %s: %s", m->opt.vmm, strerror(errno));
			return -1;
		}
	} else {
		/* The running binary, even if the file was replaced or deleted since: VMs run our version. */
		m->vmm = strdup("/proc/self/exe");
		if (!m->vmm)
			return -1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, &m->oldmask) < 0)
		return -1;
	/* A client that hangs up mid-response costs that response, not the manager. */
	signal(SIGPIPE, SIG_IGN);
	m->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->sigfd < 0 || m->epfd < 0) {
		log_err("serve: signalfd/epoll: %s", strerror(errno));
		return -1;
	}
	ev.data.u64 = MGR_TAG_SIG;
	if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, m->sigfd, &ev) < 0)
		return -1;
	if (mgr_load_vms(m) < 0)
		return -1;
	return mgr_http_start(m);
}

static int run(struct manager *m)
{
	struct epoll_event evs[32];

	log_info("serve: managing %zu VM(s) in %s, API on %s", m->nvms, m->state_dir, m->opt.api_sock);
	while (!m->quit) {
		int n = epoll_wait(m->epfd, evs, 32, next_timeout(m));

		if (n < 0 && errno != EINTR) {
			log_err("serve: epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < n; i++) {
			uint64_t key = evs[i].data.u64;

			if (key == MGR_TAG_SIG) {
				handle_signals(m);
			} else if ((key & MGR_TAG_MASK) == MGR_TAG_PIDFD) {
				/* Looked up by serial: an earlier event of this batch may have freed it. */
				struct mgr_vm *vm = mgr_find_serial(m, key & ~MGR_TAG_MASK);

				if (vm && vm->pidfd >= 0)
					mgr_vm_ended(m, vm, (struct mgr_exit){ MGR_EXIT_UNKNOWN, 0 });
			} else {
				mgr_http_event(m, key, evs[i].events);
			}
		}
		run_deadlines(m);
		mgr_http_run(m);
	}
	return 0;
}

static void teardown(struct manager *m)
{
	mgr_http_stop(m);
	/* The VMs keep running: a new manager re-adopts them from their state files. */
	while (m->nvms)
		mgr_vm_free(m, m->vms[m->nvms - 1]);
	free(m->vms);
	if (m->epfd >= 0)
		close(m->epfd);
	if (m->sigfd >= 0)
		close(m->sigfd);
	if (m->lockfd >= 0)
		close(m->lockfd);
	sigprocmask(SIG_SETMASK, &m->oldmask, NULL);
	free(m->state_dir);
	free(m->vms_dir);
	free(m->vmm);
}

int manager_main(int argc, char **argv)
{
	struct manager *m;
	char msg[256];
	int rc;

	m = calloc(1, sizeof(*m));
	if (!m)
		return KILN_EXIT_ERROR;
	m->epfd = m->sigfd = m->lockfd = -1;
	sigprocmask(SIG_SETMASK, NULL, &m->oldmask);
	if (mgr_parse_args(argc, argv, &m->opt, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "kiln: %s\n", msg);
		free(m);
		return KILN_EXIT_USAGE;
	}
	if (m->opt.help) {
		fputs(mgr_usage, stdout);
		free(m);
		return 0;
	}
	/* A daemon's lifecycle lines are its record: info by default, -v for debug. */
	log_set_level(m->opt.verbose ? LOG_DEBUG : LOG_INFO);
	rc = setup(m) == 0 && run(m) == 0 ? 0 : KILN_EXIT_ERROR;
	teardown(m);
	free(m);
	return rc;
}
