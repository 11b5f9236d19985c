#!/usr/bin/env bash
# bench/turn.sh: relay's built-in TURN server beside Debian's coturn, same REST secret (relay token
# turn --print-secret), same client: coturn's turnutils_uclient against turnutils_peer, all on
# 127.0.0.1. For each server and transport (UDP, TCP) a fresh server per run, BENCH_REPEAT runs
# (default 3), medians: messages/s (echoed messages received / wall time of the client), loss,
# server CPU seconds and peak RSS; allocations per second (bench/turn-alloc.js: TURN_BENCH_ALLOCS
# Allocates with credentials on UDP, 32 at a time, each from its own port). Then the websocket side: a paced 1,000 msg/s 1 KiB
# reader's p99 (relay file bench) quiet, and while turnutils_uclient loads the same relay's TURN,
# with the CPU time of relay serve's main (websocket) thread during the reader's run and its mean
# wait for a core each time it became runnable (schedstat): the relay's side of the tail.
# A third websocket run puts the same load on a coturn beside the relay, for what the load
# costs the machine alone. Figures, not pass/fail. Raw JSON lines: build/bench/turn.jsonl.
# usage: bench/turn.sh RELAY_BINARY [relay|coturn]   (only that server; default both)
# TURN_BENCH_MSGS (10000), TURN_BENCH_CLIENTS (10), TURN_BENCH_LEN (1000), TURN_BENCH_INTERVAL
# (uclient -z, ms between a session's messages; default 0: as fast as the client goes).
# TURN_BENCH_PARTS (default "udp tcp alloc ws capped rss"): which measurements, for A/B runs.
# capped: the server held to TURN_BENCH_CAP percent of one core (default 20; a cgroup's CPU quota,
# v1 or v2: needs root, skipped otherwise) while TURN_BENCH_CAP_CLIENTS (4) turnutils_uclient
# processes (-n 3000 -m 10 each) load it at once: on one machine the client, not the server,
# limits messages/s (it takes more CPU per message than either server), so this is the run in
# which the server is the bottleneck. rss: the idle RSS of each server (smaps_rollup, after its
# first STUN answer) and of bench/rss-floor.c, a program that only links and initialises the
# libraries relay serve is built on.
# TURN_BENCH_QUOTAS (off): "default" keeps relay's --turn-packet-rate and --turn-bandwidth.
# TURN_BENCH_LOAD_NICE (default 0): turnutils_peer and the websocket runs' load client run at
# this nice level, to tell relay's loop from the load's competition for the same cores.
# TURN_BENCH_LOAD_SCHED=idle: the same load at SCHED_IDLE instead (chrt --idle), nearest to
# clients on other machines; TURN_BENCH_TURN_SCHED=idle: relay's TURN thread at SCHED_IDLE.
# TURN_BENCH_LOAD_CPUS (default: none): confine turnutils_peer and the websocket runs' load
# client to these CPUs (taskset -c LIST), standing in for clients on other machines; the
# servers and the websocket reader stay free to run anywhere unless
# TURN_BENCH_SERVER_CPUS / TURN_BENCH_READER_CPUS confine them too (e.g. SERVER 0, LOAD and
# READER 1 with TURN_BENCH_LOAD_NICE=19: the relay alone on one core, as on a host of its own,
# its clients on the other, the reader ahead of the load as a client on another machine would be).
set -euo pipefail

relay=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
only=${2:-}
repeat=${BENCH_REPEAT:-3}
msgs=${TURN_BENCH_MSGS:-10000}
clients=${TURN_BENCH_CLIENTS:-10}
len=${TURN_BENCH_LEN:-1000}
interval=${TURN_BENCH_INTERVAL:-0}
allocs=${TURN_BENCH_ALLOCS:-1000}
secs=${BENCH_SECONDS:-3}
parts=" ${TURN_BENCH_PARTS:-udp tcp alloc ws capped rss} "
cap=${TURN_BENCH_CAP:-20}
cap_clients=${TURN_BENCH_CAP_CLIENTS:-4}
out=build/bench
mkdir -p "$out"
results="$out/turn.jsonl"
: >"$results"
work=$(mktemp -d)
# PIDs we started, killed one by one on exit (never 0: `kill 0` would signal the process group)
pids=()
cgroup= # the CPU-quota cgroup of the capped runs, removed on exit
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	[ -n "$cgroup" ] && rmdir "$cgroup" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

