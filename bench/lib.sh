# bench/lib.sh: functions shared by bench/run and bench/mounts (sourced, not run).
#
# Expects in the environment (bench/run exports them):
#   BENCH_DIR BENCH_USER BENCH_GROUP BENCH_HOME OUT RESULTS
#   WARMUP WARMUP_LATER MIN_RUNS MAX_RUNS ROUNDS RSS_RUNS

step() { printf '\n===== %s =====\n' "$*"; }
note() { printf '  %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "${prog:-bench}" "$*" >&2; }
loud() {
	printf '\n' >&2
	printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
	printf '!!! %s\n' "$@" >&2
	printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
}
die() { printf '%s: %s\n' "${prog:-bench}" "$*" >&2; exit 1; }
run() {
	printf '+'
	printf ' %q' "$@"
	printf '\n'
	"$@"
}

# as_root CMD... / as_user CMD...: run CMD from / with a small, clean
# environment, as root or as the benchmark user (real and effective ids, its
# own groups). BENCH_ENV, if set, is one more KEY=VALUE for it (bench/slurm:
# SLURM_CONF).
ROOT_ENV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	HOME=/root USER=root LOGNAME=root LANG=C.UTF-8)
as_root() {
	(cd / && exec env -i "${ROOT_ENV[@]}" ${BENCH_ENV:+"$BENCH_ENV"} "$@")
}
as_user() {
	(cd / && exec setpriv --reuid="$BENCH_USER" --regid="$BENCH_GROUP" --init-groups \
		env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$BENCH_HOME" USER="$BENCH_USER" \
		LOGNAME="$BENCH_USER" LANG=C.UTF-8 ${BENCH_ENV:+"$BENCH_ENV"} "$@")
}
# as IDENT CMD...: IDENT is root or user
as() {
	local ident=$1
	shift
	case $ident in
	root) as_root "$@" ;;
	user) as_user "$@" ;;
	*) die "unknown identity $ident" ;;
	esac
}

