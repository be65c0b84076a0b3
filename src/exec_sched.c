/*
 * exec: the local pool's scheduling request for itself (for exec_local.c,
 * through exec_int.h). The pool sleeps between jobs and has little to do when
 * one ends (reap, judge, start the next); with every core busy with jobs, a
 * wake-up can wait in a run queue behind a job while a slot stays empty.
 * Linux 6.12 lets an ordinary task ask for a short time slice, which also lets
 * it preempt on wake-up: the pool asks for the shortest, for itself only
 * (reset-on-fork gives its children the default slice back, so jobs run as
 * they would anywhere else). Elsewhere, or on an older kernel, nothing changes.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* syscall */
#endif

#include "exec_int.h"

#include <string.h>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_sched_getattr)
/* The kernel's struct sched_attr (its first version, 48 bytes); glibc declares it only since 2.41. */
struct kernel_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime; /* for SCHED_OTHER since Linux 6.12: the task's slice in ns */
	uint64_t sched_deadline;
	uint64_t sched_period;
};

enum {
	KERNEL_SCHED_OTHER = 0,
	KERNEL_SCHED_FLAG_RESET_ON_FORK = 0x01,
	POOL_SLICE_NS = 100000, /* the shortest the kernel grants (0.1 ms) */
};

void exec_sched_quick_wakeups(struct exec_sched *s)
{
	memset(s, 0, sizeof(*s));
	struct kernel_sched_attr now;
	memset(&now, 0, sizeof(now));
	if (syscall(SYS_sched_getattr, 0, &now, sizeof(now), 0) != 0)
		return;
	/*
	 * Only a plain task at nice >= 0: reset-on-fork would also take a negative nice (or a
	 * real-time policy) away from the jobs, and another policy is the user's choice.
	 */
	if (now.sched_policy != KERNEL_SCHED_OTHER || now.sched_nice < 0 ||
	    (now.sched_flags & KERNEL_SCHED_FLAG_RESET_ON_FORK))
		return;
	struct kernel_sched_attr quick = now;
	quick.size = sizeof(quick);
	quick.sched_flags = KERNEL_SCHED_FLAG_RESET_ON_FORK;
	quick.sched_runtime = POOL_SLICE_NS;
	if (syscall(SYS_sched_setattr, 0, &quick, 0) != 0)
		return;
	s->changed = true;
	s->slice_ns = now.sched_runtime;
	s->flags = now.sched_flags;
}

void exec_sched_restore(struct exec_sched *s)
{
	if (!s->changed)
		return;
	struct kernel_sched_attr back;
	memset(&back, 0, sizeof(back));
	/* Read again: the nice value may have changed meanwhile (renice), and stays as it is. */
	if (syscall(SYS_sched_getattr, 0, &back, sizeof(back), 0) == 0 && back.sched_policy == KERNEL_SCHED_OTHER) {
		back.size = sizeof(back);
		back.sched_flags = s->flags;
		back.sched_runtime = s->slice_ns;
		syscall(SYS_sched_setattr, 0, &back, 0);
	}
	s->changed = false;
}
#else
void exec_sched_quick_wakeups(struct exec_sched *s)
{
	memset(s, 0, sizeof(*s));
}

void exec_sched_restore(struct exec_sched *s)
{
	s->changed = false;
}
#endif