for tool in turnserver turnutils_uclient turnutils_peer turnutils_stunclient; do
	command -v "$tool" >/dev/null || {
		echo "bench/turn.sh: $tool not found (Debian package coturn: sudo scripts/deps.sh)" >&2
		exit 1
	}
done

openssl rand -hex 32 >"$work/secret"
rest=$("$relay" token turn --secret-file "$work/secret" --print-secret)
tck=$(getconf CLK_TCK)

free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# cpu_ticks PID: user + system clock ticks so far.
cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

# main_ticks PID: the same for the process's main thread only (relay serve's websocket loop;
# its TURN thread, "relay-turn", is another task).
main_ticks() {
	awk '{print $14 + $15}' "/proc/$1/task/$1/stat"
}

# main_sched PID: "WAIT_NS SLICES" of the process's main thread so far (schedstat: time spent
# runnable but waiting for a core, and how many times it got one).
main_sched() {
	awk '{print $2, $3}' "/proc/$1/task/$1/schedstat"
}

# cpu_s TICKS0 TICKS1: the seconds between them.
cpu_s() {
	awk -v a="$1" -v b="$2" -v t="$tck" 'BEGIN {printf "%.2f", (b - a) / t}'
}

# peak_rss_kb PID: VmHWM.
peak_rss_kb() {
	awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}

# rss_split PID: '"rss_anon_kb":A,"rss_file_kb":F', the resident set now, split into the memory
# the process allocated (RssAnon) and the pages of files it maps, mostly its shared libraries'
# code, shared with every other process mapping them (RssFile + RssShmem).
rss_split() {
	awk '/^RssAnon:/ {a = $2} /^RssFile:/ {f += $2} /^RssShmem:/ {f += $2}
		END {printf "\"rss_anon_kb\":%d,\"rss_file_kb\":%d", a, f}' "/proc/$1/status"
}

# A relay port range of its own for each server start: turnutils_uclient leaves its allocations
# alive when it exits, and another run's may still hold ports.
next_range() {
	range_lo=$((20000 + RANDOM % 20000))
	range_hi=$((range_lo + 2000))
}

# wait_stun PORT: until a Binding request to 127.0.0.1:PORT is answered (10 s at most).
wait_stun() {
	for _ in $(seq 50); do
		timeout 1 turnutils_stunclient -p "$1" 127.0.0.1 2>/dev/null | grep -q "reflexive addr" && return 0
		sleep 0.2
	done
	echo "bench/turn.sh: no STUN answer on 127.0.0.1:$1" >&2
	return 1
}

# start_server relay|coturn: sets spid, tport (TURN) and, for relay, hport (HTTP).
start_server() {
	tport=$(free_port)
	next_range
	if [ "$1" = relay ]; then
		hport=$(free_port)
		"${server_cpus[@]}" "$relay" serve --listen "127.0.0.1:$hport" --audience "http://127.0.0.1:$hport" --insecure-http \
			--secret-file "$work/secret" --state-dir "$work/state" --access-rate 0 --log-level notice \
			--turn-listen "127.0.0.1:$tport" --turn-allow-peer 127.0.0.1/32 \
			--turn-relay-ports "$range_lo-$range_hi" "${quotas[@]}" \
			--turn-max-allocations-per-user 100000 --turn-max-allocations 100000 2>"$work/server.log" &
	else
		"${server_cpus[@]}" turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$tport" \
			--min-port="$range_lo" --max-port="$range_hi" --no-tls --no-dtls --no-cli \
			--use-auth-secret --static-auth-secret="$rest" --realm=bench --allow-loopback-peers \
			--pidfile="$work/coturn.pid" --db="$work/coturn.db" --log-file=stdout \
			--no-stdout-log >"$work/server.log" 2>&1 &
	fi
	spid=$!
	pids+=("$spid")
	wait_stun "$tport" || {
		cat "$work/server.log" >&2
		exit 1
	}
	if [ "$1" = relay ] && [ "${TURN_BENCH_TURN_SCHED:-}" = idle ]; then
		turn_idle "$spid"
	fi
}

