#!/usr/bin/env bash
# make bench (private channels, issue 14): throughput of BENCH_CONNECT_MIB (default 1024 MiB)
# through one channel, `relay connect` -> relay serve -> `relay host --connect` -> a sink, over ws
# and wss, against the same bytes straight into the sink over loopback TCP; and the round-trip
# time of 1-byte messages through a channel (to an echo server, through `relay connect
# --listen`), p50/p99 of BENCH_CONNECT_ROUNDS (default 5000), against loopback TCP. Each figure
# is the median of BENCH_REPEAT runs (default 3). Figures, not pass/fail; JSON lines go to
# build/bench/connect.jsonl. BENCH_CONNECT_MIB=0 measures only the round trips.
# usage: bench/connect.sh RELAY_BINARY
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init "$1"
bench_cert
mib=${BENCH_CONNECT_MIB:-1024}
rounds=${BENCH_CONNECT_ROUNDS:-5000}
results="$out/connect.jsonl"
: >"$results"
pids=()
# every process at once (a relay stops faster when its hosts go too), then wait for them
trap '[ ${#pids[@]} -gt 0 ] && { kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; }; rm -rf "$work"' EXIT

# A sink (reads everything; ends its side at the end of input) and an echo server.
node -e '
const net = require("net");
const sink = net.createServer(c => { c.on("data", () => {}); c.on("end", () => c.end()); });
const echo = net.createServer(c => c.pipe(c));
sink.listen(0, "127.0.0.1", () => echo.listen(0, "127.0.0.1", () =>
	console.log(sink.address().port + " " + echo.address().port)));' >"$work/ports" &
pids+=($!)
wait_for "$work/ports" '^[0-9]+ [0-9]+$'
read -r sink_port echo_port <"$work/ports"

