# zsh -f zsh-complete.zsh FPATHDIR DUMPFILE LINE: types LINE and a TAB into
# an interactive zsh (on a pseudo-terminal, zsh/zpty), with compinit reading
# completion functions from FPATHDIR first (and keeping its index in
# DUMPFILE, which makes later runs fast), and prints what the terminal
# showed: the completed line and the list of candidates.
zmodload zsh/zpty || exit 2
zpty z zsh -f -i
zpty -w z "PS1='<P>'; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -d ${(q)2}; setopt nobeep; print READY"
zpty -r z line '*READY*' || exit 3
zpty -r z line '*<P>*' || exit 3
zpty -w -n z "$3"$'\t'
# until the output has been quiet for half a second (at most 10 s)
out=
integer quiet i
for (( i = 0; i < 100 && quiet < 5; i++ )); do
	if zpty -r -t z line; then
		out+=$line
		quiet=0
	else
		[[ -n $out ]] && (( quiet++ ))
		sleep 0.1
	fi
done
zpty -d z
print -r -- $out
