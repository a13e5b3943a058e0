/*
 * prepare_client: run `chos prepare` and read its reply (prepare_client.h,
 * docs/PREPARE-PROTOCOL.md). One set of rules for both modules: the reply
 * is checked whole, fails closed on anything unknown, and what went wrong
 * is said in one line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "prepare_client.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same on every architecture (Linux 5.3) */
#endif

#define DIAG_MAX 4096 /* of chos's stderr, kept for messages */

static int fail(struct prepare_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct prepare_reply *r, const char *fmt, ...)
{
	va_list ap;
	if (r->error[0])
		return -1; /* the first one says it */
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof r->error, fmt, ap);
	va_end(ap);
	r->error[strcspn(r->error, "\n")] = '\0';
	return -1;
}

/* The child: the protocol's descriptors, an empty environment, default
 * signals, its own process group (a timeout kills all of it). */
static void exec_chos(const struct prepare_options *o, char *const argv[], int sock, int errw)
{
	static char *const envp[] = { NULL };
	static const char setup_failed[] = "cannot set up the process to run chos prepare (not root?)\n";
	char digits[12], *d = digits + sizeof digits;
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int null = open("/dev/null", O_RDWR), err;

	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &dfl, NULL);
	/* Above 3 first, so that no dup2 below overwrites a descriptor still needed. */
	sock = fcntl(sock, F_DUPFD, 10);
	errw = fcntl(errw, F_DUPFD, 10);
	if (null < 0 || sock < 0 || errw < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(errw, 2) < 0 ||
	    dup2(sock, 3) < 0 || (o->as_root && (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))) {
		ssize_t ignored = write(errw >= 0 ? errw : 2, setup_failed, sizeof setup_failed - 1);
		(void)ignored;
		_exit(126);
	}
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
#endif
		for (long fd = 4, max = sysconf(_SC_OPEN_MAX); fd < max; fd++)
			close((int)fd);
	execve(o->chos, argv, envp);
	/* prepare_run checked that it can run: this is rare. */
	err = errno;
	*--d = '\n';
	do
		*--d = (char)('0' + err % 10);
	while ((err /= 10) > 0);
	struct iovec msg[] = { { "cannot run ", 11 }, { (char *)o->chos, strlen(o->chos) },
			       { ": execve failed with errno ", 27 }, { d, (size_t)(digits + sizeof digits - d) } };
	ssize_t ignored = writev(2, msg, 4); /* nothing to do if it fails: the status says it */
	(void)ignored;
	_exit(127);
}

/* recv_some appends what chos sent to the reply, keeping one descriptor;
 * 1 to go on, 0 at the end, -1 on an error. */
static int recv_some(struct prepare_reply *r, int sock, size_t *len, int *fd, int *extra_fds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} c;
	struct iovec iov = { r->text + *len, PREPARE_REPLY_MAX - *len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.b, .msg_controllen = sizeof c.b };
	char over;
	ssize_t n;

	if (iov.iov_len == 0) /* full: one byte more is too long */
		iov.iov_base = &over, iov.iov_len = 1;
	n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EINTR ? 1 : -1;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		int *fds = (int *)CMSG_DATA(h);
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			if (*fd < 0)
				*fd = fds[i];
			else
				close(fds[i]), (*extra_fds)++;
		}
	}
	if (m.msg_flags & MSG_CTRUNC)
		(*extra_fds)++;
	if (n > 0 && iov.iov_base != r->text + *len)
		return fail(r, "chos prepare: reply longer than %d bytes", PREPARE_REPLY_MAX), -1;
	*len += (size_t)n;
	return n > 0;
}

/* parse checks the reply's text and keeps its fields; what is wrong with
 * it, or NULL. A refusal (error=) is kept in *refusal. */
static const char *parse(struct prepare_reply *r, size_t len, int have_fd, const char **refusal)
{
	int enter = -1, end = 0;

	if (strlen(r->text) != len)
		return "a NUL byte in the reply";
	for (char *line = r->text, *nl; *line; line = nl + 1) {
		char *val;
		if (!(nl = strchr(line, '\n')))
			return "the reply does not end with \"end\"";
		*nl = '\0';
		if (end)
			return "text after \"end\"";
		if (!strcmp(line, "end")) {
			end = 1;
			continue;
		}
		if (!(val = strchr(line, '=')))
			return "a reply line without '='";
		*val++ = '\0';
		if (!strcmp(line, "tree")) {
			r->tree = val;
		} else if (!strcmp(line, "warning")) {
			if (r->nwarnings == PREPARE_MAX_WARNINGS)
				return "too many warning= lines";
			r->warnings[r->nwarnings++] = val;
		} else if (!strcmp(line, "enter") || !strcmp(line, "nnp")) {
			if (strcmp(val, "0") && strcmp(val, "1"))
				return "enter= and nnp= take 0 or 1";
			*(line[0] == 'e' ? &enter : &r->nnp) = val[0] == '1';
		} else if (!strcmp(line, "setenv")) {
			char *eq = strchr(val, '=');
			if (!eq || eq == val || r->nsetenv == PREPARE_MAX_SETENV)
				return "a bad setenv= line (or too many)";
			r->setenv[r->nsetenv++] = val;
		} else if (!strcmp(line, "argv0")) {
			if (val[0] != '/')
				return "argv0= is not an absolute path";
			r->argv0 = val;
		} else if (!strcmp(line, "error")) {
			*refusal = val;
		} else {
			return "an unknown key in the reply"; /* fail closed: it may matter */
		}
	}
	if (!end)
		return "the reply does not end with \"end\"";
	if (*refusal)
		return NULL;
	if (enter < 0 || enter != have_fd)
		return "enter= and the descriptor sent do not agree";
	if (!r->tree)
		return "the reply names no tree";
	return NULL;
}