# turn_idle PID: relay's TURN thread ("relay-turn") to SCHED_IDLE (TURN_BENCH_TURN_SCHED=idle).
turn_idle() {
	local t
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm")" = relay-turn ] && chrt --idle -p 0 "${t##*/}" >/dev/null && return 0
	done
	echo "bench/turn.sh: no relay-turn thread in $1" >&2
	return 1
}

stop_server() {
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
}

peer_port=$(free_port)
# Put before a load command to confine it to TURN_BENCH_LOAD_CPUS. A prefix, not a function: a
# function run with & is a subshell whose PID ($!) is not the command's, and killing it would
# leave the command running; taskset, nice and timeout exec what they run, so $! is the chain's.
load_cpus=()
[ -n "${TURN_BENCH_LOAD_CPUS:-}" ] && load_cpus=(taskset -c "$TURN_BENCH_LOAD_CPUS")
# TURN_BENCH_QUOTAS=default: relay keeps its default --turn-packet-rate and --turn-bandwidth
# (else both are off, as coturn has no such limits by default)
quotas=(--turn-packet-rate 0 --turn-bandwidth 0)
[ "${TURN_BENCH_QUOTAS:-off}" = default ] && quotas=()
server_cpus=()
[ -n "${TURN_BENCH_SERVER_CPUS:-}" ] && server_cpus=(taskset -c "$TURN_BENCH_SERVER_CPUS")
reader_cpus=()
[ -n "${TURN_BENCH_READER_CPUS:-}" ] && reader_cpus=(taskset -c "$TURN_BENCH_READER_CPUS")
# The load's priority: TURN_BENCH_LOAD_NICE, or with TURN_BENCH_LOAD_SCHED=idle SCHED_IDLE (the
# load runs only on cycles nothing else wants, nearest to clients on other machines).
load_prio=(nice -n "${TURN_BENCH_LOAD_NICE:-0}")
[ "${TURN_BENCH_LOAD_SCHED:-}" = idle ] && load_prio=(chrt --idle 0)

"${load_cpus[@]}" "${load_prio[@]}" turnutils_peer -L 127.0.0.1 -p "$peer_port" >/dev/null 2>&1 &
pids+=($!)

# uclient ARGS...: turnutils_uclient against the running server with a fresh credential; its
# output in $work/uclient.out, its wall time in seconds in $wall.
uclient() {
	local user pass t0 t1
	{
		read -r user
		read -r pass
	} < <("$relay" token turn --secret-file "$work/secret" --user bench --lifetime 1h)
	t0=$(date +%s.%N)
	timeout 300 turnutils_uclient -p "$tport" -e 127.0.0.1 -r "$peer_port" -u "$user" -w "$pass" -c \
		"$@" 127.0.0.1 >"$work/uclient.out" 2>&1 || true
	t1=$(date +%s.%N)
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
}

# field NAME: the last "NAME=N" or "NAME N" figure uclient printed.
field() {
	grep -oE "$1[ =][0-9.]+" "$work/uclient.out" | tail -n 1 | grep -oE '[0-9.]+$' || echo 0
}

