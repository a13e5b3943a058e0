/*
 * pam_chos: a PAM session module that places a login in the user's chos OS
 * tree. It holds no policy: it runs `chos prepare --service pam` as a root
 * helper (selection, access, the tree's cached view are decided in Go)
 * through the client it shares with the SPANK plugin
 * (prepare/prepare_client.c), shows chos's warnings (pam_info) and
 * refusals (pam_error), and enters the mount namespace the helper returns,
 * in the process that calls pam_open_session (sshd's monitor, su, login),
 * whose children inherit it. The protocol is in PREPARE-PROTOCOL.md; the
 * admin's view in pam_chos(8).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/prctl.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <security/pam_modutil.h>

#include "prepare_client.h"

#ifndef CHOS_PATH
#define CHOS_PATH "/usr/local/bin/chos"
#endif

struct options {
	const char *chos;
	const char *exempt_group;
	int onerr_succeed;
	int timeout; /* seconds */
	int debug;
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
		args[n++] = "--env-devices";
		args[n++] = env_devices;
	}
	if (o.exempt_group != NULL) {
		args[n++] = "--exempt-group";
		args[n++] = o.exempt_group;
	}
	args[n] = NULL;

	/* The application (su) may run with the user's real uid: chos
	 * prepare runs with root's only. */
	struct prepare_options po = { .chos = o.chos, .timeout = o.timeout, .as_root = 1 };
	struct prepare_reply *r = calloc(1, sizeof *r);
	if (r == NULL) {
		free(groups);
		return failure(pamh, flags, &o, "out of memory");
	}
	int ret = PAM_SESSION_ERR, failed = prepare_run(&po, (char **)args, r) < 0;
	free(groups);
	if (o.debug)
		pam_syslog(pamh, LOG_DEBUG, "%s prepare for %s: tree %s, %s", o.chos, user, r->tree ? r->tree : "-",
			   failed ? r->error : "ok");
	for (int i = 0; i < r->nwarnings && !(flags & PAM_SILENT); i++)
		pam_info(pamh, "chos: warning: %s", r->warnings[i]);
	if (failed) {
		ret = failure(pamh, flags, &o, "%s", r->error);
		goto out;
	}
	if (r->ns_fd >= 0 && setns(r->ns_fd, CLONE_NEWNS) < 0) {
		ret = failure(pamh, flags, &o, "cannot enter tree %s: setns: %s", r->tree, strerror(errno));
		goto out;
	}
	/* Past setns the session is in the tree: errors fail it whatever onerr says. */
	if (r->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		pam_syslog(pamh, LOG_ERR, "cannot set no_new_privs: %m");
		goto out;
	}
	for (int i = 0; i < r->nsetenv; i++)
		if (pam_putenv(pamh, r->setenv[i]) != PAM_SUCCESS) {
			pam_syslog(pamh, LOG_ERR, "cannot set %s in the PAM environment", r->setenv[i]);
			goto out;
		}
	if (o.debug)
		pam_syslog(pamh, LOG_DEBUG, "%s: tree %s%s", user, r->tree, r->ns_fd >= 0 ? "" : " (staying on the host)");
	ret = PAM_SUCCESS;
out:
	prepare_release(r);
	free(r);
	return ret;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh, (void)flags, (void)argc, (void)argv;
	return PAM_SUCCESS; /* the namespace lives as long as the session's processes */
}
