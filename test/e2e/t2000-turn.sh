#!/usr/bin/env bash
# t2000: the built-in STUN/TURN server against coturn's own clients (turnutils_stunclient,
# turnutils_uclient, turnutils_peer): Binding; relaying over UDP, TCP and TLS, with channels and
# with Send indications, client to client; /metrics and /status count it. The refusals are in
# t2010-turn-refusals.sh.
# shellcheck source=test/e2e/turn-lib.sh
. "$(dirname "$0")/turn-lib.sh"

need_coturn turnutils_stunclient turnutils_uclient turnutils_peer
dev_cert "$TMP"
turn_secrets t2000
start_turn_relay relay --cert "$TMP/cert.pem" --key "$TMP/key.pem" --turn-listen 127.0.0.1:0 \
	--turns-listen 127.0.0.1:0 --turn-allow-peer 127.0.0.1/32 || give_up "relay did not start"
start_udp_peer

# uclient_start NAME FLAGS...: to the UDP echo peer (turn-lib.sh's uclient_bg)
uclient_start() { uclient_bg "$1" -e 127.0.0.1 -r "$PEER_PORT" "${@:2}"; }

# uclient_check NAME: every message sent came back, none lost
uclient_check() {
	local out
	out=$(uclient_totals "$1")
	check_contains "$1: every message sent" "$out" "tot_send_msgs=20,"
	check_contains "$1: every message came back" "$out" "tot_recv_msgs=20"
	check_contains "$1: nothing lost" "$(cat "$TMP/uclient-$1.out")" "Total lost packets 0 "
}

begin_case "Binding: XOR-MAPPED-ADDRESS without credentials"
run_rc turnutils_stunclient -p "$TURN" 127.0.0.1
check_contains "reflexive address" "$OUT$ERR" "UDP reflexive addr: 127.0.0.1:"

uclient_start udp-channels -p "$TURN"
uclient_start udp-send -p "$TURN" -s
uclient_start tcp-channels -p "$TURN" -t
uclient_start tcp-send -p "$TURN" -t -s
uclient_start tls -p "$TURNS" -t -S
uclient_start c2c-udp -p "$TURN" -y
uclient_start c2c-tcp -p "$TURN" -y -t
for p in "${UC[@]}"; do wait "$p"; done

begin_case "UDP with channels"
uclient_check udp-channels

begin_case "UDP with Send and Data indications"
uclient_check udp-send

begin_case "TCP with channels (padded ChannelData) and with Send"
uclient_check tcp-channels
uclient_check tcp-send

begin_case "TLS"
uclient_check tls

begin_case "client to client"
uclient_check c2c-udp
uclient_check c2c-tcp

begin_case "allocation log lines carry no credentials"
check "start lines" grep -q "allocation for 'bk-udp-send' from 127.0.0.1:" "$TMP/relay.log"
check "end lines" grep -q "ended (refreshed with lifetime 0)" "$TMP/relay.log"
check "no password (base64 HMAC-SHA1) in the log" bash -c "! grep -qE '[A-Za-z0-9+/]{27}=' '$TMP/relay.log'"

begin_case "/metrics counts allocations, channels and relayed packets"
metrics=$(curl -s "http://127.0.0.1:$HTTP/metrics")
allocs=$(echo "$metrics" | awk '/^relay_turn_allocations_total /{print $2}')
chans=$(echo "$metrics" | awk '/^relay_turn_channels_total /{print $2}')
to_peer=$(echo "$metrics" | awk '/^relay_turn_to_peer_packets_total /{print $2}')
check "allocations counted ($allocs)" test "${allocs:-0}" -ge 14
check "channels counted ($chans)" test "${chans:-0}" -ge 4
check "packets relayed counted ($to_peer)" test "${to_peer:-0}" -ge 140
check_contains "bindings counted" "$metrics" "relay_turn_bindings_total 1"
check_contains "loop-pass pauses counted" "$metrics" "relay_turn_udp_pauses_total "

begin_case "UDP socket buffers: what the kernel granted is logged"
check "listener" grep -qE "UDP listener: receive buffer [0-9]+ bytes, send buffer [0-9]+ \(asked 4194304" "$TMP/relay.log"
check "relayed sockets" grep -qE "relayed sockets: receive buffer [0-9]+ bytes, send buffer [0-9]+ \(asked 1048576" "$TMP/relay.log"

begin_case "the TURN thread runs --turn-nice (default 10) levels below the websocket thread"
# field 19 of /proc/PID/task/TID/stat is the thread's nice value (the name, field 2, has no space)
main_nice=$(awk '{print $19}' "/proc/$RPID/stat")
turn_nice=
for t in /proc/"$RPID"/task/*; do
	[ "$(cat "$t/comm")" = relay-turn ] && turn_nice=$(awk '{print $19}' "$t/stat")
done
want=$((main_nice + 10 > 19 ? 19 : main_nice + 10))
check_eq "relay-turn's nice (main thread's: $main_nice)" "${turn_nice:-none}" "$want"

finish