/* last_line is the last non-empty line of chos's stderr, without "chos: ". */
static const char *last_line(char *diag)
{
	char *p = diag + strlen(diag);
	while (p > diag && (p[-1] == '\n' || p[-1] == ' '))
		*--p = '\0';
	while (p > diag && p[-1] != '\n')
		p--;
	if (!strncmp(p, "chos: ", 6))
		p += 6;
	return *p ? p : "no message";
}

static int ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

int prepare_run(const struct prepare_options *o, char *const argv[], struct prepare_reply *r)
{
	int sv[2] = { -1, -1 }, ep[2] = { -1, -1 }, fd = -1, extra_fds = 0, status = 0, timed_out = 0;
	char diag[DIAG_MAX + 1] = "";
	size_t len = 0, dlen = 0;
	struct sigaction dfl = { .sa_handler = SIG_DFL }, old;
	struct timespec deadline;
	const char *bad, *refusal = NULL;
	pid_t pid;

	memset(r, 0, sizeof *r);
	r->ns_fd = -1;
	if (access(o->chos, X_OK) < 0)
		return fail(r, "cannot run %s: %s", o->chos, strerror(errno));
	if (!(r->text = calloc(1, PREPARE_REPLY_MAX + 1)) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(ep, O_CLOEXEC) < 0) {
		fail(r, "cannot start %s: %s", o->chos, strerror(errno));
		goto out;
	}
	/* SIG_IGN would reap the child before waitpid, and the application's
	 * own handler could reap it: SIG_DFL while it runs (as pam_namespace). */
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, &old);
	if ((pid = fork()) < 0) {
		fail(r, "cannot fork for %s: %s", o->chos, strerror(errno));
		sigaction(SIGCHLD, &old, NULL);
		goto out;
	}
	if (pid == 0)
		exec_chos(o, argv, sv[1], ep[1]);
	close(sv[1]), sv[1] = -1;
	close(ep[1]), ep[1] = -1;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += o->timeout;
	/* Until the reply socket and stderr are closed and the child has exited. */
	struct pollfd p[3] = { { sv[0], POLLIN, 0 }, { ep[0], POLLIN, 0 }, { (int)syscall(SYS_pidfd_open, pid, 0), POLLIN, 0 } };
	while (p[0].fd >= 0 || p[1].fd >= 0 || p[2].fd >= 0) {
		int left = ms_left(&deadline);
		if (left == 0) {
			timed_out = 1;
			break;
		}
		if (poll(p, 3, left) < 0) {
			if (errno == EINTR)
				continue;
			timed_out = 1; /* cannot wait any more: stop it as if it had timed out */
			break;
		}
		if (p[0].revents && recv_some(r, p[0].fd, &len, &fd, &extra_fds) <= 0)
			p[0].fd = -1;
		if (p[1].revents) {
			char buf[512];
			ssize_t n = read(p[1].fd, buf, sizeof buf);
			if (n <= 0 && !(n < 0 && errno == EINTR))
				p[1].fd = -1;
			for (ssize_t i = 0; i < n && dlen < DIAG_MAX; i++)
				diag[dlen++] = buf[i];
		}
		if (p[2].revents)
			close(p[2].fd), p[2].fd = -1;
	}
	if (p[2].fd >= 0)
		close(p[2].fd);
	if (timed_out)
		kill(-pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGCHLD, &old, NULL);

	bad = parse(r, len, fd >= 0, &refusal);
	if (timed_out)
		fail(r, "%s prepare: no answer within %d s (timeout=)", o->chos, o->timeout);
	else if (WIFSIGNALED(status))
		fail(r, "%s prepare: killed by signal %d: %s", o->chos, WTERMSIG(status), last_line(diag));
	else if (refusal)
		fail(r, "%s", refusal);
	else if (WEXITSTATUS(status) != 0)
		fail(r, "%s prepare: exit status %d: %s", o->chos, WEXITSTATUS(status), last_line(diag));
	else if (bad)
		fail(r, "%s prepare: %s", o->chos, bad);
	else if (extra_fds)
		fail(r, "%s prepare: sent more than one descriptor", o->chos);
	else if (fd >= 0) {
		/* Enter only what is certainly a mount namespace. */
		struct statfs sf;
		if (fstatfs(fd, &sf) < 0 || sf.f_type != NSFS_MAGIC || ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNS)
			fail(r, "%s prepare: the descriptor sent is not a mount namespace", o->chos);
	}
	if (!r->error[0])
		r->ns_fd = fd, fd = -1;
out:
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	return r->error[0] ? -1 : 0;
}

void prepare_release(struct prepare_reply *r)
{
	if (r->ns_fd >= 0)
		close(r->ns_fd), r->ns_fd = -1;
	free(r->text);
	memset(r, 0, sizeof *r);
	r->ns_fd = -1;
}
