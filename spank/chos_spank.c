/*
 * chos_spank.so: Slurm SPANK plugin that runs job steps in a chos OS tree.
 *
 *   plugstack.conf: required /path/chos_spank.so [chos=PATH] [default=TREE] [timeout=SECONDS]
 *   users:          srun|sbatch|salloc --chos=TREE ...   (or CHOS=TREE in the job's environment)
 *                   [--chos-device=VENDOR/CLASS=NAME,...] (or CHOS_DEVICES=... likewise)
 *
 * It holds no policy. Once per job step, in slurmstepd (root), it runs
 * `chos prepare --service slurm` as a root helper and keeps its reply; in
 * each task, before Slurm drops privileges, it enters the mount namespace
 * chos sent and applies the rest of the reply. At submit time (sbatch,
 * salloc, as the user) it runs `chos prepare --check` to refuse an
 * unknown or forbidden tree before the job queues. Which tree, who may use
 * it, the cwd, PATH and the setuid rule are chos's decisions. The protocol
 * is chos's root-helper protocol (docs: PREPARE-PROTOCOL.md); the callbacks
 * and their contexts are spank(8)'s. See chos_spank(8).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#ifndef CHOS_PATH
#error "build with -DCHOS_PATH='\"/path/to/chos\"' (the Makefile does)"
#endif

SPANK_PLUGIN(chos, 1);

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same on every architecture (Linux 5.3) */
#endif

/* The chos run without chos=, as what(1) finds it: `chos check` reads it. */
static const char what[] __attribute__((used)) = "@(#)chos_spank chos=" CHOS_PATH;

/* chos as every tree shows it, for a submit-time check from inside a tree. */
#define CHOS_IN_TREE "/.chos/bin/chos"

#define REPLY_MAX (64 * 1024) /* the protocol's limit */
#define DIAG_MAX 4096         /* stderr of chos kept for messages */
#define MAX_SETENV 64

/* Configuration (plugstack.conf), the option, and the reply kept for the step. */
static const char *chos_path = CHOS_PATH;
static const char *default_tree;
static int timeout_s = 60;
static char *opt_tree;
static char *opt_devices;     /* --chos-device, each one given, comma-separated */
static const char *chos_run;  /* the chos executed: chos_path, or CHOS_IN_TREE */

static int active;            /* chos was asked: tasks act on the reply */
static char failure[1024];    /* non-empty: every task fails with it */
static char *reply;           /* the reply's text; the pointers below point into it */
static int ns_fd = -1;        /* enter=1: the mount namespace to enter */
static int nnp;
static char *argv0, *warning;
static char *setenv_kv[MAX_SETENV]; /* "KEY\0VALUE" */
static int n_setenv;

/* fail keeps the first error of the step; tasks report it. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	if (failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(failure, sizeof failure, fmt, ap);
	va_end(ap);
}

static int opt_chos(int val, const char *optarg, int remote)
{
	(void)val;
	(void)remote;
	if (!optarg || !*optarg) {
		slurm_error("chos: --chos needs a tree name");
		return -1;
	}
	free(opt_tree);
	return (opt_tree = strdup(optarg)) ? 0 : -1;
}

static struct spank_option chos_option = {
	"chos", "TREE", "Run the job's tasks in the chos OS tree TREE (see chos(1)).", 1, 0, opt_chos,
};

static int opt_device(int val, const char *optarg, int remote)
{
	char *more;
	(void)val;
	(void)remote;
	if (!optarg || !*optarg) {
		slurm_error("chos: --chos-device needs a device (VENDOR/CLASS=NAME)");
		return -1;
	}
	if (!opt_devices)
		return (opt_devices = strdup(optarg)) ? 0 : -1;
	if (asprintf(&more, "%s,%s", opt_devices, optarg) < 0)
		return -1;
	free(opt_devices);
	opt_devices = more;
	return 0;
}

static struct spank_option device_option = {
	"chos-device", "DEVICE", "With --chos: show the host's CDI device DEVICE (VENDOR/CLASS=NAME, a comma-separated list) in the tree.", 1, 0, opt_device,
};

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	for (int i = 0; i < ac; i++) {
		char *end;
		if (!strncmp(av[i], "chos=", 5) && av[i][5] == '/') {
			chos_path = av[i] + 5;
		} else if (!strncmp(av[i], "default=", 8) && av[i][8]) {
			default_tree = av[i] + 8;
		} else if (!strncmp(av[i], "timeout=", 8)) {
			long t = strtol(av[i] + 8, &end, 10);
			if (av[i][8] == '\0' || *end || t < 1 || t > 3600) {
				slurm_error("chos: plugstack.conf: %s: want 1 to 3600 seconds", av[i]);
				return -1;
			}
			timeout_s = (int)t;
		} else {
			slurm_error("chos: plugstack.conf: bad option \"%s\" (chos=/ABSOLUTE/PATH, default=TREE, timeout=SECONDS)", av[i]);
			return -1;
		}
	}
	switch (spank_context()) {
	case S_CTX_LOCAL:
	case S_CTX_REMOTE:
	case S_CTX_ALLOCATOR: /* sbatch and salloc see only registered options, not a static table */
		return spank_option_register(sp, &chos_option) == ESPANK_SUCCESS &&
		       spank_option_register(sp, &device_option) == ESPANK_SUCCESS ? 0 : -1;
	default:
		return 0;
	}
}

