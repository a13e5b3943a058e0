/*
 * pam_chos: a PAM session module that places a login in the user's chos OS
 * tree. It holds no policy: it runs `chos prepare --service pam` as a root
 * helper (selection, access, the tree's cached view are decided in Go), and
 * enters the mount namespace the helper returns, in the process that calls
 * pam_open_session (sshd's monitor, su, login), whose children inherit it.
 * The protocol is in PREPARE-PROTOCOL.md; the admin's view in pam_chos(8).
 * The helper is forked and waited for as pam_namespace's inst_init does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#ifndef CHOS_PATH
#define CHOS_PATH "/usr/local/bin/chos"
#endif

#define REPLY_MAX (64 * 1024) /* the protocol's limit */
#define DIAG_MAX 4096         /* of the helper's stderr, kept for messages */

struct options {
	const char *chos;
	const char *exempt_group;
	int onerr_succeed;
	int timeout; /* seconds */
	int debug;
};

/* what the helper said and did */
struct helper {
	char reply[REPLY_MAX + 1];
	size_t reply_len;
	char diag[DIAG_MAX + 1];
	size_t diag_len;
	int fd;     /* the descriptor received, or -1 */
	int nfds;   /* how many were received */
	int status; /* as waitpid gives it */
	char err[160]; /* why running the helper failed */
};

/* the reply, parsed (pointers into helper.reply) */
struct reply {
	const char *tree, *setenvs[64], *warnings[8];
	int enter, nnp, nenv, nwarn;
};

static int parse_options(pam_handle_t *pamh, int argc, const char **argv, struct options *o)
{
	o->chos = CHOS_PATH;
	o->exempt_group = NULL;
	o->onerr_succeed = 0;
	o->timeout = 60;
	o->debug = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		char *end;
		if (strncmp(a, "chos=", 5) == 0 && a[5] == '/') {
			o->chos = a + 5;
		} else if (strcmp(a, "onerr=fail") == 0 || strcmp(a, "onerr=succeed") == 0) {
			o->onerr_succeed = a[6] == 's';
		} else if (strncmp(a, "exempt_group=", 13) == 0 && a[13] != '\0') {
			o->exempt_group = a + 13;
		} else if (strncmp(a, "timeout=", 8) == 0) {
			long t = strtol(a + 8, &end, 10);
			if (*end != '\0' || t < 1 || t > 3600) {
				pam_syslog(pamh, LOG_ERR, "bad option %s: want seconds, 1 to 3600", a);
				return -1;
			}
			o->timeout = (int)t;
		} else if (strcmp(a, "debug") == 0) {
			o->debug = 1;
		} else {
			pam_syslog(pamh, LOG_ERR, "unknown option %s (chos=/ABSOLUTE/PATH, onerr=fail|succeed, "
				   "exempt_group=GROUP, timeout=SECONDS, debug)", a);
			return -1;
		}
	}
	return 0;
}

/* Report a failure to the user and syslog; onerr decides the result. */
static int failure(pam_handle_t *pamh, int flags, const struct options *o, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	msg[strcspn(msg, "\n")] = '\0'; /* one line */
	pam_syslog(pamh, LOG_ERR, "%s%s", msg, o->onerr_succeed ? " (onerr=succeed: staying on the host)" : "");
	if (!(flags & PAM_SILENT))
		pam_error(pamh, "chos: %s%s", msg, o->onerr_succeed ? "; staying on the host" : "");
	return o->onerr_succeed ? PAM_SUCCESS : PAM_SESSION_ERR;
}

