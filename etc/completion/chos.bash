# bash completion for chos(1): commands, options, and the names of the trees
# you may use. chos itself computes the candidates (`chos __complete`).
# Installed as $(PREFIX)/share/bash-completion/completions/chos.

_chos() {
	local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n' out n
	out=$("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD-1}" "$cur" 2>/dev/null) || return 0
	case $out in
	"@command "*)
		# what `exec NAME` runs: a command line of its own
		n=${out#@command }
		if ((COMP_CWORD == n)); then
			COMPREPLY=($(compgen -c -- "$cur"))
		elif declare -F _command_offset >/dev/null; then
			_command_offset "$n" # from bash-completion
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		;;
	@file)
		COMPREPLY=($(compgen -f -- "$cur"))
		;;
	*)
		COMPREPLY=($(compgen -W "$out" -- "$cur"))
		;;
	esac
	return 0
}
complete -F _chos chos
