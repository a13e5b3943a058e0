# chos.csh: start interactive login shells in the user's selected OS tree, for
# sites that place logins neither with pam_chos(8) nor with sshd. Sourced by
# csh and tcsh login shells: from /etc/csh.login, via /etc/profile.d/*.csh
# (RHEL) or /etc/csh/login.d (Debian). The same rules as chos.sh:
# interactive login shells only, on the host only, never root, and a bad
# selection leaves the user on the host with a one-line warning.
set _chos_bin = /usr/local/bin/chos # make install writes its BINDIR here
if ( $?prompt && -x $_chos_bin ) then
	if ( `id -u` != 0 && "`$_chos_bin current < /dev/null |& cat`" == local ) then
		# CHOS=TREE as the tree that `chos shell` would use sees it, or chos's error.
		set _chos_out = "`$_chos_bin exec -- env < /dev/null |& grep -e '^CHOS=' -e '^chos: ' | tail -n 1`"
		if ( "$_chos_out" =~ CHOS=* ) then
			if ( "$_chos_out" != CHOS=local ) exec $_chos_bin shell
		else
			if ( "$_chos_out" == "" ) set _chos_out = "chos: cannot start a command in your tree"
			# (csh cannot redirect to stderr alone, and /dev/stderr, a terminal
			# su opened as root, cannot be reopened by the user)
			/bin/sh -c 'printf "%s\n" "$1" >&2' chos.csh "$_chos_out; staying on the host"
		endif
		unset _chos_out
	endif
endif
unset _chos_bin
