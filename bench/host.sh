#!/usr/bin/env bash
# Benchmark of relay host: CPU per video stream (640x480, 25 fps) and encode time per frame, with
# a reader on the topic through a local relay, for each codec in turn: mpeg1 (mpeg1video in
# MPEG-TS) and h264 (libx264 Annex-B). Figures, not pass/fail.
# usage: bench/host.sh RELAY_BINARY [SECONDS [CODEC...]]   (codecs: mpeg1 h264 by default)
set -euo pipefail
relay=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
secs=${2:-${BENCH_SECONDS:-10}}
shift $(($# < 2 ? $# : 2))
codecs=("$@")
[ ${#codecs[@]} -eq 0 ] && codecs=(mpeg1 h264)
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
openssl rand -hex 32 >"$work/secret"
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
base="http://127.0.0.1:$port"
"$relay" serve --listen "127.0.0.1:$port" --audience "$base" --insecure-http --secret-file "$work/secret" \
	--state-dir "$work/state" --log-level notice 2>"$work/relay.log" &
pids+=($!)
until grep -q "relay listening" "$work/relay.log"; do sleep 0.05; done

# One stream of @codec on its own topic for @secs seconds; prints one line of figures.
measure() {
	local codec=$1 reader host cpu0 cpu1 t0 t1 b0 b1 enc what
	case "$codec" in
	mpeg1) what="mpeg1video in MPEG-TS" ;;
	h264) what="H.264 (libx264 veryfast, zerolatency) Annex-B" ;;
	*) echo "bench/host.sh: unknown codec '$codec'" >&2 && return 1 ;;
	esac
	"$relay" file --session "$base/session/cam-$codec" --secret-file "$work/secret" --mode binary \
		--file "$work/video-$codec.bin" 2>"$work/reader-$codec.log" &
	reader=$!
	pids+=($reader)
	"$relay" host --session "$base/session/cam-$codec" --secret-file "$work/secret" --video test \
		--codec "$codec" --fps 25 --width 640 --height 480 2>"$work/host-$codec.log" &
	host=$!
	pids+=($host)
	until grep -qs "relay link up" "$work/host-$codec.log" && [ -s "$work/video-$codec.bin" ]; do sleep 0.05; done
	cpu0=$(awk '{print $14 + $15}' "/proc/$host/stat")
	t0=$(date +%s.%N)
	b0=$(stat -c %s "$work/video-$codec.bin")
	sleep "$secs" # the measurement window itself
	cpu1=$(awk '{print $14 + $15}' "/proc/$host/stat")
	t1=$(date +%s.%N)
	b1=$(stat -c %s "$work/video-$codec.bin") # the reader writes each message as it comes
	kill -TERM "$host"
	wait "$host" || true
	kill -TERM "$reader"
	wait "$reader" || true
	enc=$(grep -o 'encode time median [0-9]* us, p99 [0-9]* us' "$work/host-$codec.log" ||
		echo "encode time unknown")
	awk -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" -v enc="$enc" \
		-v b="$((b1 - b0))" -v what="$what" 'BEGIN {
		printf "relay host, 640x480 at 25 fps, %s, %.1f s: CPU %.1f %% of one core, %s, %.0f kbit/s received\n",
			what, t1 - t0, 100 * (c1 - c0) / hz / (t1 - t0), enc, b * 8 / (t1 - t0) / 1000 }'
}

for c in "${codecs[@]}"; do measure "$c"; done