/*
 * The child: the protocol's descriptors, an empty environment, default
 * signals. Async-signal-safe calls only: slurmstepd and srun have threads.
 * (No libc call newer than glibc 2.17 anywhere in the plugin: srun loads it
 * inside trees too, with the tree's own libc.)
 */
static void exec_chos(char *const argv[], int sock, int errw)
{
	static char *const envp[] = { NULL };
	char digits[12], *d = digits + sizeof digits;
	sigset_t none;
	int null = open("/dev/null", O_RDWR), err;

	setsid(); /* its own process group: a timeout kills all of it */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	/* Above 3 first, so that no dup2 below overwrites a descriptor still needed. */
	sock = fcntl(sock, F_DUPFD, 10);
	errw = fcntl(errw, F_DUPFD, 10);
	if (null < 0 || sock < 0 || errw < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
	    dup2(errw, 2) < 0 || dup2(sock, 3) < 0)
		_exit(126);
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
#endif
		for (long fd = 4, max = sysconf(_SC_OPEN_MAX); fd < max; fd++)
			close((int)fd);
	execve(chos_run, argv, envp);
	/* The parent checked that it can run: this is rare. */
	err = errno;
	*--d = '\n';
	do
		*--d = (char)('0' + err % 10);
	while ((err /= 10) > 0);
	struct iovec msg[] = { { "cannot run ", 11 }, { (char *)chos_run, strlen(chos_run) },
			       { ": execve failed with errno ", 27 }, { d, (size_t)(digits + sizeof digits - d) } };
	ssize_t ignored = writev(2, msg, 4); /* nothing to do if it fails: the status says it */
	(void)ignored;
	_exit(127);
}

/*
 * chos_to_run is the chos to execute: chos_path, or with in_tree (a
 * submit-time check, which may run inside a tree, where the installed path
 * is usually missing) chos as every tree shows it. NULL, with errno set,
 * when neither can run.
 */
static const char *chos_to_run(int in_tree)
{
	int err;

	if (access(chos_path, X_OK) == 0)
		return chos_path;
	err = errno;
	if (err == ENOENT && in_tree && access(CHOS_IN_TREE, X_OK) == 0)
		return CHOS_IN_TREE;
	errno = err;
	return NULL;
}

/* recv_some appends what chos sent to reply[*len], keeping at most one descriptor. */
static int recv_some(int sock, size_t *len, int *fd, int *extra_fds)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(4 * sizeof(int))]; } c;
	struct iovec iov = { reply + *len, REPLY_MAX - *len };
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
	if (n > 0 && iov.iov_base != reply + *len)
		return fail("chos prepare: reply longer than %d bytes", REPLY_MAX), -1;
	*len += (size_t)n;
	return n > 0;
}