# record FIELDS...: one line of results.tsv (tab-separated):
#   section  param  launcher  ident  status  value  rss_kib  note
# section: t1 (launch), t2 (host mounts), t3 (PAR_N launches PAR_P at a
#          time), t3s (SCALE_N launches SCALE_P at a time; param: the extra
#          host mounts), binds, trees, slurm,
#          t5 (image trees: param is the row's label, note its command)
# status:  ok, n/a or failed; value: hyperfine JSON files (in $OUT, one per
#          round, comma-separated), or for t3 and t3s comma-separated
#          wall:user:system seconds of each batch
record() {
	local IFS=$'\t'
	local line="$*"
	line=${line//$'\n'/ }
	printf '%s\n' "$line" >>"$RESULTS"
}

# hyperfine_json IDENT NAME CMDSTRING [ROUND]: measure CMDSTRING (split on
# blanks, no shell) with hyperfine as IDENT; the JSON goes to $OUT/NAME.json.
# A measurement is split in ROUNDS rounds, interleaved with the other
# launchers' by the caller, so that a burst of load from elsewhere does not
# land on one launcher only: each round makes 1/ROUNDS of the runs, and only
# the first warms up fully. Prints hyperfine's summary, indented. Returns
# hyperfine's status.
hyperfine_json() {
	local ident=$1 name=$2 cmd=$3 round=${4:-1}
	local json=$OUT/$name.json log=$OUT/$name.log wu=$WARMUP
	local min=$(((MIN_RUNS + ROUNDS - 1) / ROUNDS)) max=$(((MAX_RUNS + ROUNDS - 1) / ROUNDS))
	if ((round > 1)); then wu=$WARMUP_LATER; fi
	rm -f -- "$json"
	printf '  [%s] %s\n' "$ident" "$cmd"
	if as "$ident" hyperfine -N --style basic --warmup "$wu" \
		--min-runs "$min" --max-runs "$max" \
		--export-json "$json" -- "$cmd" >"$log" 2>&1; then
		grep -E 'Time \(mean' "$log" | sed 's/^ */      /'
		return 0
	fi
	sed 's/^/      | /' "$log" | tail -n 15 >&2
	return 1
}

# peak_rss IDENT CMDSTRING: the largest maximum resident set size (KiB, from
# GNU time's %M) over RSS_RUNS launches. Prints "-" if the command failed.
peak_rss() {
	local ident=$1 cmd=$2 max=0 i v f
	local -a argv
	read -r -a argv <<<"$cmd"
	f=$OUT/rss.$$
	for ((i = 0; i < RSS_RUNS; i++)); do
		rm -f -- "$f"
		if ! as "$ident" /usr/bin/time -f %M -o "$f" -- "${argv[@]}" >/dev/null 2>&1; then
			echo -
			return 0
		fi
		v=$(tail -n 1 "$f")
		[[ $v =~ ^[0-9]+$ ]] || { echo -; return 0; }
		if ((v > max)); then max=$v; fi
	done
	rm -f -- "$f"
	echo "$max"
}

# chos_cache_drop CHOS: drop every cached namespace of this chos (root).
# Tolerates an error when nothing is cached afterwards.
chos_cache_drop() {
	local chos=$1 err
	[[ ${HAVE_CACHE_DROP:-no} == yes ]] || return 0
	if ! err=$(as_root "$chos" cache drop 2>&1); then
		if as_root "$chos" cache list 2>/dev/null | grep '\.mnt' >/dev/null; then
			warn "chos cache drop failed: $err"
			return 1
		fi
		note "(chos cache drop complained with nothing cached: $err)"
	fi
	return 0
}

# bench_mounts MOUNTINFO: the mount points in MOUNTINFO that this benchmark
# makes (or that the chos under test makes for it) and must remove, deepest
# first: chos's cache and view directories, bench/mounts' directory, and
# schroot sessions of the benchmark's entry. $BENCH_DIR itself, or any other
# mount under it, is none of ours.
bench_mounts() {
	awk -v d="$BENCH_DIR" -v s="/${SCHROOT_NAME:-chos-bench}-" '
		function under(p, dir) { return p == dir || index(p, dir "/") == 1 }
		{ mp = $5; gsub(/\\040/, " ", mp) }
		under(mp, d "/cache") || under(mp, d "/mnt") || under(mp, d "/root") || under(mp, d "/squashfuse-mnt") ||
			(index(mp, "/schroot/") && index(mp, s)) { print length(mp) "\t" mp }
	' "$1" | sort -rn | cut -f2-
}

# par_batches SECTION PARAM LID N P CMDSTRING: N launches of CMDSTRING (split
# on blanks), P at a time, as the user (bench/par.py: xargs -P, wall time and
# the CPU time of the whole batch). A warm-up batch of P launches first (it
# also builds chos's cached view), then PAR_REPS batches, fewer once
# PAR_BUDGET seconds have gone (at least one). Records the batches as
# comma-separated wall:user:system seconds.
par_batches() {
	local sec=$1 param=$2 lid=$3 n=$4 p=$5 cmd=$6 t0 got r
	local err=$OUT/par-$sec-$param-$lid.err
	local -a argv vals=()
	read -r -a argv <<<"$cmd"
	printf '  [user] %d launches, %d at a time: %s\n' "$n" "$p" "$cmd"
	t0=$SECONDS
	if as_user python3 "$here/par.py" "$p" "$p" "${argv[@]}" >/dev/null 2>"$err"; then
		for ((r = 0; r < PAR_REPS; r++)); do
			if ((r > 0 && SECONDS - t0 > PAR_BUDGET)); then break; fi
			got=$(as_user python3 "$here/par.py" "$n" "$p" "${argv[@]}" 2>"$err") || { vals=(); break; }
			read -r w u s <<<"$got"
			vals+=("$w:$u:$s")
		done
	fi
	if ((${#vals[@]})); then
		note "    wall:user:system ${vals[*]} s"
		record "$sec" "$param" "$lid" user ok "$(IFS=,; echo "${vals[*]}")" - ""
	else
		record "$sec" "$param" "$lid" user failed - - "a launch failed: $(tail -n 1 "$err")"
		sed 's/^/      | /' "$err" | tail -n 5 >&2
	fi
}