throughput() { # SERVER udp|tcp RUN
	local c0 c1 flag=()
	[ "$2" = tcp ] && flag=(-t)
	start_server "$1"
	c0=$(cpu_ticks "$spid")
	uclient "${flag[@]}" -n "$msgs" -m "$clients" -l "$len" -z "$interval"
	c1=$(cpu_ticks "$spid")
	printf '{"kind":"throughput","server":"%s","transport":"%s","run":%d,"attempted":%d,"sent":%s,"received":%s,"lost_pct":%s,"send_dropped_pct":%s,"wall_s":%.3f,"cpu_s":%.2f,"peak_rss_kb":%s,%s}\n' \
		"$1" "$2" "$3" $((msgs * clients)) "$(field tot_send_msgs)" "$(field tot_recv_msgs)" \
		"$(grep -oE 'Total lost packets [0-9]+ \([0-9.]+' "$work/uclient.out" | grep -oE '[0-9.]+$' || echo null)" \
		"$(grep -oE 'total send dropped [0-9]+ \([0-9.]+' "$work/uclient.out" | grep -oE '[0-9.]+$' || echo null)" \
		"$wall" "$(cpu_s "$c0" "$c1")" "$(peak_rss_kb "$spid")" "$(rss_split "$spid")" >>"$results"
	stop_server
}

allocations() { # SERVER RUN
	local user pass c0 c1
	start_server "$1"
	{
		read -r user
		read -r pass
	} < <("$relay" token turn --secret-file "$work/secret" --user bench --lifetime 1h)
	c0=$(cpu_ticks "$spid")
	node "$(dirname "$0")/turn-alloc.js" 127.0.0.1 "$tport" "$user" "$pass" "$allocs" 32 |
		sed "s#^{#{\"kind\":\"allocations\",\"server\":\"$1\",\"run\":$2,\"cpu_s\":CPU,\"peak_rss_kb\":RSS,#" >"$work/alloc.json"
	c1=$(cpu_ticks "$spid")
	sed "s#CPU#$(printf '%.2f' "$(cpu_s "$c0" "$c1")")#; s#RSS#$(peak_rss_kb "$spid")#" "$work/alloc.json" >>"$results"
	stop_server
}

# wait_load: until the load client reports messages sent (it sets its sessions up first, about
# 9 a second, and sends nothing for the first 2-3 s; 30 s at most), so that the reader's whole
# run is under load.
wait_load() {
	for _ in $(seq 150); do
		grep -qE 'tot_send_msgs=[1-9]' "$work/load.out" 2>/dev/null && return 0
		sleep 0.2
	done
	echo "bench/turn.sh: the load client sent nothing in 30 s:" >&2
	cat "$work/load.out" >&2
	return 1
}

# The websocket side: relay file bench's paced reader, quiet and under TURN load (relay only).
# quiet: relay with TURN on, idle. loaded: turnutils_uclient (UDP) loads that relay's TURN.
# control: the same load on a coturn beside it, for what the load costs the machine (2 shared
# cores) without touching relay's loop.
ws_p99() { # quiet|loaded|control RUN
	local load='' user pass rpid rhport cpid='' m0 m1 w0 n0 w1 n1
	start_server relay
	rpid=$spid
	rhport=$hport
	if [ "$1" = control ]; then
		start_server coturn
		cpid=$spid
	fi
	if [ "$1" != quiet ]; then
		{
			read -r user
			read -r pass
		} < <("$relay" token turn --secret-file "$work/secret" --user load --lifetime 1h)
		# enough messages to outlast the paced run; ended when it ends (timeout passes the
		# TERM on to turnutils_uclient)
		"${load_cpus[@]}" "${load_prio[@]}" timeout 300 turnutils_uclient -p "$tport" -e 127.0.0.1 \
			-r "$peer_port" -u "$user" -w "$pass" -c -n 1000000 -m "$clients" -l "$len" -z "$interval" 127.0.0.1 >"$work/load.out" 2>&1 &
		load=$!
		pids+=("$load")
		wait_load || exit 1
	fi
	m0=$(main_ticks "$rpid")
	read -r w0 n0 < <(main_sched "$rpid")
	"${reader_cpus[@]}" "$relay" file bench --session "http://127.0.0.1:$rhport/session/bench" --secret-file "$work/secret" \
		--json --duration "${secs}s" --server-pid "$rpid" --readers 1 --size 1024 --rate 1000 2>/dev/null |
		sed "s#^{#{\"kind\":\"ws\",\"load\":\"$1\",\"run\":$2,\"main_cpu_s\":MAINCPU,\"main_wait_us\":MAINWAIT,#" >"$work/ws.json"
	m1=$(main_ticks "$rpid")
	read -r w1 n1 < <(main_sched "$rpid")
	# the websocket thread's mean wait for a core each time it became runnable, in µs
	sed "s#MAINCPU#$(cpu_s "$m0" "$m1")#; s#MAINWAIT#$(awk -v w=$((w1 - w0)) -v n=$((n1 - n0)) 'BEGIN {printf "%.1f", n ? w / n / 1000 : 0}')#" \
		"$work/ws.json" >>"$results"
	if [ -n "$load" ]; then
		kill "$load" 2>/dev/null || true
		wait "$load" 2>/dev/null || true
	fi
	if [ -n "$cpid" ]; then
		stop_server
	fi
	spid=$rpid
	stop_server
}

