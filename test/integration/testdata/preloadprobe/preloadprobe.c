/* preloadprobe: a shared library that appends, to the file PROBE_LOG
 * (compiled in), one line per process that loads it: its effective uid,
 * pid and executable. Tests load it the ways a tree's maker or a user
 * could make a privileged process load a library: a tree's
 * /etc/ld.so.preload, LD_PRELOAD, LD_AUDIT. It must never say euid=0.
 *
 *   gcc -shared -fPIC -DPROBE_LOG='"/tmp/x/log"' -o preloadprobe.so preloadprobe.c
 *
 * Only calls as old as glibc 2.2.5: it is loaded into the host's programs
 * and into older trees' alike. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void record(void)
{
	char exe[256] = "?", line[400];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0)
		exe[n] = '\0';
	int len = snprintf(line, sizeof line, "euid=%d pid=%d exe=%s\n", (int)geteuid(), (int)getpid(), exe);
	int fd = open(PROBE_LOG, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, line, (size_t)len) < 0) {
		}
		close(fd);
	}
}

/* An LD_AUDIT library must say which interface it speaks. */
unsigned int la_version(unsigned int version)
{
	return version;
}
