/*
 * exec: the local pool's signals (for exec_local.c, through exec_int.h).
 * SIGCHLD, SIGINT, SIGTERM and SIGHUP are blocked for the whole run and only
 * let through inside pselect(), whose handlers merely set flags; so every real
 * action (reaping, killing, callbacks) happens in the pool's ordinary code,
 * and no signal can slip in between "check flags" and "sleep".
 */
#include "cpipe/exec.h"
#include "exec_int.h"

#include <signal.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

static volatile sig_atomic_t interrupt_count;

/* SIGCHLD needs a handler only to interrupt pselect; reaping scans the running jobs. */
static void on_signal(int signo)
{
	if (signo != SIGCHLD)
		interrupt_count++;
}

static const int stop_signals[EXEC_STOP_SIGNAL_COUNT] = {SIGINT, SIGTERM, SIGHUP};

void exec_signals_install(struct exec_signals *s)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	for (size_t i = 0; i < EXEC_STOP_SIGNAL_COUNT; i++)
		sigaddset(&block, stop_signals[i]);
	sigprocmask(SIG_BLOCK, &block, &s->old_mask);
	s->wait_mask = s->old_mask;
	sigdelset(&s->wait_mask, SIGCHLD);

	interrupt_count = 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* Always ours: an inherited SIG_IGN would make the kernel reap children behind our back. */
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, &s->old_child);
	sa.sa_flags = 0;
	for (size_t i = 0; i < EXEC_STOP_SIGNAL_COUNT; i++) {
		sigaction(stop_signals[i], NULL, &s->old_stop[i]);
		/* Like make and sh: a signal ignored when we started (nohup, '&') stays ignored. */
		s->installed_stop[i] = s->old_stop[i].sa_handler != SIG_IGN;
		if (s->installed_stop[i]) {
			sigaction(stop_signals[i], &sa, NULL);
			sigdelset(&s->wait_mask, stop_signals[i]);
		}
	}
}

void exec_signals_job_defaults(const struct exec_signals *s, sigset_t *defaults)
{
	sigemptyset(defaults);
	sigaddset(defaults, SIGCHLD);
	/* A CLI that ignores SIGPIPE or SIGXFSZ must not make `cmd | head` or a big write misbehave. */
	sigaddset(defaults, SIGPIPE);
	sigaddset(defaults, SIGXFSZ);
	for (size_t i = 0; i < EXEC_STOP_SIGNAL_COUNT; i++)
		if (s->installed_stop[i])
			sigaddset(defaults, stop_signals[i]);
}

void exec_signals_restore(struct exec_signals *s)
{
	sigaction(SIGCHLD, &s->old_child, NULL);
	for (size_t i = 0; i < EXEC_STOP_SIGNAL_COUNT; i++)
		if (s->installed_stop[i])
			sigaction(stop_signals[i], &s->old_stop[i], NULL);
	sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
}

void exec_signals_wait(const struct exec_signals *signals, double wake)
{
	struct timespec ts, *timeout = NULL;
	if (wake > 0) {
		double delay = wake - monotonic_seconds();
		if (delay < 0)
			delay = 0;
		ts.tv_sec = (time_t)delay;
		ts.tv_nsec = (long)((delay - (double)ts.tv_sec) * 1e9);
		timeout = &ts;
	}
	/* Our signals are unblocked only inside pselect, so none is lost between check and sleep. */
	pselect(0, NULL, NULL, NULL, timeout, &signals->wait_mask);
}

sig_atomic_t exec_signals_interrupts(void)
{
	return interrupt_count;
}