/* parse_reply checks the reply's text (NUL-terminated) and keeps its fields. */
static const char *parse_reply(size_t len, int have_fd, const char **refusal)
{
	int enter = -1, end = 0;

	if (strlen(reply) != len)
		return "a NUL byte in the reply";
	for (char *line = reply, *nl; *line; line = nl + 1) {
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
			/* for the record only: the descriptor is what counts */
		} else if (!strcmp(line, "warning")) {
			warning = val;
		} else if (!strcmp(line, "enter") || !strcmp(line, "nnp")) {
			if (strcmp(val, "0") && strcmp(val, "1"))
				return "enter= and nnp= take 0 or 1";
			*(line[0] == 'e' ? &enter : &nnp) = val[0] == '1';
		} else if (!strcmp(line, "setenv")) {
			char *eq = strchr(val, '=');
			if (!eq || eq == val || n_setenv == MAX_SETENV)
				return "a bad setenv= line (or too many)";
			*eq = '\0';
			setenv_kv[n_setenv++] = val;
		} else if (!strcmp(line, "argv0")) {
			if (val[0] != '/')
				return "argv0= is not an absolute path";
			argv0 = val;
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

/* prepare runs chos (see chos_to_run) with argv and keeps its reply, or fails. */
static void prepare(char *const argv[], int in_tree)
{
	int sv[2] = { -1, -1 }, ep[2] = { -1, -1 }, fd = -1, extra_fds = 0, status = 0, timed_out = 0;
	char diag[DIAG_MAX + 1] = "";
	size_t len = 0, dlen = 0;
	struct sigaction dfl = { .sa_handler = SIG_DFL }, old;
	struct timespec deadline;
	const char *bad, *refusal = NULL;
	pid_t pid;

	if (!(chos_run = chos_to_run(in_tree))) {
		fail("cannot run %s: %s", chos_path, strerror(errno));
		goto out;
	}
	if (!(reply = calloc(1, REPLY_MAX + 1)) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(ep, O_CLOEXEC) < 0) {
		fail("cannot start %s: %s", chos_run, strerror(errno));
		goto out;
	}
	/* waitpid needs SIGCHLD not ignored (as pam_namespace does it). */
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGCHLD, &dfl, &old);
	if ((pid = fork()) < 0) {
		fail("cannot fork for %s: %s", chos_run, strerror(errno));
		sigaction(SIGCHLD, &old, NULL);
		goto out;
	}
	if (pid == 0)
		exec_chos(argv, sv[1], ep[1]);
	close(sv[1]), sv[1] = -1;
	close(ep[1]), ep[1] = -1;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_s;
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
		if (p[0].revents && recv_some(p[0].fd, &len, &fd, &extra_fds) <= 0)
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

	bad = parse_reply(len, fd >= 0, &refusal);
	if (timed_out)
		fail("%s prepare: no answer within %d s (timeout=)", chos_run, timeout_s);
	else if (WIFSIGNALED(status))
		fail("%s prepare: killed by signal %d: %s", chos_run, WTERMSIG(status), last_line(diag));
	else if (refusal)
		fail("%s", refusal);
	else if (WEXITSTATUS(status) != 0)
		fail("%s prepare: exit status %d: %s", chos_run, WEXITSTATUS(status), last_line(diag));
	else if (bad)
		fail("%s prepare: %s", chos_run, bad);
	else if (extra_fds)
		fail("%s prepare: sent more than one descriptor", chos_run);
	else if (fd >= 0) {
		struct statfs sf;
		if (fstatfs(fd, &sf) < 0 || sf.f_type != NSFS_MAGIC || ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNS)
			fail("%s prepare: the descriptor sent is not a mount namespace", chos_run);
	}
	if (failure[0] && fd >= 0)
		close(fd), fd = -1;
	ns_fd = fd;
out:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
}

/* job_env copies a variable of the job's environment: 1, 0 if unset, -1 if too long. */
static int job_env(spank_t sp, const char *name, char *buf, int size)
{
	spank_err_t rc = spank_getenv(sp, name, buf, size);
	return rc == ESPANK_SUCCESS ? 1 : rc == ESPANK_NOSPACE ? -1 : 0;
}

/* chos's arguments, "--key=value" each: a value starting with '-' is never an option. */
#define MAX_ARGS 24
static char *args[MAX_ARGS] = { "chos", "prepare", "--service=slurm" };
static int n_args = 3;

static void arg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void arg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (n_args < MAX_ARGS - 1 && vasprintf(&args[n_args], fmt, ap) >= 0)
		n_args++;
	else
		fail("out of memory");
	va_end(ap);
}

