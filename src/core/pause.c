/* Pausing a VM: kick every vCPU out of KVM_RUN, park it on a condition variable, let it run again. */
#include <errno.h>
#include <time.h>
#include "core/vm.h"
#include "core/vcpu.h"

/* How often vm_pause() re-kicks vCPUs that have not parked yet. */
#define PAUSE_POLL_MS 20

void vm_pause_init(struct vm *vm)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->pause_cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&vm->pause_req, false);
	vm->parked_vcpus = 0;
}

static bool stopping(struct vm *vm)
{
	return atomic_load(&vm->stop_reason) != VM_RUNNING;
}

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus && vm->vcpus; i++)
		if (vm->vcpus[i].run)
			vcpu_kick(&vm->vcpus[i]);
}

void vm_vcpu_park(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->parked_vcpus++;
	pthread_cond_broadcast(&vm->pause_cv);   /* a pauser counts us */
	while (atomic_load(&vm->pause_req) && !stopping(vm))
		pthread_cond_wait(&vm->pause_cv, &vm->lock);
	vm->parked_vcpus--;
	pthread_mutex_unlock(&vm->lock);
}

int vm_pause(struct vm *vm, unsigned timeout_ms)
{
	struct timespec now, deadline;
	uint64_t left = timeout_ms;
	int ret = 0;

	/*
	 * pause_req before the kick: a vCPU that leaves KVM_RUN because of it
	 * clears immediate_exit and then checks pause_req (vcpu.c), so it parks;
	 * one that had not entered KVM_RUN yet returns from it at once
	 * (immediate_exit) and parks on the next turn.
	 */
	atomic_store(&vm->pause_req, true);
	pthread_mutex_lock(&vm->lock);
	while (vm->parked_vcpus < vm->ncpus && !stopping(vm)) {
		unsigned step = left < PAUSE_POLL_MS ? (unsigned)left : PAUSE_POLL_MS;

		if (!left) {
			ret = -ETIMEDOUT;
			break;
		}
		pthread_mutex_unlock(&vm->lock);
		kick_all(vm);   /* again each round: cheap, and no kick can be lost */
		pthread_mutex_lock(&vm->lock);
		clock_gettime(CLOCK_MONOTONIC, &now);
		deadline = now;
		deadline.tv_nsec += (long)step * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		while (vm->parked_vcpus < vm->ncpus && !stopping(vm) &&
		       pthread_cond_timedwait(&vm->pause_cv, &vm->lock, &deadline) != ETIMEDOUT) {
			/* a vCPU parked: re-check */
		}
		left -= step;
	}
	if (!ret && stopping(vm))
		ret = -ESRCH;
	if (ret) {
		/* Not paused after all: let the parked ones go on (or see the stop). */
		atomic_store(&vm->pause_req, false);
		pthread_cond_broadcast(&vm->pause_cv);
	}
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

void vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	atomic_store(&vm->pause_req, false);
	pthread_cond_broadcast(&vm->pause_cv);
	pthread_mutex_unlock(&vm->lock);
}

void vm_pause_wake(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	pthread_cond_broadcast(&vm->pause_cv);
	pthread_mutex_unlock(&vm->lock);
}
