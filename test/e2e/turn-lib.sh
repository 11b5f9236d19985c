# shellcheck shell=bash
# turn-lib.sh: what the shell TURN tests (t2000, t2010, t2012, t2030) share, on top of lib.sh: coturn's
# tools, the secrets, relay serve with TURN, REST credentials, a UDP echo peer, /metrics.
# Source it in place of lib.sh: . "$(dirname "$0")/turn-lib.sh"
# shellcheck source=test/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# a RELAY_* variable in the caller's environment would configure the relays started here
unset "${!RELAY_@}"

# give_up MESSAGE: the test cannot run: one failed case, exit.
give_up() {
	echo "$1"
	echo "0 passed, 1 failed"
	exit 1
}

# need_coturn TOOL...: give up unless coturn's TOOLs are installed.
need_coturn() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || give_up "$tool missing (apt-get install coturn-utils)"
	done
}

# turn_secrets NAME: the JWT secret $TMP/jwt and the REST secret $TMP/turn-secret (also in
# $TURN_SECRET for rest_pass), named after the test.
turn_secrets() {
	echo "$1-jwt-secret-$1-jwt-secret" >"$TMP/jwt"
	TURN_SECRET="$1-rest-secret"
	echo "$TURN_SECRET" >"$TMP/turn-secret"
}

# REST credentials as pkg/turncred makes them: "<expiry>:<user>", base64(HMAC-SHA1(secret, it))
rest_user() { echo "$(($(date +%s) + $2)):$1"; }
rest_pass() { printf %s "$1" | openssl dgst -sha1 -hmac "$TURN_SECRET" -binary | base64; }

# start_turn_relay NAME ARGS...: relay serve with the secrets of turn_secrets, logging to
# $TMP/NAME.log, its state in $TMP/state-NAME; ARGS: --turn-listen and the test's own flags.
# Sets RPID, TURN, TURNS (with --turns-listen) and HTTP; 1, with the log printed, when it did
# not come up.
# shellcheck disable=SC2034 # RPID, TURN, TURNS and HTTP are for the test that sources this
start_turn_relay() {
	local name=$1 up=0
	shift
	"$RELAY" serve --listen 127.0.0.1:0 --insecure-http --audience http://127.0.0.1:0 \
		--secret-file "$TMP/jwt" --state-dir "$TMP/state-$name" \
		--turn-secret-file "$TMP/turn-secret" --log-file "$TMP/$name.log" "$@" &
	RPID=$!
	PIDS+=($!)
	wait_for "$TMP/$name.log" "relay listening" || {
		cat "$TMP/$name.log"
		up=1
	}
	# the ports, also of an IPv6 listener ("udp+tcp [::1]:PORT"); empty when not listening
	TURN=$(grep -oE 'udp\+tcp [^ ]+' "$TMP/$name.log" | sed 's/.*://')
	TURNS=$(grep -oE 'on tls [^ ]+' "$TMP/$name.log" | sed 's/.*://')
	HTTP=$(grep -oE 'relay listening on http://127\.0\.0\.1:[0-9]+' "$TMP/$name.log" | sed 's/.*://')
	return $up
}

# start_udp_peer: coturn's turnutils_peer echoing UDP on 127.0.0.1:$PEER_PORT.
start_udp_peer() {
	# turnutils_peer takes a fixed port: one the kernel just gave out for UDP
	PEER_PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$TMP/peer.log" 2>&1 &
	PIDS+=($!)
}

# uclient_bg NAME FLAGS...: turnutils_uclient with FLAGS, 10 messages from each of 2 clients of
# a user of its own (bk-NAME: 10 allocations per user at most), in the background, its output in
# $TMP/uclient-NAME.out, its PID in UC (uclient waits seconds after its last packet: started
# together, the cases pay that once).
UC=()
uclient_bg() {
	local name=$1 u
	shift
	u=$(rest_user "bk-$name" 600)
	timeout 30 turnutils_uclient -n 10 -m 2 -l 120 -c \
		-u "$u" -w "$(rest_pass "$u")" "$@" 127.0.0.1 >"$TMP/uclient-$name.out" 2>&1 &
	UC+=($!)
	PIDS+=($!)
}

# uclient_totals NAME: the last "tot_send_msgs=N, tot_recv_msgs=N" line uclient NAME printed.
uclient_totals() { grep -E 'tot_send_msgs=[0-9]+, tot_recv_msgs=' "$TMP/uclient-$1.out" | tail -1; }

# metric NAME: its value in the last relay's /metrics.
metric() { curl -s "http://127.0.0.1:$HTTP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