static void free_args(void)
{
	while (n_args > 3)
		free(args[--n_args]);
}

/*
 * Submit time (sbatch, salloc), as the user: ask chos whether the
 * tree the job selects exists and may be used, so that a mistake is
 * refused before the job queues. A preview only: every step asks again.
 */
static int submit_check(void)
{
	const char *env_chos = getenv("CHOS"), *devices = opt_devices ? opt_devices : getenv("CHOS_DEVICES");

	if (env_chos && !*env_chos)
		env_chos = NULL;
	if (!opt_tree && !env_chos && !default_tree)
		return 0; /* the host, as without chos */
	if (!chos_to_run(1)) {
		/* A submit host without chos (login nodes may lack it): the
		 * job's steps still ask chos on their nodes, and fail there. */
		slurm_verbose("chos: %s: %s: the tree is checked when the job starts", chos_path, strerror(errno));
		return 0;
	}
	arg("--check");
	if (opt_tree)
		arg("--tree=%s", opt_tree);
	if (env_chos)
		arg("--env-chos=%s", env_chos);
	if (default_tree)
		arg("--default=%s", default_tree);
	if (devices && *devices)
		arg("--devices=%s", devices);
	if (!failure[0])
		prepare(args, 1);
	free_args();
	if (failure[0]) {
		slurm_error("chos: %s", failure);
		return -1; /* srun, sbatch and salloc stop here: nothing is queued */
	}
	return 0;
}

