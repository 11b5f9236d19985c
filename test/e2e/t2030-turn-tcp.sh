#!/usr/bin/env bash
# t2030: TURN TCP allocations (RFC 6062) against coturn's turnutils_uclient -T (client to
# client: each allocation Connects to the other's relayed address, the other gets a
# ConnectionAttempt, both bind data connections) over TCP and over TLS, and -T -P (the peer
# connects to the relayed address itself): every message arrives, /metrics counts the
# connections and their bytes, the log has a line per allocation start and end. The cases uclient
# cannot express are in t2030-turn-tcp.js.
# shellcheck source=test/e2e/turn-lib.sh
. "$(dirname "$0")/turn-lib.sh"

need_coturn turnutils_uclient
dev_cert "$TMP"
turn_secrets t2030
start_turn_relay relay --cert "$TMP/cert.pem" --key "$TMP/key.pem" --turn-listen 127.0.0.1:0 \
	--turns-listen 127.0.0.1:0 --turn-allow-peer 127.0.0.1/32 || give_up "relay did not start"

# uclient_start NAME N FLAGS...: N messages of 500 bytes from each client, in the background
# (uclient waits seconds after its last message; run together, the cases take that time once)
UC=()
uclient_start() {
	local name=$1 n=$2 u
	shift 2
	u=$(rest_user "bk-$name" 600)
	timeout 40 turnutils_uclient -T -e 127.0.0.1 -n "$n" -m 1 -l 500 \
		-u "$u" -w "$(rest_pass "$u")" "$@" 127.0.0.1 >"$TMP/uclient-$name.out" 2>&1 &
	UC+=($!)
	PIDS+=($!)
}

totals() { grep -E 'tot_send_msgs=[0-9]+, tot_recv_msgs=' "$TMP/uclient-$1.out" | tail -1; }

# uclient_check NAME: both connections of uclient NAME bound, its 20 messages each way arrived
uclient_check() {
	check_contains "the connections completed" "$(cat "$TMP/uclient-$1.out")" "2 connections are completed"
	check_contains "40 sent, 40 received" "$(totals "$1")" "tot_send_msgs=40, tot_recv_msgs=40"
	check_contains "nothing lost" "$(cat "$TMP/uclient-$1.out")" "Total lost packets 0 "
}

uclient_start tcp 20 -p "$TURN"
uclient_start tls 20 -p "$TURNS" -S
uclient_start passive 5 -p "$TURN" -P
for p in "${UC[@]}"; do wait "$p"; done

begin_case "uclient -T over TCP: both connections bound, every message arrives"
uclient_check tcp

begin_case "uclient -T -S over TLS: both connections bound, every message arrives"
uclient_check tls

# -P: uclient's own peer connects to the relayed address and counts only what the client gets,
# so it reports half of its messages lost against coturn too: what the client received and what
# the relay carried each way are the measure
begin_case "uclient -T -P: a peer connecting to the relayed address reaches the client"
check_contains "the client received the peer's 5 messages" "$(totals passive)" "tot_recv_msgs=5"
# the end line may trail the answer uclient got: polled, at most 10 s
check "logged: ended after relaying 2500 bytes each way" wait_for "$TMP/relay.log" \
	"'bk-passive' from .* ended \(refreshed with lifetime 0\) after [0-9]+s: 0 packets 2500 bytes to peers, 0 packets 2500 bytes from peers"

begin_case "/metrics and the log"
# the relay closes the last connections after uclient exits: polled, at most 10 s
for _ in $(seq 100); do
	[ "$(metric relay_turn_tcp_connections)" = 0 ] && break
	sleep 0.1
done
check_eq "no connection left" "$(metric relay_turn_tcp_connections)" 0
check_eq "5 connections made or accepted (2 + 2 + 1)" "$(metric relay_turn_tcp_connections_total)" 5
# 20 messages each way on each of 2 connections, TCP and TLS, and 5 each way passive
check_eq "bytes to peers" "$(metric relay_turn_tcp_to_peer_bytes_total)" $((2 * 2 * 20 * 500 + 5 * 500))
check_eq "bytes from peers" "$(metric relay_turn_tcp_from_peer_bytes_total)" $((2 * 2 * 20 * 500 + 5 * 500))
check_eq "no refusal but uclient's 401 challenges" \
	"$(curl -s "http://127.0.0.1:$HTTP/metrics" | grep '^relay_turn_refused_total' | grep -v unauthorized | awk '{s += $2} END {print s}')" 0
check "start lines name the TCP relayed address" grep -qE "allocation for 'bk-tls' from 127\.0\.0\.1:[0-9]+ \(tls\) relayed at tcp:127\.0\.0\.1:[0-9]+" "$TMP/relay.log"
check_eq "an end line per start line" "$(grep -c "ended (" "$TMP/relay.log")" "$(grep -c "allocation for '.*relayed at" "$TMP/relay.log")"
check "no password (base64 HMAC-SHA1) in the log" bash -c "! grep -qE '[A-Za-z0-9+/]{27}=' '$TMP/relay.log'"

finish
