# chos.sh: start interactive login shells in the user's selected OS tree, for
# sites that place logins neither with pam_chos(8) nor with sshd. Sourced
# from /etc/profile (sh, bash, dash, ksh, busybox ash). See chos(1).
#
# It acts only for interactive login shells (never for `su -l -c CMD`,
# `bash -lc CMD`, scp or sftp), only on the host (inside a tree, whose own
# profile may source this again, `chos current` is not "local"), never for
# root, and it runs a command in the selected tree before it replaces the
# shell: a bad selection leaves the user on the host with a one-line
# warning instead of ending the login. chos.csh does the same for csh.
_chos_bin=/usr/local/bin/chos # make install writes its BINDIR here
case $- in
*i*)
	if [ -x "$_chos_bin" ] && [ "$(id -u)" != 0 ] &&
		[ "$("$_chos_bin" current 2>/dev/null </dev/null)" = local ]; then
		# CHOS=TREE as the tree that `chos shell` would use sees it, or
		# chos's error.
		_chos_out=$("$_chos_bin" exec -- env 2>&1 </dev/null | grep -e '^CHOS=' -e '^chos: ' | tail -n 1)
		case $_chos_out in
		CHOS=local) ;;
		CHOS=*) exec "$_chos_bin" shell ;;
		*) printf '%s; staying on the host\n' "${_chos_out:-chos: cannot start a command in your tree}" >&2 ;;
		esac
	fi
	;;
esac
unset _chos_bin _chos_out
