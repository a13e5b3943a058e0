/*
 * chos_spank.so: Slurm SPANK plugin that runs job steps in a chos OS tree.
 *
 *   plugstack.conf: required /path/chos_spank.so [chos=PATH] [default=TREE] [timeout=SECONDS]
 *   users:          srun|sbatch|salloc --chos=TREE ...   (or CHOS=TREE in the job's environment)
 *                   [--chos-device=VENDOR/CLASS=NAME,...] (or CHOS_DEVICES=... likewise)
 *
 * It holds no policy. Once per job step, in slurmstepd (root), it runs
 * `chos prepare --service slurm` as a root helper, through the client it
 * shares with the PAM module (prepare/prepare_client.c), and keeps its
 * reply; in each task, before Slurm drops privileges, it enters the mount
 * namespace chos sent and applies the rest of the reply, and the first
 * task shows chos's warnings on the job's stderr. At submit time (sbatch,
 * salloc, as the user) it runs `chos prepare --check` to refuse an
 * unknown or forbidden tree (or device) before the job queues. Which tree,
 * who may use it, which devices, the cwd, PATH and the setuid rule are
 * chos's decisions. The protocol
 * is chos's root-helper protocol (docs: PREPARE-PROTOCOL.md); the callbacks
 * and their contexts are spank(8)'s. See chos_spank(8).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "prepare_client.h"

#ifndef CHOS_PATH
#error "build with -DCHOS_PATH='\"/path/to/chos\"' (the Makefile does)"
#endif

SPANK_PLUGIN(chos, 1);

/* The chos run without chos=, as what(1) finds it: `chos check` reads it. */
static const char what[] __attribute__((used)) = "@(#)chos_spank chos=" CHOS_PATH;

/* chos as every tree shows it, for a submit-time check from inside a tree. */
#define CHOS_IN_TREE "/.chos/bin/chos"

/* chos's arguments, "--key=value" each: a value starting with '-' is never an option. */
#define MAX_ARGS 24

/* The plugin's state, one per process (srun, sbatch, a step's slurmstepd). */
static struct {
	/* plugstack.conf, and the --chos option */
	const char *chos_path, *default_tree;
	int timeout; /* seconds */
	char *opt_tree;
	char *opt_devices; /* --chos-device, each one given, comma-separated */
	/* the step: chos was asked (tasks act on the reply), and what it said */
	int active;
	char failure[1024]; /* non-empty: every task fails with it */
	struct prepare_reply reply;
	char *args[MAX_ARGS];
	int nargs;
} pl = {
	.chos_path = CHOS_PATH,
	.timeout = 60,
	.reply = { .ns_fd = -1 },
	.args = { "chos", "prepare", "--service=slurm" },
	.nargs = 3,
};

/* fail keeps the first error of the step; tasks report it. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;
	if (pl.failure[0])
		return;
	va_start(ap, fmt);
	vsnprintf(pl.failure, sizeof pl.failure, fmt, ap);
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
	free(pl.opt_tree);
	return (pl.opt_tree = strdup(optarg)) ? 0 : -1;
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
	if (!pl.opt_devices)
		return (pl.opt_devices = strdup(optarg)) ? 0 : -1;
	if (asprintf(&more, "%s,%s", pl.opt_devices, optarg) < 0)
		return -1;
	free(pl.opt_devices);
	pl.opt_devices = more;
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
			pl.chos_path = av[i] + 5;
		} else if (!strncmp(av[i], "default=", 8) && av[i][8]) {
			pl.default_tree = av[i] + 8;
		} else if (!strncmp(av[i], "timeout=", 8)) {
			long t = strtol(av[i] + 8, &end, 10);
			if (av[i][8] == '\0' || *end || t < 1 || t > 3600) {
				slurm_error("chos: plugstack.conf: %s: want 1 to 3600 seconds", av[i]);
				return -1;
			}
			pl.timeout = (int)t;
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
 * chos_to_run is the chos to execute: chos_path, or with in_tree (a
 * submit-time check, which may run inside a tree, where the installed path
 * is usually missing) chos as every tree shows it.
 */
static const char *chos_to_run(int in_tree)
{
	if (access(pl.chos_path, X_OK) < 0 && errno == ENOENT && in_tree && access(CHOS_IN_TREE, X_OK) == 0)
		return CHOS_IN_TREE;
	return pl.chos_path;
}

/* prepare runs chos with the arguments gathered and keeps its reply, or fails. */
static void prepare(int in_tree)
{
	struct prepare_options o = { .chos = chos_to_run(in_tree), .timeout = pl.timeout };
	pl.args[pl.nargs] = NULL;
	if (prepare_run(&o, pl.args, &pl.reply) < 0)
		fail("%s", pl.reply.error);
}

/* job_env copies a variable of the job's environment: 1, 0 if unset, -1 if too long. */
static int job_env(spank_t sp, const char *name, char *buf, int size)
{
	spank_err_t rc = spank_getenv(sp, name, buf, size);
	return rc == ESPANK_SUCCESS ? 1 : rc == ESPANK_NOSPACE ? -1 : 0;
}

static void arg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void arg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (pl.nargs < MAX_ARGS - 1 && vasprintf(&pl.args[pl.nargs], fmt, ap) >= 0)
		pl.nargs++;
	else
		fail("out of memory");
	va_end(ap);
}

static void free_args(void)
{
	while (pl.nargs > 3)
		free(pl.args[--pl.nargs]);
}

/*
 * Submit time (sbatch, salloc), as the user: ask chos whether the
 * tree the job selects exists and may be used, so that a mistake is
 * refused before the job queues. A preview only: every step asks again.
 */
