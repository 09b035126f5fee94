/* Unit tests for pausing a VM (core/pause.c) with fake vCPU threads: park, resume, stop while paused, timeouts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "core/vm.h"
#include "core/vcpu.h"

#define NCPU 3

/* A fake vCPU thread: "KVM_RUN" is a short sleep that a kick (immediate_exit) ends early. */
struct fakecpu {
	struct vm *vm;
	struct vcpu *v;
	_Atomic uint64_t progress;   /* guest work done: must not move while paused */
	_Atomic bool deaf;           /* ignores kicks and pause requests (a stuck vCPU) */
	_Atomic uint64_t kicks;
	pthread_t t;
};

struct ctx {
	struct vm vm;
	struct vcpu vcpus[NCPU];
	struct kvm_run runs[NCPU];
	struct fakecpu cpus[NCPU];
	bool started;
};

static struct ctx *ctx_of(struct vcpu *v)
{
	return (struct ctx *)((char *)(v - v->id) - offsetof(struct ctx, vcpus));
}

/* The kick vcpu.c does: immediate_exit, counted here instead of a signal. */
void vcpu_kick(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	atomic_fetch_add(&ctx_of(v)->cpus[v->id].kicks, 1);
}

static void *cpu_main(void *arg)
{
	struct fakecpu *c = arg;
	struct vm *vm = c->vm;

	/* vcpu.c's loop, with the KVM_RUN replaced. */
	while (atomic_load(&vm->stop_reason) == VM_RUNNING) {
		if (atomic_load(&c->deaf)) {
			atomic_fetch_add(&c->progress, 1);
			usleep(200);
			continue;
		}
		if (atomic_load(&vm->pause_req)) {
			vm_vcpu_park(vm);
			continue;
		}
		for (int i = 0; i < 10 && !__atomic_load_n(&c->v->run->immediate_exit, __ATOMIC_SEQ_CST); i++)
			usleep(100);
		if (__atomic_load_n(&c->v->run->immediate_exit, __ATOMIC_SEQ_CST)) {
			/* KVM_RUN returned -EINTR: clear, loop (and see pause_req). */
			__atomic_store_n(&c->v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			continue;
		}
		atomic_fetch_add(&c->progress, 1);
	}
	return NULL;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	pthread_mutex_init(&c->vm.lock, NULL);
	vm_pause_init(&c->vm);
	atomic_init(&c->vm.stop_reason, VM_RUNNING);
	c->vm.ncpus = NCPU;
	c->vm.vcpus = c->vcpus;
	for (unsigned i = 0; i < NCPU; i++) {
		c->vcpus[i].id = i;
		c->vcpus[i].vm = &c->vm;
		c->vcpus[i].run = &c->runs[i];
		c->cpus[i].vm = &c->vm;
		c->cpus[i].v = &c->vcpus[i];
	}
	*state = c;
	return 0;
}

static void start_cpus(struct ctx *c)
{
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(pthread_create(&c->cpus[i].t, NULL, cpu_main, &c->cpus[i]), 0);
	c->started = true;
}

static void stop_vm(struct ctx *c)
{
	atomic_store(&c->vm.stop_reason, VM_STOP_USER);
	vm_pause_wake(&c->vm);   /* what vm_request_stop() does */
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	stop_vm(c);
	for (unsigned i = 0; c->started && i < NCPU; i++)
		assert_int_equal(pthread_join(c->cpus[i].t, NULL), 0);
	pthread_cond_destroy(&c->vm.pause_cv);
	pthread_mutex_destroy(&c->vm.lock);
	free(c);
	return 0;
}

static uint64_t total(struct ctx *c)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < NCPU; i++)
		t += atomic_load(&c->cpus[i].progress);
	return t;
}

/* Wait until every fake vCPU made progress past `from` (bounded). */
static bool all_progress(struct ctx *c, const uint64_t from[NCPU])
{
	for (int round = 0; round < 2000; round++) {
		bool all = true;
		for (unsigned i = 0; i < NCPU; i++)
			all = all && atomic_load(&c->cpus[i].progress) > from[i];
		if (all)
			return true;
		usleep(1000);
	}
	return false;
}