# cap_cgroup PCT: a cgroup holding its tasks to PCT % of one core in $cgroup (v2 cpu.max, else
# v1 cpu.cfs_quota_us); fails (nothing made) where cgroups are not writable.
cap_cgroup() {
	local v1=/sys/fs/cgroup/cpu
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		cgroup=/sys/fs/cgroup/relay-bench-$$
		mkdir "$cgroup" 2>/dev/null && echo "$(($1 * 1000)) 100000" >"$cgroup/cpu.max" 2>/dev/null
	elif [ -d "$v1" ]; then
		cgroup=$v1/relay-bench-$$
		mkdir "$cgroup" 2>/dev/null && echo 100000 >"$cgroup/cpu.cfs_period_us" &&
			echo "$(($1 * 1000))" >"$cgroup/cpu.cfs_quota_us" 2>/dev/null
	else
		false
	fi || {
		[ -n "$cgroup" ] && rmdir "$cgroup" 2>/dev/null
		cgroup=
		return 1
	}
}

# The server held to $cap % of a core, $cap_clients uclients at once (see the header).
capped() { # SERVER RUN
	local c0 c1 t0 t1 k user pass sent=0 recv=0 n cl=()
	start_server "$1"
	echo "$spid" >"$cgroup/cgroup.procs"
	c0=$(cpu_ticks "$spid")
	t0=$(date +%s.%N)
	for k in $(seq "$cap_clients"); do
		{
			read -r user
			read -r pass
		} < <("$relay" token turn --secret-file "$work/secret" --user "cap$k" --lifetime 1h)
		timeout 300 turnutils_uclient -p "$tport" -e 127.0.0.1 -r "$peer_port" -u "$user" -w "$pass" -c \
			-n 3000 -m 10 -l "$len" -z 0 127.0.0.1 >"$work/cap$k.out" 2>&1 &
		cl+=($!)
		pids+=($!)
	done
	for k in "${cl[@]}"; do wait "$k" || true; done
	t1=$(date +%s.%N)
	c1=$(cpu_ticks "$spid")
	for k in $(seq "$cap_clients"); do
		n=$(grep -oE 'tot_send_msgs[ =][0-9]+' "$work/cap$k.out" | tail -n 1 | grep -oE '[0-9]+$' || echo 0)
		sent=$((sent + n))
		n=$(grep -oE 'tot_recv_msgs[ =][0-9]+' "$work/cap$k.out" | tail -n 1 | grep -oE '[0-9]+$' || echo 0)
		recv=$((recv + n))
	done
	printf '{"kind":"capped","server":"%s","run":%d,"cap_pct":%d,"clients":%d,"attempted":%d,"sent":%d,"received":%d,"wall_s":%s,"cpu_s":%.2f,"peak_rss_kb":%s}\n' \
		"$1" "$2" "$cap" "$cap_clients" $((cap_clients * 30000)) "$sent" "$recv" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" "$(cpu_s "$c0" "$c1")" \
		"$(peak_rss_kb "$spid")" >>"$results"
	stop_server
}