/* Remote: once per step, in slurmstepd as root, before any task exists. */
int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	static char env_path[32768];
	char env_chos[1024], env_devices[4096], cwd[4096], pwbuf[16384], *groups;
	int ngids = 0, argc_job = 0, have_env, have_cwd, have_path, have_devices;
	uid_t uid;
	gid_t gid, *gids = NULL;
	uint32_t job, step;
	char **argv_job = NULL;
	struct passwd pw, *pwp = NULL;

	(void)ac;
	(void)av;
	/* sbatch and salloc check at submit time; srun (local) does not: its
	 * step starts at once and asks chos itself (one chos run less per srun). */
	if (spank_context() == S_CTX_ALLOCATOR)
		return submit_check();
	if (spank_context() != S_CTX_REMOTE)
		return 0;
	if (spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS || step == SLURM_EXTERN_CONT)
		return 0; /* the extern step runs no user task */
	/* sbatch --export=NONE sends the option only in Slurm's copy of it
	 * for the job's environment, which the batch step does not parse. */
	if (!opt_tree && job_env(sp, "SLURM_SPANK__SLURM_SPANK_OPTION_chos_chos", env_chos, sizeof env_chos) > 0 &&
	    env_chos[0] && !(opt_tree = strdup(env_chos)))
		return fail("out of memory"), 0;
	if (!opt_devices && job_env(sp, "SLURM_SPANK__SLURM_SPANK_OPTION_chos_chos_device", env_devices, sizeof env_devices) > 0 &&
	    env_devices[0] && !(opt_devices = strdup(env_devices)))
		return fail("out of memory"), 0;
	have_env = job_env(sp, "CHOS", env_chos, sizeof env_chos);
	have_cwd = job_env(sp, "PWD", cwd, sizeof cwd);
	have_path = job_env(sp, "PATH", env_path, sizeof env_path);
	have_devices = opt_devices ? 0 : job_env(sp, "CHOS_DEVICES", env_devices, sizeof env_devices);
	if (!opt_tree && !have_env && !default_tree)
		return 0; /* nothing selected: the host, as without chos */
	active = 1;
	if (have_env < 0 || have_cwd < 0 || have_path < 0 || have_devices < 0)
		return fail("$CHOS, $PWD, $PATH or $CHOS_DEVICES of the job is too long"), 0;
	if (spank_get_item(sp, S_JOB_UID, &uid) || spank_get_item(sp, S_JOB_GID, &gid) ||
	    spank_get_item(sp, S_JOB_SUPPLEMENTARY_GIDS, &gids, &ngids) || spank_get_item(sp, S_JOB_ID, &job) ||
	    (step == SLURM_BATCH_SCRIPT && (spank_get_item(sp, S_JOB_ARGV, &argc_job, &argv_job) || argc_job < 1)))
		return fail("cannot get the job's identity or batch script from Slurm"), 0;
	/* a lookup by uid, in slurmstepd's NSS: nothing the user controls */
	if (getpwuid_r(uid, &pw, pwbuf, sizeof pwbuf, &pwp) != 0 || !pwp)
		return fail("no user with uid %u", (unsigned)uid), 0;
	if (!(groups = calloc((size_t)ngids + 1, 11)))
		return fail("out of memory"), 0;
	for (int i = 0, off = 0; i < ngids; i++)
		off += sprintf(groups + off, "%s%u", i ? "," : "", (unsigned)gids[i]);

	arg("--user=%s", pw.pw_name);
	arg("--uid=%u", (unsigned)uid);
	arg("--gid=%u", (unsigned)gid);
	arg("--groups=%s", groups);
	if (opt_tree)
		arg("--tree=%s", opt_tree);
	if (have_env)
		arg("--env-chos=%s", env_chos);
	if (default_tree)
		arg("--default=%s", default_tree);
	if (have_cwd)
		arg("--cwd=%s", cwd);
	if (have_path)
		arg("--env-path=%s", env_path);
	if (opt_devices)
		arg("--devices=%s", opt_devices);
	else if (have_devices)
		arg("--devices=%s", env_devices);
	if (step == SLURM_BATCH_SCRIPT)
		arg("--batch-script=%s", argv_job[0]);
	arg("--job=%u", job);
	if (step == SLURM_BATCH_SCRIPT || step == SLURM_INTERACTIVE_STEP) /* as Slurm names them */
		arg("--step=%s", step == SLURM_BATCH_SCRIPT ? "batch" : "interactive");
	else
		arg("--step=%u", step);
	if (!failure[0])
		prepare(args, 0);
	free(groups);
	free_args();
	return 0;
}

/* Per task, in the task's process as root, after Slurm's own namespace joins. */
int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	int task = -1, argc_job = 0;
	char **argv_job = NULL;

	(void)ac;
	(void)av;
	if (!active)
		return 0;
	if (failure[0]) {
		slurm_error("chos: %s", failure); /* fails the job, never drains the node */
		return -1;
	}
	if (warning && spank_get_item(sp, S_TASK_ID, &task) == ESPANK_SUCCESS && task == 0)
		slurm_spank_log("chos: warning: %s", warning);
	if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNS) < 0) {
		slurm_error("chos: entering the tree's mount namespace: %s", strerror(errno));
		return -1;
	}
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		slurm_error("chos: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < n_setenv; i++) {
		const char *val = setenv_kv[i] + strlen(setenv_kv[i]) + 1;
		if (spank_setenv(sp, setenv_kv[i], val, 1) != ESPANK_SUCCESS) {
			slurm_error("chos: cannot set %s in the task's environment", setenv_kv[i]);
			return -1;
		}
	}
	if (argv0) {
		/* The array is this task's copy: the task process is a fork of slurmstepd. */
		if (spank_get_item(sp, S_JOB_ARGV, &argc_job, &argv_job) != ESPANK_SUCCESS || argc_job < 1) {
			slurm_error("chos: cannot replace the task's argv[0]");
			return -1;
		}
		argv_job[0] = argv0;
	}
	return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	if (ns_fd >= 0)
		close(ns_fd), ns_fd = -1;
	free(reply), reply = NULL;
	free(opt_tree), opt_tree = NULL;
	free(opt_devices), opt_devices = NULL;
	return 0;
}
