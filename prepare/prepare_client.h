/*
 * prepare_client: the C side of chos's root-helper protocol
 * (docs/PREPARE-PROTOCOL.md), shared by the PAM module (pam/pam_chos.c)
 * and the SPANK plugin (spank/chos_spank.c): run `chos prepare`, read its
 * reply, check it, and hand back what to enter, set and show. It holds no
 * policy: which tree, who may use it, what to warn about are chos's.
 *
 * It is built into each module (hidden by their version scripts), calls
 * nothing newer than glibc 2.17 (srun loads the SPANK plugin inside trees
 * too, with the tree's own libc), and its child makes only
 * async-signal-safe calls (slurmstepd and srun have threads).
 */
#ifndef CHOS_PREPARE_CLIENT_H
#define CHOS_PREPARE_CLIENT_H

#define PREPARE_REPLY_MAX (64 * 1024) /* the protocol's limit */
#define PREPARE_MAX_SETENV 64
#define PREPARE_MAX_WARNINGS 16

struct prepare_options {
	const char *chos; /* the chos to run (an absolute path) */
	int timeout;      /* seconds to wait for the reply and the exit */
	int as_root;      /* run chos with every uid and gid 0 (PAM: su's real uid is the user's) */
};

struct prepare_reply {
	char *text; /* the reply received; the pointers below point into it */
	const char *tree;
	char *setenv[PREPARE_MAX_SETENV]; /* "KEY=VALUE" */
	int nsetenv;
	int nnp;           /* 1: set no_new_privs before the user's program */
	const char *argv0; /* the batch step's argv[0], or NULL */
	const char *warnings[PREPARE_MAX_WARNINGS];
	int nwarnings;
	int ns_fd;         /* the mount namespace to enter (verified), or -1: stay on the host */
	char error[1024];  /* why the request failed or was refused, one line */
};

/*
 * prepare_run runs o->chos with argv and an empty environment as the
 * protocol says, and fills r. It returns 0 for a good reply, or -1 with
 * r->error set: chos's refusal (its error= line, as it is) or what went
 * wrong. Warnings chos sent are in r either way. The caller shows them
 * and the error, and calls prepare_release.
 */
int prepare_run(const struct prepare_options *o, char *const argv[], struct prepare_reply *r);

/* prepare_release frees the reply and closes a descriptor not taken. */
void prepare_release(struct prepare_reply *r);

#endif