# rss_kb PID: Rss now (smaps_rollup).
rss_kb() {
	awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup"
}

# Idle RSS of SERVER after its first STUN answer; "floor": bench/rss-floor.c, built here.
idle_rss() { # relay|coturn|floor RUN
	local kb
	if [ "$1" = floor ]; then
		"$work/rss-floor" --hold >"$work/floor.out" &
		spid=$!
		pids+=("$spid")
		for _ in $(seq 200); do
			grep -q '^lws ' "$work/floor.out" 2>/dev/null && break
			sleep 0.05
		done
	else
		start_server "$1"
	fi
	kb=$(rss_kb "$spid")
	printf '{"kind":"rss","server":"%s","run":%d,"rss_kb":%s,%s,"mapped_objects":%s}\n' "$1" "$2" "$kb" \
		"$(rss_split "$spid")" "$(awk '$6 ~ /\.so/ {print $6}' "/proc/$spid/maps" | sort -u | wc -l)" >>"$results"
	stop_server
}

servers=(relay coturn)
[ -n "$only" ] && servers=("$only")
if [[ $parts == *" capped "* ]] && ! cap_cgroup "$cap"; then
	echo "bench/turn.sh: no writable cgroup for a CPU quota (root needed): capped runs skipped" >&2
	parts=${parts/ capped / }
fi
if [[ $parts == *" rss "* ]]; then
	# shellcheck disable=SC2046 # pkg-config's words
	cc -O2 -std=gnu11 -o "$work/rss-floor" "$(dirname "$0")/rss-floor.c" \
		$(pkg-config --cflags --libs libwebsockets libjwt jansson openssl sqlite3 libuv hiredis)
fi
for i in $(seq "$repeat"); do
	for s in "${servers[@]}"; do
		for t in udp tcp; do
			if [[ $parts == *" $t "* ]]; then throughput "$s" "$t" "$i"; fi
		done
		if [[ $parts == *" alloc "* ]]; then allocations "$s" "$i"; fi
		if [[ $parts == *" capped "* ]]; then capped "$s" "$i"; fi
		if [[ $parts == *" rss "* ]]; then idle_rss "$s" "$i"; fi
	done
	if [[ $parts == *" rss "* ]]; then idle_rss floor "$i"; fi
	echo "bench/turn.sh: run $i done" >&2
done
if [[ $parts == *" ws "* ]] && { [ -z "$only" ] || [ "$only" = relay ]; }; then
	for i in $(seq "$repeat"); do
		ws_p99 quiet "$i"
		ws_p99 loaded "$i"
		ws_p99 control "$i"
	done
fi