static void test_pause_resume(void **state)
{
	struct ctx *c = *state;
	uint64_t zero[NCPU] = { 0 }, at[NCPU];

	start_cpus(c);
	assert_true(all_progress(c, zero));
	for (int round = 0; round < 20; round++) {
		uint64_t t;

		unsigned parked;

		assert_int_equal(vm_pause(&c->vm, 5000), 0);
		/* Read under the lock, assert outside it: a failed assert must not leave it held. */
		pthread_mutex_lock(&c->vm.lock);
		parked = c->vm.parked_vcpus;
		pthread_mutex_unlock(&c->vm.lock);
		assert_int_equal(parked, NCPU);
		t = total(c);
		usleep(5000);
		assert_int_equal(total(c), t);   /* nobody runs while paused */
		for (unsigned i = 0; i < NCPU; i++) {
			at[i] = atomic_load(&c->cpus[i].progress);
			assert_true(atomic_load(&c->cpus[i].kicks) > 0);
		}
		vm_resume(&c->vm);
		assert_true(all_progress(c, at));
	}
}

struct pauser {
	struct vm *vm;
	unsigned timeout_ms;
	int ret;
	pthread_t t;
};

static void *pauser_main(void *arg)
{
	struct pauser *p = arg;

	p->ret = vm_pause(p->vm, p->timeout_ms);
	return NULL;
}

/* PATCH /vm Paused can race the vCPU threads' start: they park before running. */
static void test_pause_before_threads(void **state)
{
	struct ctx *c = *state;
	struct pauser p = { .vm = &c->vm, .timeout_ms = 5000, .ret = 1 };

	assert_int_equal(pthread_create(&p.t, NULL, pauser_main, &p), 0);
	usleep(20000);
	start_cpus(c);
	assert_int_equal(pthread_join(p.t, NULL), 0);
	assert_int_equal(p.ret, 0);
	assert_int_equal(total(c), 0);
	vm_resume(&c->vm);
	{
		uint64_t zero[NCPU] = { 0 };
		assert_true(all_progress(c, zero));
	}
}

/* A stop while paused ends every parked thread (teardown joins them). */
static void test_stop_while_paused(void **state)
{
	struct ctx *c = *state;

	start_cpus(c);
	assert_int_equal(vm_pause(&c->vm, 5000), 0);
	stop_vm(c);
	for (unsigned i = 0; i < NCPU; i++)
		assert_int_equal(pthread_join(c->cpus[i].t, NULL), 0);
	c->started = false;
	assert_int_equal(c->vm.parked_vcpus, 0);
	/* A pause after the stop reports it. */
	assert_int_equal(vm_pause(&c->vm, 100), -ESRCH);
	assert_false(atomic_load(&c->vm.pause_req));
}

/* A vCPU that never parks: the pause gives up, and the VM runs on. */
static void test_pause_timeout(void **state)
{
	struct ctx *c = *state;
	struct timespec t0, t1;
	uint64_t at[NCPU];
	long ms;

	atomic_store(&c->cpus[1].deaf, true);
	start_cpus(c);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(vm_pause(&c->vm, 100), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 90 && ms < 2000);
	assert_false(atomic_load(&c->vm.pause_req));
	for (unsigned i = 0; i < NCPU; i++)
		at[i] = atomic_load(&c->cpus[i].progress);
	assert_true(all_progress(c, at));   /* the parked ones were let go */
	/* Kicked again and again while waiting, not once. */
	assert_true(atomic_load(&c->cpus[1].kicks) >= 3);
}

/* A stop during the wait ends the pause at once with -ESRCH. */
static void test_stop_during_pause(void **state)
{
	struct ctx *c = *state;
	struct pauser p = { .vm = &c->vm, .timeout_ms = 10000, .ret = 1 };
	struct timespec t0, t1;

	atomic_store(&c->cpus[0].deaf, true);
	start_cpus(c);
	assert_int_equal(pthread_create(&p.t, NULL, pauser_main, &p), 0);
	usleep(30000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	stop_vm(c);
	assert_int_equal(pthread_join(p.t, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(p.ret, -ESRCH);
	assert_true(t1.tv_sec - t0.tv_sec < 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_before_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_while_paused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_during_pause, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
