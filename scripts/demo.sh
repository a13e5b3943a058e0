#!/usr/bin/env bash
# demo.sh: show chos at work on this machine (run as root, normally via
# `make demo`).
#
# Builds a busybox OS tree, writes a chos configuration for it, installs a
# setuid-root chos compiled for that configuration (everything below
# $DEMO_DIR, the host's /etc is not touched), then runs commands in the tree
# as the unprivileged user nobody.
#
# Environment: DEMO_DIR (default /var/lib/chos-demo), MAKE (default make), GO.
set -euo pipefail

DEMO_DIR=${DEMO_DIR:-/var/lib/chos-demo}
MAKE=${MAKE:-make}
DEMO_USER=nobody

prog=${0##*/}
die() { printf '%s: %s\n' "$prog" "$*" >&2; exit 1; }
run() {
	printf '+'
	printf ' %q' "$@"
	printf '\n'
	"$@"
}
trap 'echo "$prog: FAILED (line $LINENO)" >&2' ERR

[[ $EUID -eq 0 ]] || die "must be run as root (it installs a setuid-root binary under $DEMO_DIR)"
[[ $DEMO_DIR == /* ]] || die "DEMO_DIR must be an absolute path: $DEMO_DIR"
DEMO_DIR=${DEMO_DIR%/}
[[ -n $DEMO_DIR ]] || die "DEMO_DIR must not be /"
getent passwd "$DEMO_USER" >/dev/null || die "no user $DEMO_USER on this machine"
if getent group nogroup >/dev/null; then DEMO_GROUP=nogroup; else DEMO_GROUP=$(id -gn "$DEMO_USER"); fi
command -v setpriv >/dev/null || die "setpriv not found (package util-linux)"
if ! command -v "${GO:-go}" >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH=$PATH:/usr/local/go/bin
fi
command -v "${GO:-go}" >/dev/null || die "the Go toolchain (${GO:-go}) is not on PATH"

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

srcdir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd -- "$srcdir"
umask 022

tree=$DEMO_DIR/trees/demo
chos=$DEMO_DIR/prefix/bin/chos

echo "== building the demo tree"
# every directory on the way must be root-owned and not group/world writable
run install -d -o root -g root -m 0755 "$DEMO_DIR" "$DEMO_DIR/trees" "$DEMO_DIR/etc"
run scripts/mkbusyboxtree "$tree" chosdemo "chos demo tree (busybox)"

echo "== writing the configuration $DEMO_DIR/etc/chos"
cfg=$work/chos
cat >"$cfg" <<EOF
# chos demo configuration, written by scripts/demo.sh
%SHELLS
demo:$tree
default:$tree
local:/
EOF
run install -o root -g root -m 0644 "$cfg" "$DEMO_DIR/etc/chos"
sed 's/^/    /' "$DEMO_DIR/etc/chos"

echo "== installing chos under $DEMO_DIR/prefix"
run "$MAKE" --no-print-directory install \
	PREFIX="$DEMO_DIR/prefix" SYSCONFDIR="$DEMO_DIR/etc" CHOSROOT="$DEMO_DIR/root" \
	CACHEDIR="$DEMO_DIR/cache" \
	PAMDIR="$DEMO_DIR/prefix/lib/security" SPANKDIR="$DEMO_DIR/prefix/lib/slurm"
run ls -l "$chos"
if command -v findmnt >/dev/null && findmnt -n -o OPTIONS -T "$chos" | tr , '\n' | grep -qx nosuid; then
	echo "$prog: warning: $chos is on a nosuid file system, its setuid bit has no effect;" >&2
	echo "$prog: warning: set DEMO_DIR to a directory on another file system" >&2
fi

host_pretty=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}") || host_pretty=unknown
echo "== the host runs: $host_pretty"

# as_user CMD...: run CMD as nobody, without supplementary groups, from /
as_user() {
	(cd / && run setpriv --reuid="$DEMO_USER" --regid="$DEMO_GROUP" --clear-groups \
		env -u CHOS -u CHOS_CONFIG HOME=/ "$@")
}

out=$work/out
echo "== as $DEMO_USER, in the tree 'demo': cat /etc/os-release"
as_user "$chos" exec demo cat /etc/os-release | tee "$out"
grep -qx 'ID=chosdemo' "$out" || die "the command did not see the tree's /etc/os-release"

echo "== as $DEMO_USER, in the tree 'demo': id"
as_user "$chos" exec demo id | tee "$out"
uid=$(id -u "$DEMO_USER")
grep -Eq "^uid=$uid([( ]|\$)" "$out" || die "the command did not run as $DEMO_USER (uid $uid)"

cat <<EOF

== demo OK: the command saw the tree's own /etc/os-release and ran as $DEMO_USER.
Try it yourself (as any user):
    $chos shell demo       # a login shell in the demo tree
    $chos list             # the trees this chos knows
    $chos exec demo ls /   # one command in the tree
The configuration is $DEMO_DIR/etc/chos; the tree's view is cached in $DEMO_DIR/cache.
Remove everything with: $chos cache drop && rm -rf $DEMO_DIR
EOF