static int submit_check(void)
{
	const char *env_chos = getenv("CHOS"), *env_devices = getenv("CHOS_DEVICES");

	if (env_chos && !*env_chos)
		env_chos = NULL;
	if (!pl.opt_tree && !env_chos && !pl.default_tree)
		return 0; /* the host, as without chos */
	if (access(chos_to_run(1), X_OK) < 0) {
		/* A submit host without chos (login nodes may lack it): the
		 * job's steps still ask chos on their nodes, and fail there. */
		slurm_verbose("chos: %s: %s: the tree is checked when the job starts", pl.chos_path, strerror(errno));
		return 0;
	}
	arg("--check");
	if (pl.opt_tree)
		arg("--tree=%s", pl.opt_tree);
	if (env_chos)
		arg("--env-chos=%s", env_chos);
	if (pl.default_tree)
		arg("--default=%s", pl.default_tree);
	if (pl.opt_devices)
		arg("--devices=%s", pl.opt_devices);
	if (env_devices && *env_devices)
		arg("--env-devices=%s", env_devices);
	if (!pl.failure[0])
		prepare(1);
	free_args();
	for (int i = 0; i < pl.reply.nwarnings; i++)
		slurm_info("chos: warning: %s", pl.reply.warnings[i]);
	prepare_release(&pl.reply);
	if (pl.failure[0]) {
		slurm_error("chos: %s", pl.failure);
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
	if (!pl.opt_tree && job_env(sp, "SLURM_SPANK__SLURM_SPANK_OPTION_chos_chos", env_chos, sizeof env_chos) > 0 &&
	    env_chos[0] && !(pl.opt_tree = strdup(env_chos)))
		return fail("out of memory"), 0;
	if (!pl.opt_devices && job_env(sp, "SLURM_SPANK__SLURM_SPANK_OPTION_chos_chos_device", env_devices, sizeof env_devices) > 0 &&
	    env_devices[0] && !(pl.opt_devices = strdup(env_devices)))
		return fail("out of memory"), 0;
	have_env = job_env(sp, "CHOS", env_chos, sizeof env_chos);
	have_cwd = job_env(sp, "PWD", cwd, sizeof cwd);
	have_path = job_env(sp, "PATH", env_path, sizeof env_path);
	have_devices = job_env(sp, "CHOS_DEVICES", env_devices, sizeof env_devices);
	if (!pl.opt_tree && !have_env && !pl.default_tree)
		return 0; /* nothing selected: the host, as without chos */
	pl.active = 1;
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
	if (pl.opt_tree)
		arg("--tree=%s", pl.opt_tree);
	if (have_env)
		arg("--env-chos=%s", env_chos);
	if (pl.default_tree)
		arg("--default=%s", pl.default_tree);
	if (have_cwd)
		arg("--cwd=%s", cwd);
	if (have_path)
		arg("--env-path=%s", env_path);
	if (pl.opt_devices)
		arg("--devices=%s", pl.opt_devices);
	if (have_devices)
		arg("--env-devices=%s", env_devices);
	if (step == SLURM_BATCH_SCRIPT)
		arg("--batch-script=%s", argv_job[0]);
	arg("--job=%u", job);
	if (step == SLURM_BATCH_SCRIPT || step == SLURM_INTERACTIVE_STEP) /* as Slurm names them */
		arg("--step=%s", step == SLURM_BATCH_SCRIPT ? "batch" : "interactive");
	else
		arg("--step=%u", step);
	if (!pl.failure[0])
		prepare(0);
	free(groups);
	free_args();
	return 0;
}

/* Per task, in the task's process as root, after Slurm's own namespace joins. */
int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	struct prepare_reply *r = &pl.reply;
	int task = -1, argc_job = 0;
	char **argv_job = NULL;

	(void)ac;
	(void)av;
	if (!pl.active)
		return 0;
	/* What chos warns about, and a failure, said by the node's first task
	 * only: they are the step's on this node, whatever its tasks there. */
	if (spank_get_item(sp, S_TASK_ID, &task) != ESPANK_SUCCESS)
		task = 0;
	if (task == 0)
		for (int i = 0; i < r->nwarnings; i++)
			slurm_spank_log("chos: warning: %s", r->warnings[i]);
	if (pl.failure[0]) {
		if (task == 0)
			slurm_error("chos: %s", pl.failure); /* fails the job, never drains the node */
		return -1; /* (every task fails) */
	}
	if (r->ns_fd >= 0 && setns(r->ns_fd, CLONE_NEWNS) < 0) {
		slurm_error("chos: entering the tree's mount namespace: %s", strerror(errno));
		return -1;
	}
	if (r->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		slurm_error("chos: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < r->nsetenv; i++) {
		char *kv = r->setenv[i], *eq = strchr(kv, '=');
		*eq = '\0'; /* (this task's copy: the task process is a fork of slurmstepd) */
		int rc = spank_setenv(sp, kv, eq + 1, 1);
		*eq = '=';
		if (rc != ESPANK_SUCCESS) {
			slurm_error("chos: cannot set %s in the task's environment", kv);
			return -1;
		}
	}
	if (r->argv0) {
		/* The array is this task's copy: the task process is a fork of slurmstepd. */
		if (spank_get_item(sp, S_JOB_ARGV, &argc_job, &argv_job) != ESPANK_SUCCESS || argc_job < 1) {
			slurm_error("chos: cannot replace the task's argv[0]");
			return -1;
		}
		argv_job[0] = (char *)r->argv0;
	}
	return 0;
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	prepare_release(&pl.reply);
	free(pl.opt_tree), pl.opt_tree = NULL;
	free(pl.opt_devices), pl.opt_devices = NULL;
	return 0;
}
