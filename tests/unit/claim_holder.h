/*
 * A forked process standing in for another cpipe run that holds a job's claim
 * in the state database until the test lets it go. Include after <cmocka.h>
 * (the helpers assert).
 */
#ifndef CPIPE_TEST_CLAIM_HOLDER_H
#define CPIPE_TEST_CLAIM_HOLDER_H

#include <errno.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpipe/state.h"

struct claim_holder {
	pid_t pid;
	int ready_fd;   /* read end: the child reports whether it got the claim */
	int release_fd; /* write end: closing it tells the child to exit */
};

/*
 * Fork a child that opens the state in `state_dir`, claims `job_id` (with
 * `log_path`, may be NULL) and holds it; return once the claim is taken.
 */
static inline void claim_holder_start(struct claim_holder *h, const char *state_dir, const char *job_id,
				      const char *log_path)
{
	int ready[2], release[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(release), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* No cmocka asserts here: the child reports through the pipe. */
		close(ready[0]);
		close(release[1]);
		struct state *other = NULL;
		struct cp_err child_err = CP_ERR_INIT;
		char status = 'n';
		if (state_open(state_dir, &other, &child_err) == 0 &&
		    state_claim_job(other, job_id, log_path, &child_err) == 0)
			status = 'y';
		state_close(other);
		if (write(ready[1], &status, 1) != 1)
			_exit(2);
		char byte;
		while (read(release[0], &byte, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(release[0]);
	char status = 0;
	assert_int_equal(read(ready[0], &status, 1), 1);
	assert_int_equal(status, 'y');
	h->pid = child;
	h->ready_fd = ready[0];
	h->release_fd = release[1];
}

/* Let the child exit without releasing its claim, reap it, and check it exited cleanly. */
static inline void claim_holder_stop(struct claim_holder *h)
{
	close(h->release_fd);
	int wstatus;
	assert_int_equal(waitpid(h->pid, &wstatus, 0), h->pid);
	close(h->ready_fd);
	assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
}

#endif