/* The supplementary gids of user as a comma-separated list (malloc'ed). */
static char *group_list(const char *user, gid_t gid)
{
	int n = 64;
	gid_t *gids = NULL;
	char *list = NULL;
	for (;;) {
		gid_t *g = realloc(gids, (size_t)n * sizeof *gids);
		if (g == NULL)
			goto out;
		gids = g;
		int want = n;
		if (getgrouplist(user, gid, gids, &want) >= 0) {
			n = want;
			break;
		}
		n = want > n ? want : 2 * n;
	}
	list = malloc((size_t)n * 12 + 1);
	if (list == NULL)
		goto out;
	list[0] = '\0';
	for (int i = 0, off = 0; i < n; i++)
		off += sprintf(list + off, "%s%u", i ? "," : "", (unsigned)gids[i]);
out:
	free(gids);
	return list;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Receive what the helper sends on sock: the reply text and descriptors. */
static int read_reply(int sock, struct helper *hp)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { hp->reply + hp->reply_len, REPLY_MAX + 1 - hp->reply_len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof control.buf };
	ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int *fds = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			if (hp->fd < 0)
				hp->fd = fds[i];
			else
				close(fds[i]);
			hp->nfds++;
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		hp->nfds += 100; /* more than the protocol allows: refused later */
	hp->reply_len += (size_t)n;
	return n == 0 || hp->reply_len > REPLY_MAX ? 0 : 1;
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Run `chos prepare` (argv) and collect its reply within the timeout; -1
 * with hp->err set if that failed. */
static int run_helper(const struct options *o, char **argv, struct helper *hp)
{
	static const char setup_failed[] = "pam_chos: cannot set up the chos prepare process (not root?)\n";
	char *envp[] = { NULL };
	int sv[2] = { -1, -1 }, errpipe[2] = { -1, -1 }, devnull = -1;
	struct sigaction dfl = { .sa_handler = SIG_DFL }, saved;

	hp->fd = -1;
	hp->status = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(errpipe, O_CLOEXEC) < 0 ||
	    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		snprintf(hp->err, sizeof hp->err, "cannot create the pipes to chos prepare: %s", strerror(errno));
		goto out;
	}
	/* SIG_IGN would reap the helper before waitpid, and the application's
	 * own handler could reap it: SIG_DFL while it runs. */
	sigemptyset(&dfl.sa_mask);
	if (sigaction(SIGCHLD, &dfl, &saved) < 0) {
		snprintf(hp->err, sizeof hp->err, "cannot reset SIGCHLD: %s", strerror(errno));
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(hp->err, sizeof hp->err, "cannot fork chos prepare: %s", strerror(errno));
		sigaction(SIGCHLD, &saved, NULL);
		goto out;
	}
	if (pid == 0) {
		/* stdin, stdout /dev/null; stderr the pipe; fd 3 the socket; no other fd. */
		int in = fcntl(devnull, F_DUPFD, 10), er = fcntl(errpipe[1], F_DUPFD, 10), so = fcntl(sv[1], F_DUPFD, 10);
		sigset_t none;
		sigemptyset(&none);
		for (int s = 1; s < NSIG; s++)
			sigaction(s, &dfl, NULL);
		if (in < 0 || er < 0 || so < 0 || dup2(in, 0) < 0 || dup2(in, 1) < 0 || dup2(er, 2) < 0 ||
		    dup2(so, 3) < 0 || close_range(4, ~0U, 0) < 0 || sigprocmask(SIG_SETMASK, &none, NULL) < 0 ||
		    setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			ssize_t ignored = write(2, setup_failed, sizeof setup_failed - 1);
			(void)ignored;
			_exit(126);
		}
		execve(o->chos, argv, envp);
		/* (the host application is single-threaded, as PAM requires) */
		dprintf(2, "cannot execute %s: %s\n", o->chos, strerror(errno));
		_exit(127);
	}
	close(sv[1]), sv[1] = -1;
	close(errpipe[1]), errpipe[1] = -1;

	double deadline = now() + o->timeout;
	struct pollfd pf[2] = { { sv[0], POLLIN, 0 }, { errpipe[0], POLLIN, 0 } };
	for (double left; (pf[0].fd >= 0 || pf[1].fd >= 0) && (left = deadline - now()) > 0;) {
		if (poll(pf, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		if (pf[0].revents && read_reply(sv[0], hp) <= 0)
			pf[0].fd = -1;
		if (pf[1].revents) {
			char buf[512];
			ssize_t n = read(errpipe[0], buf, sizeof buf);
			if (n > 0 && hp->diag_len < DIAG_MAX) {
				size_t k = (size_t)n < DIAG_MAX - hp->diag_len ? (size_t)n : DIAG_MAX - hp->diag_len;
				memcpy(hp->diag + hp->diag_len, buf, k);
				hp->diag_len += k;
			} else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
				pf[1].fd = -1;
			}
		}
	}
	hp->diag[hp->diag_len] = '\0';
	for (pid_t r; (r = waitpid(pid, &hp->status, WNOHANG)) == 0 || (r < 0 && errno == EINTR);) {
		if (now() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &hp->status, 0);
			snprintf(hp->err, sizeof hp->err, "chos prepare did not answer within %d s", o->timeout);
			break;
		}
		usleep(10000);
	}
	sigaction(SIGCHLD, &saved, NULL);
out:
	close_fds((int[]){ sv[0], sv[1], errpipe[0], errpipe[1], devnull }, 5);
	return hp->err[0] ? -1 : 0;
}