start_relay() { # NAME TLS(yes|no): sets aud_NAME
	local name=$1 args=()
	if [ "$2" = yes ]; then
		args=(--audience https://127.0.0.1:0 --cert "$work/cert.pem" --key "$work/key.pem")
	else
		args=(--audience http://127.0.0.1:0 --insecure-http)
	fi
	"$relay" serve --listen 127.0.0.1:0 --secret-file "$work/secret" --state-dir "$work/state-$name" \
		--access-rate 0 --log-level notice "${args[@]}" 2>"$work/relay-$name.log" &
	pids+=($!)
	wait_for "$work/relay-$name.log" "relay listening"
	eval "aud_$name=$(sed -n 's|.*relay listening on \(https\?://127\.0\.0\.1:[0-9]*\) .*|\1|p' "$work/relay-$name.log")"
}

token() { # AUD HOSTID SCOPE
	"$relay" token --secret-file "$work/secret" --audience "$1" --topic "$2" --connection-type connect \
		--scopes "$3" --lifetime 1h
}

start_host() { # AUD HOSTID TARGETPORT
	token "$1" "$2" host >"$work/$2-$3.host.tok"
	"$relay" host --connect "tcp:127.0.0.1:$3" --session "$1/connect/$2" --token-file "$work/$2-$3.host.tok" \
		--insecure --log-level notice 2>"$work/host-$2-$3.log" &
	pids+=($!)
	wait_for "$work/host-$2-$3.log" "relay link up"
}

now_ns() { date +%s%N; }

# throughput NAME CMD...: seconds for the 1 GiB through CMD (stdin), as JSON.
throughput() {
	local name=$1 t0 t1
	shift
	for i in $(seq "$repeat"); do
		t0=$(now_ns)
		head -c $((mib << 20)) /dev/zero | "$@"
		t1=$(now_ns)
		echo "{\"scenario\":\"throughput\",\"path\":\"$name\",\"run\":$i,\"mib\":$mib,\"seconds\":$(awk "BEGIN{print ($t1-$t0)/1e9}")}" >>"$results"
	done
	echo "bench: throughput $name done" >&2
}

direct() { cat >"/dev/tcp/127.0.0.1/$sink_port"; }

# rtt NAME PORT: 1-byte round trips to an echo at PORT, as JSON.
rtt() {
	for i in $(seq "$repeat"); do
		node -e '
const net = require("net"), [port, rounds, name, run] = process.argv.slice(1);
const c = net.connect(+port, "127.0.0.1"), t = [];
c.setNoDelay(true);
let n = 0, t0;
const one = () => { t0 = process.hrtime.bigint(); c.write("x"); };
c.on("connect", one);
c.on("data", d => {
	for (let k = 0; k < d.length; k++) {
		t.push(Number(process.hrtime.bigint() - t0) / 1000);
		if (++n === +rounds) {
			t.sort((a, b) => a - b);
			const q = p => t[Math.min(t.length - 1, Math.floor(p * t.length))];
			console.log(JSON.stringify({scenario: "rtt", path: name, run: +run, rounds: +rounds, p50_us: q(0.5), p99_us: q(0.99)}));
			c.destroy();
			return;
		}
		one();
	}
});' "$2" "$rounds" "$1" "$i" >>"$results"
	done
	echo "bench: rtt $1 done" >&2
}

start_relay p no
start_relay s yes
start_host "$aud_p" sink "$sink_port"
start_host "$aud_s" sink "$sink_port"
start_host "$aud_p" echo "$echo_port"
start_host "$aud_s" echo "$echo_port"
token "$aud_p" sink client >"$work/sink-p.tok"
token "$aud_s" sink client >"$work/sink-s.tok"
token "$aud_p" echo client >"$work/echo-p.tok"
token "$aud_s" echo client >"$work/echo-s.tok"

if [ "$mib" -gt 0 ]; then
	throughput "loopback TCP" direct
	throughput "channel ws" "$relay" connect --session "$aud_p/connect/sink" --token-file "$work/sink-p.tok" >/dev/null
	throughput "channel wss" "$relay" connect --session "$aud_s/connect/sink" --token-file "$work/sink-s.tok" \
		--insecure >/dev/null
fi

for tls in p s; do
	aud=aud_$tls
	"$relay" connect --listen 127.0.0.1:0 --session "${!aud}/connect/echo" --token-file "$work/echo-$tls.tok" \
		--insecure --log-level notice 2>"$work/listen-$tls.log" &
	pids+=($!)
	wait_for "$work/listen-$tls.log" "listening on 127.0.0.1 port [0-9]+"
	eval "lport_$tls=$(sed -n 's/.*listening on 127\.0\.0\.1 port \([0-9]*\).*/\1/p' "$work/listen-$tls.log")"
done
rtt "loopback TCP" "$echo_port"
rtt "channel ws" "$lport_p"
rtt "channel wss" "$lport_s"

node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = a => { a = a.slice().sort((x, y) => x - y); return a[Math.floor(a.length / 2)]; };
const group = (sc) => { const g = {}; for (const l of lines.filter(l => l.scenario === sc)) (g[l.path] = g[l.path] || []).push(l); return g; };
const tp = group("throughput"), base = tp["loopback TCP"] && med(tp["loopback TCP"].map(l => l.seconds));
if (base) console.log("| path | " + lines[0].mib + " MiB, s (median) | MiB/s | of loopback TCP |");
if (base) console.log("|---|---|---|---|");
if (base) for (const [p, ls] of Object.entries(tp)) { const s = med(ls.map(l => l.seconds)); console.log(`| ${p} | ${s.toFixed(2)} | ${(ls[0].mib / s).toFixed(0)} | ${(100 * base / s).toFixed(0)} % |`); }
console.log("\n| path | 1-byte round trip p50 (us) | p99 (us) |");
console.log("|---|---|---|");
for (const [p, ls] of Object.entries(group("rtt"))) console.log(`| ${p} | ${med(ls.map(l => l.p50_us)).toFixed(0)} | ${med(ls.map(l => l.p99_us)).toFixed(0)} |`);
' "$results"