node - "$results" "$msgs" "$clients" "$len" "$interval" <<'EOF'
const fs = require('fs');
const [file, msgs, clients, len, interval] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x, d = 0) => (x === undefined ? '—' : Number(x).toFixed(d));
console.log(`TURN: turnutils_uclient -n ${msgs} -m ${clients} -l ${len} -z ${interval} -c (medians)\n`);
if (rows.some((r) => r.kind === 'throughput')) {
console.log('| server | transport | runs | msgs/s | delivered % | loss % | send dropped % | server CPU s | peak RSS MiB | after: anon / file kB |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
}
for (const server of ['relay', 'coturn']) {
  for (const transport of ['udp', 'tcp']) {
    const rs = rows.filter((r) => r.kind === 'throughput' && r.server === server && r.transport === transport);
    if (!rs.length) continue;
    const m = (f) => median(rs.map(f));
    console.log(`| ${server} | ${transport} | ${rs.length} | ${fmt(m((r) => r.received / r.wall_s))} | ` +
      `${fmt(m((r) => (100 * r.received) / r.attempted), 1)} | ${fmt(m((r) => r.lost_pct), 2)} | ${fmt(m((r) => r.send_dropped_pct), 2)} | ` +
      `${fmt(m((r) => r.cpu_s), 2)} | ${fmt(m((r) => r.peak_rss_kb / 1024), 1)} | ` +
      `${fmt(m((r) => r.rss_anon_kb))} / ${fmt(m((r) => r.rss_file_kb))} |`);
  }
}
if (rows.some((r) => r.kind === 'allocations')) {
  console.log('\n| server | runs | Allocates | allocated | allocations/s | server CPU s | peak RSS MiB |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
}
for (const server of ['relay', 'coturn']) {
  const rs = rows.filter((r) => r.kind === 'allocations' && r.server === server);
  if (!rs.length) continue;
  const m = (f) => median(rs.map(f));
  console.log(`| ${server} | ${rs.length} | ${rs[0].allocations} | ${fmt(m((r) => r.ok))} | ${fmt(m((r) => r.per_s))} | ` +
    `${fmt(m((r) => r.cpu_s), 2)} | ${fmt(m((r) => r.peak_rss_kb / 1024), 1)} |`);
}
const capped = rows.filter((r) => r.kind === 'capped');
if (capped.length) {
  const c = capped[0];
  console.log(`\nServer held to ${c.cap_pct} % of one core, ${c.clients} turnutils_uclient at once ` +
    '(-n 3000 -m 10 each, UDP, channels):\n');
  console.log('| server | runs | msgs/s | delivered % | server CPU s | peak RSS MiB |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const server of ['relay', 'coturn']) {
    const rs = capped.filter((r) => r.server === server);
    if (!rs.length) continue;
    const m = (f) => median(rs.map(f));
    console.log(`| ${server} | ${rs.length} | ${fmt(m((r) => r.received / r.wall_s))} | ` +
      `${fmt(m((r) => (100 * r.received) / r.attempted), 1)} | ${fmt(m((r) => r.cpu_s), 2)} | ` +
      `${fmt(m((r) => r.peak_rss_kb / 1024), 1)} |`);
  }
}
const rss = rows.filter((r) => r.kind === 'rss');
if (rss.length) {
  console.log('\n| idle | runs | RSS kB | of it anon / file kB | shared objects mapped |');
  console.log('| --- | --- | --- | --- | --- |');
  const names = { relay: 'relay serve, TURN on', coturn: 'coturn',
    floor: "bench/rss-floor.c (relay serve's libraries, initialised, nothing else)" };
  for (const server of ['relay', 'coturn', 'floor']) {
    const rs = rss.filter((r) => r.server === server);
    if (!rs.length) continue;
    console.log(`| ${names[server]} | ${rs.length} | ${fmt(median(rs.map((r) => r.rss_kb)))} | ` +
      `${fmt(median(rs.map((r) => r.rss_anon_kb)))} / ${fmt(median(rs.map((r) => r.rss_file_kb)))} | ` +
      `${fmt(median(rs.map((r) => r.mapped_objects)))} |`);
  }
}
const ws = rows.filter((r) => r.kind === 'ws');
if (ws.length) {
  console.log('\n| websocket paced 1000/s 1->1 1KiB | runs | p50 µs | p99 µs | max µs | server CPU s | its main thread CPU s | main thread mean wait for a core µs |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  const names = { quiet: 'quiet (TURN on, idle)', loaded: 'its TURN under uclient UDP load',
    control: 'the same load on a coturn beside it' };
  for (const load of ['quiet', 'loaded', 'control']) {
    const rs = ws.filter((r) => r.load === load);
    const m = (f) => median(rs.map(f));
    console.log(`| ${names[load]} | ${rs.length} | ${fmt(m((r) => r.p50_us))} | ` +
      `${fmt(m((r) => r.p99_us))} | ${fmt(m((r) => r.max_us))} | ${fmt(m((r) => r.server_cpu_s), 2)} | ` +
      `${fmt(m((r) => r.main_cpu_s), 2)} | ${fmt(m((r) => r.main_wait_us), 1)} |`);
  }
}
EOF