/* The last line of the helper's stderr, for messages (which add "chos: "). */
static const char *last_line(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '\n')
		s[--n] = '\0';
	char *line = strrchr(s, '\n');
	line = line ? line + 1 : s;
	return strncmp(line, "chos: ", 6) == 0 ? line + 6 : line;
}

/* Parse the reply (key=value lines, the last one "end") and check it
 * against what the helper did; the error to report, or NULL. */
static const char *parse_reply(struct helper *hp, struct reply *r)
{
	const char *error = NULL;
	int ended = 0;
	memset(r, 0, sizeof *r);
	r->enter = -1;
	hp->reply[hp->reply_len] = '\0';
	if (hp->reply_len > REPLY_MAX || memchr(hp->reply, '\0', hp->reply_len) != NULL)
		return "malformed reply from chos prepare";
	for (char *save, *line = strtok_r(hp->reply, "\n", &save); line && !error; line = strtok_r(NULL, "\n", &save)) {
		if (ended)
			error = "malformed reply from chos prepare: text after end";
		else if (strcmp(line, "end") == 0)
			ended = 1;
		else if (strncmp(line, "tree=", 5) == 0)
			r->tree = line + 5;
		else if (strcmp(line, "enter=0") == 0 || strcmp(line, "enter=1") == 0)
			r->enter = line[6] - '0';
		else if (strcmp(line, "nnp=0") == 0 || strcmp(line, "nnp=1") == 0)
			r->nnp = line[4] - '0';
		else if (strncmp(line, "setenv=", 7) == 0 && line[7] != '=' && strchr(line + 7, '=') && r->nenv < 64)
			r->setenvs[r->nenv++] = line + 7;
		else if (strncmp(line, "warning=", 8) == 0 && r->nwarn < 8)
			r->warnings[r->nwarn++] = line + 8;
		else if (strncmp(line, "error=", 6) == 0)
			error = line + 6;
		else
			error = "malformed reply from chos prepare: unknown line or too many of one kind";
	}
	if (error == NULL && !(WIFEXITED(hp->status) && WEXITSTATUS(hp->status) == 0)) {
		const char *diag = last_line(hp->diag);
		snprintf(hp->err, sizeof hp->err, "chos prepare failed (%s %d)", WIFEXITED(hp->status) ? "exit status" : "signal",
			 WIFEXITED(hp->status) ? WEXITSTATUS(hp->status) : WTERMSIG(hp->status));
		error = diag[0] ? diag : hp->err;
	}
	if (error == NULL && (!ended || r->tree == NULL || r->enter < 0))
		error = "incomplete reply from chos prepare";
	if (error == NULL && hp->nfds != r->enter)
		error = "chos prepare sent a wrong number of descriptors";
	return error;
}

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct options o;
	if (parse_options(pamh, argc, argv, &o) < 0)
		return PAM_SERVICE_ERR;

	const char *user = NULL, *service = NULL, *env_chos, *env_devices;
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL)
		return failure(pamh, flags, &o, "cannot get the user name");
	struct passwd *pw = pam_modutil_getpwnam(pamh, user);
	if (pw == NULL)
		return failure(pamh, flags, &o, "unknown user %s", user);
	pam_get_item(pamh, PAM_SERVICE, (const void **)&service);
	env_chos = pam_getenv(pamh, "CHOS");
	if (env_chos == NULL)
		env_chos = getenv("CHOS"); /* su passes it in its own environment */
	env_devices = pam_getenv(pamh, "CHOS_DEVICES");
	if (env_devices == NULL)
		env_devices = getenv("CHOS_DEVICES");

	char uid[16], gid[16], *groups = group_list(user, pw->pw_gid);
	if (groups == NULL)
		return failure(pamh, flags, &o, "cannot list the groups of %s", user);
	snprintf(uid, sizeof uid, "%u", (unsigned)pw->pw_uid);
	snprintf(gid, sizeof gid, "%u", (unsigned)pw->pw_gid);
	const char *args[24] = { "chos", "prepare", "--service", "pam", "--user", user, "--uid", uid, "--gid", gid,
				 "--groups", groups, "--pam-service", service ? service : "" };
	int n = 14;
	if (env_chos != NULL && env_chos[0] != '\0') {
		args[n++] = "--env-chos";
		args[n++] = env_chos;
	}
	if (env_devices != NULL && env_devices[0] != '\0') {
		args[n++] = "--devices";
		args[n++] = env_devices;
	}
	if (o.exempt_group != NULL) {
		args[n++] = "--exempt-group";
		args[n++] = o.exempt_group;
	}
	args[n] = NULL;

	struct helper *hp = calloc(1, sizeof *hp);
	if (hp == NULL) {
		free(groups);
		return failure(pamh, flags, &o, "out of memory");
	}
	int ret = PAM_SESSION_ERR, helper_failed = run_helper(&o, (char **)args, hp) < 0;
	free(groups);
	if (helper_failed) {
		ret = failure(pamh, flags, &o, "%s", hp->err);
		goto out;
	}
	if (o.debug)
		pam_syslog(pamh, LOG_DEBUG, "%s prepare for %s: status %d, %d fds, reply:\n%s", o.chos, user,
			   hp->status, hp->nfds, hp->reply);

	struct reply r;
	const char *error = parse_reply(hp, &r);
	for (int i = 0; i < r.nwarn && !(flags & PAM_SILENT); i++)
		pam_info(pamh, "chos: %s", r.warnings[i]);
	if (error != NULL) {
		ret = failure(pamh, flags, &o, "%s", error);
		goto out;
	}

	if (r.enter) {
		/* Enter only what is certainly a mount namespace. */
		struct statfs sfs;
		if (fstatfs(hp->fd, &sfs) < 0 || sfs.f_type != NSFS_MAGIC || ioctl(hp->fd, NS_GET_NSTYPE) != CLONE_NEWNS) {
			ret = failure(pamh, flags, &o, "chos prepare sent a descriptor that is not a mount namespace");
			goto out;
		}
		if (setns(hp->fd, CLONE_NEWNS) < 0) {
			ret = failure(pamh, flags, &o, "cannot enter tree %s: setns: %s", r.tree, strerror(errno));
			goto out;
		}
	}
	/* Past setns the session is in the tree: errors fail it whatever onerr says. */
	if (r.nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		pam_syslog(pamh, LOG_ERR, "cannot set no_new_privs: %m");
		goto out;
	}
	for (int i = 0; i < r.nenv; i++)
		if (pam_putenv(pamh, r.setenvs[i]) != PAM_SUCCESS) {
			pam_syslog(pamh, LOG_ERR, "cannot set %s in the PAM environment", r.setenvs[i]);
			goto out;
		}
	if (o.debug)
		pam_syslog(pamh, LOG_DEBUG, "%s: tree %s%s", user, r.tree, r.enter ? "" : " (staying on the host)");
	ret = PAM_SUCCESS;
out:
	if (hp->fd >= 0)
		close(hp->fd);
	free(hp);
	return ret;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh, (void)flags, (void)argc, (void)argv;
	return PAM_SUCCESS; /* the namespace lives as long as the session's processes */
}
