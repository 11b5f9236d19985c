#!/usr/bin/env bash
# t3100: private channels from the commands' side (issue 14): real OpenSSH through
# `relay connect` (ProxyCommand) -> `relay serve` -> `relay host --connect` -> an sshd of the
# test's own on 127.0.0.1 (own host key, authorized key and config; no system sshd, no PAM);
# 64 MiB each way byte-exact over wss and ws; 10 concurrent channels isolated; --listen; stdin's
# end of file; the host's reconnection after a relay restart; a client while the host is offline.
. "$(dirname "$0")/lib.sh"

unset "${!RELAY_@}"
SSHD=/usr/sbin/sshd
if [ ! -x "$SSHD" ] || ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then
	begin_case "OpenSSH is installed"
	failed "openssh-server and openssh-client are needed: sudo scripts/deps.sh"
	finish
fi
ME=$(id -un)
dev_cert "$TMP"
echo "t3100-secret" >"$TMP/secret"

# ---- the sshd: its own keys and config, on a port nobody listens on now ----
ssh-keygen -q -t ed25519 -N '' -f "$TMP/hostkey"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/userkey"
cp "$TMP/userkey.pub" "$TMP/authorized_keys"
chmod 600 "$TMP/authorized_keys"
echo "lab1 $(cut -d' ' -f1,2 "$TMP/hostkey.pub")" >"$TMP/known_hosts"
# root's sshd wants its privilege separation directory (the package's service would make it)
[ "$(id -u)" -eq 0 ] && mkdir -p /run/sshd
start_sshd() {
	local try
	for try in 1 2 3; do
		SSH_PORT=$(free_port) # sshd cannot report a port 0; retried if taken meanwhile
		cat >"$TMP/sshd_config" <<-EOF
			ListenAddress 127.0.0.1
			Port $SSH_PORT
			HostKey $TMP/hostkey
			AuthorizedKeysFile $TMP/authorized_keys
			PidFile $TMP/sshd.pid
			StrictModes no
			UsePAM no
			PasswordAuthentication no
			KbdInteractiveAuthentication no
			PubkeyAuthentication yes
			PermitRootLogin prohibit-password
			AllowUsers $ME
			LogLevel ERROR
		EOF
		"$SSHD" -D -e -f "$TMP/sshd_config" 2>>"$TMP/sshd.log" &
		SSHD_PID=$!
		PIDS+=($SSHD_PID)
		for _ in $(seq 100); do
			ss -Hltn "sport = :$SSH_PORT" | grep -q . && return 0
			kill -0 "$SSHD_PID" 2>/dev/null || break
			sleep 0.05
		done
	done
	return 1
}
begin_case "an sshd of the test's own"
check "sshd listens on 127.0.0.1 (log: $(tail -c 300 "$TMP/sshd.log" 2>/dev/null))" start_sshd

# ---- an echo server (each connection gets back what it sends, then its end) ----
node -e 'const s=require("net").createServer(c=>c.pipe(c));s.listen(0,"127.0.0.1",()=>console.log(s.address().port))' >"$TMP/echo.port" &
PIDS+=($!)
wait_for "$TMP/echo.port" '^[0-9]+$' 10
ECHO_PORT=$(cat "$TMP/echo.port")

# start_relay NAME SCHEME [PORT]: relay serve over https (wss) or http (ws); sets PORT_<NAME>.
start_relay() {
	local name=$1 scheme=$2 port=${3:-0} extra=()
	[ "$scheme" = http ] && extra=(--insecure-http) || extra=(--cert "$TMP/cert.pem" --key "$TMP/key.pem")
	: >"$TMP/relay-$name.log"
	"$RELAY" serve --listen "127.0.0.1:$port" --audience "$scheme://127.0.0.1:$port" \
		--secret-file "$TMP/secret" --state-dir "$TMP/state-$name" "${extra[@]}" \
		--log-file "$TMP/relay-$name.log" &
	PIDS+=($!)
	eval "RELAY_PID_$name=$!"
	wait_for "$TMP/relay-$name.log" "relay listening on" 10 || return 1
	eval "PORT_$name=$(sed -n 's|.*relay listening on https\?://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$TMP/relay-$name.log")"
}

# token AUDIENCE HOSTID SCOPE FILE
token() {
	"$RELAY" token --secret-file "$TMP/secret" --audience "$1" --topic "$2" \
		--connection-type connect --scopes "$3" --lifetime 1h --booking-id "b-$2-$3" >"$4"
}

# start_host NAME AUD HOSTID TARGETPORT: relay host --connect; waits for its control connection.
start_host() {
	local name=$1 aud=$2 id=$3 target=$4
	token "$aud" "$id" host "$TMP/host-$name.tok"
	: >"$TMP/host-$name.log"
	"$RELAY" host --connect "tcp:127.0.0.1:$target" --session "$aud/connect/$id" \
		--token-file "$TMP/host-$name.tok" --ca-file "$TMP/cert.pem" --backoff-min 100ms \
		--backoff-max 300ms --log-file "$TMP/host-$name.log" --log-level info &
	PIDS+=($!)
	wait_for "$TMP/host-$name.log" "relay link up" 10
}

# ssh_to AUD TOKEN CMD...: OpenSSH through relay connect to "lab1".
ssh_to() {
	local aud=$1 tok=$2
	shift 2
	timeout "${SSH_TIMEOUT:-30}" ssh -F /dev/null -i "$TMP/userkey" -o IdentitiesOnly=yes -o BatchMode=yes \
		-o UserKnownHostsFile="$TMP/known_hosts" -o StrictHostKeyChecking=yes -o HostKeyAlias=lab1 \
		-o ConnectTimeout=10 -o LogLevel=ERROR \
		-o ProxyCommand="$RELAY connect --session $aud/connect/%h --token-file $tok --ca-file $TMP/cert.pem" \
		-l "$ME" lab1 "$@"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

head -c $((64 << 20)) /dev/urandom >"$TMP/big"
BIG_SHA=$(sha "$TMP/big")

# transfer_case NAME AUD: ssh 'echo ok', then 64 MiB up and down.
transfer_case() {
	local name=$1 aud=$2 tok="$TMP/client-$1.tok" out
	token "$aud" lab1 client "$tok"
	begin_case "ssh through relay connect and relay host --connect ($name)"
	out=$(ssh_to "$aud" "$tok" 'echo ok' 2>"$TMP/ssh-$name.err")
	check_eq "ssh 'echo ok' ($(tail -c 300 "$TMP/ssh-$name.err"))" "$out" ok
	begin_case "64 MiB each way through ssh, byte-exact ($name)"
	rm -f "$TMP/up-$name"
	SSH_TIMEOUT=40 ssh_to "$aud" "$tok" "cat > $TMP/up-$name" <"$TMP/big" 2>>"$TMP/ssh-$name.err"
	check_eq "up: SHA-256 of what arrived" "$(sha "$TMP/up-$name" 2>/dev/null)" "$BIG_SHA"
	SSH_TIMEOUT=40 ssh_to "$aud" "$tok" "cat $TMP/big" 2>>"$TMP/ssh-$name.err" >"$TMP/down-$name"
	check_eq "down: SHA-256 of what arrived" "$(sha "$TMP/down-$name")" "$BIG_SHA"
	rm -f "$TMP/up-$name" "$TMP/down-$name"
}

# ---- wss ----
begin_case "relay serve (wss) and relay host --connect start"
check "relay serve starts" start_relay s https
AUD_S=https://127.0.0.1:$PORT_s
check "host control connection up" start_host s "$AUD_S" lab1 "$SSH_PORT"
transfer_case wss "$AUD_S"

# ---- ws ----
begin_case "relay serve (ws) and relay host --connect start"
check "relay serve starts" start_relay p http
AUD_P=http://127.0.0.1:$PORT_p
check "host control connection up" start_host p "$AUD_P" lab1 "$SSH_PORT"
transfer_case ws "$AUD_P"

# ---- stdin's end of file: the far end sees it, answers, and the channel ends cleanly ----
begin_case "stdin's end of file reaches the target; the answer arrives; exit 0"
check "echo host up" start_host echo "$AUD_S" echo1 "$ECHO_PORT"
token "$AUD_S" echo1 client "$TMP/client-echo.tok"
printf 'hello through the relay' | timeout 10 "$RELAY" connect --session "$AUD_S/connect/echo1" \
	--token-file "$TMP/client-echo.tok" --ca-file "$TMP/cert.pem" 2>"$TMP/connect-eof.err" >"$TMP/eof.out"
rc=$?
out=$(cat "$TMP/eof.out")
check_eq "the echo came back" "$out" "hello through the relay"
check_eq "exit status 0 ($(cat "$TMP/connect-eof.err"))" "$rc" 0
# a file on both sides (copied through a thread: libuv streams pipes, sockets and terminals)
head -c $((4 << 20)) "$TMP/big" >"$TMP/four"
timeout 20 "$RELAY" connect --session "$AUD_S/connect/echo1" --token-file "$TMP/client-echo.tok" \
	--ca-file "$TMP/cert.pem" <"$TMP/four" >"$TMP/four.out" 2>"$TMP/connect-file.err"
check_eq "4 MiB from a file to a file, exit 0 ($(cat "$TMP/connect-file.err"))" "$?:$(sha "$TMP/four.out")" "0:$(sha "$TMP/four")"

begin_case "back-pressure: a target that does not read for 1.5 s still gets every byte"
# a slow target: reads nothing for 1.5 s (the agent's output to it, then the relay's queue, then
# relay connect's fill up and each stops reading its sender), then answers with the SHA-256
node -e '
const s = require("net").createServer(c => {
	const h = require("crypto").createHash("sha256");
	c.pause();
	setTimeout(() => c.resume(), 1500);
	c.on("data", d => h.update(d));
	c.on("end", () => c.end(h.digest("hex")));
});
s.listen(0, "127.0.0.1", () => console.log(s.address().port));' >"$TMP/slow.port" &
PIDS+=($!)
wait_for "$TMP/slow.port" '^[0-9]+$' 10
check "slow host up" start_host slow "$AUD_S" slow1 "$(cat "$TMP/slow.port")"
token "$AUD_S" slow1 client "$TMP/client-slow.tok"
head -c $((32 << 20)) "$TMP/big" >"$TMP/thirtytwo"
out=$(timeout 30 "$RELAY" connect --session "$AUD_S/connect/slow1" --token-file "$TMP/client-slow.tok" \
	--ca-file "$TMP/cert.pem" <"$TMP/thirtytwo" 2>"$TMP/connect-slow.err" | cat)
check_eq "the target's SHA-256 of 32 MiB ($(cat "$TMP/connect-slow.err"))" "$out" "$(sha "$TMP/thirtytwo")"

begin_case "minted tokens: relay host and relay connect with --secret-file (prefix connect)"
"$RELAY" host --connect "tcp:127.0.0.1:$ECHO_PORT" --session "$AUD_S/connect/echo2" --secret-file "$TMP/secret" \
	--ca-file "$TMP/cert.pem" --log-file "$TMP/host-minted.log" &
PIDS+=($!)
check "the host's minted token (scope host) is taken" wait_for "$TMP/host-minted.log" "relay link up" 10
out=$(printf minted | timeout 10 "$RELAY" connect --session "$AUD_S/connect/echo2" --secret-file "$TMP/secret" \
	--ca-file "$TMP/cert.pem" 2>"$TMP/connect-minted.err" | cat)
check_eq "the client's minted token (scope client) opens a channel ($(cat "$TMP/connect-minted.err"))" "$out" minted

begin_case "a connect stream in the host's config file"
token "$AUD_S" echo3 host "$TMP/host-conf.tok"
cat >"$TMP/host.json" <<EOF
{"listen": "none", "ca_file": "$TMP/cert.pem", "log_file": "$TMP/host-conf.log",
 "streams": [{"name": "echo", "session": "$AUD_S/connect/echo3", "connect": "tcp:127.0.0.1:$ECHO_PORT",
              "token_file": "$TMP/host-conf.tok"}]}
EOF
"$RELAY" host --config "$TMP/host.json" &
PIDS+=($!)
check "its control connection is up" wait_for "$TMP/host-conf.log" "relay link up" 10
token "$AUD_S" echo3 client "$TMP/client-conf.tok"
out=$(printf 'from the config' | timeout 10 "$RELAY" connect --session "$AUD_S/connect/echo3" \
	--token-file "$TMP/client-conf.tok" --ca-file "$TMP/cert.pem" 2>"$TMP/connect-conf.err" | cat)
check_eq "a channel through it ($(cat "$TMP/connect-conf.err"))" "$out" "from the config"

# ---- --listen: each local connection its own channel; 10 at once stay isolated ----
begin_case "--listen: 10 concurrent local connections, 10 channels, each gets exactly its bytes"
"$RELAY" connect --listen 127.0.0.1:0 --session "$AUD_S/connect/echo1" --token-file "$TMP/client-echo.tok" \
	--ca-file "$TMP/cert.pem" --log-level info 2>"$TMP/listen.log" &
LISTEN_PID=$!
PIDS+=($LISTEN_PID)
check "relay connect --listen listens" wait_for "$TMP/listen.log" "listening on 127.0.0.1 port [0-9]+" 10
LPORT=$(sed -n 's/.*listening on 127\.0\.0\.1 port \([0-9]*\).*/\1/p' "$TMP/listen.log")
before=$(grep -c "channel [0-9]* for" "$TMP/host-echo.log")
out=$(timeout 30 node -e '
const net = require("net"), crypto = require("crypto");
const port = +process.argv[1], n = 10, size = 1 << 20;
let done = 0, bad = 0;
for (let i = 0; i < n; i++) {
	const mine = crypto.randomBytes(size), got = [];
	const c = net.connect(port, "127.0.0.1", () => {
		// in pieces, so that the channels interleave
		let off = 0;
		const more = () => { while (off < size) { const k = Math.min(16384, size - off); const ok = c.write(mine.subarray(off, off + k)); off += k; if (!ok) return c.once("drain", more); } c.end(); };
		more();
	});
	c.on("data", d => got.push(d));
	c.on("error", e => { bad++; console.error(i, e.message); });
	c.on("close", () => { if (!Buffer.concat(got).equals(mine)) { bad++; console.error("channel", i, "got", Buffer.concat(got).length, "bytes, not its own"); } if (++done === n) console.log(bad ? "bad " + bad : "all " + n + " exact"); });
}' "$LPORT" 2>"$TMP/isolation.err")
check_eq "each connection got its own bytes back ($(head -c 300 "$TMP/isolation.err"))" "$out" "all 10 exact"
after=$(grep -c "channel [0-9]* for" "$TMP/host-echo.log")
check_eq "the host opened 10 channels" "$((after - before))" 10

begin_case "--listen: two local connections become two channels"
before=$after
out=$(timeout 10 node -e '
const net = require("net"), port = +process.argv[1];
const a = net.connect(port, "127.0.0.1"), b = net.connect(port, "127.0.0.1");
let ga = "", gb = "", closed = 0;
a.on("data", d => ga += d); b.on("data", d => gb += d);
const end = () => { if (++closed === 2) console.log(ga + "|" + gb); };
a.on("close", end); b.on("close", end);
a.write("first"); b.write("second");
setTimeout(() => { a.end(); b.end(); }, 200);' "$LPORT")
check_eq "each got its own echo" "$out" "first|second"
after=$(grep -c "channel [0-9]* for" "$TMP/host-echo.log")
check_eq "two more channels at the host" "$((after - before))" 2
kill "$LISTEN_PID" 2>/dev/null
wait_exit "$LISTEN_PID" 5
check_eq "relay connect --listen exits 0 on SIGTERM" "$EXIT_RC" 0

# ---- refusals seen from the commands ----
begin_case "a client while the host is offline: exit 1 with the 503 reason"
token "$AUD_S" nobody client "$TMP/client-nobody.tok"
run_rc timeout 10 "$RELAY" connect --session "$AUD_S/connect/nobody" --token-file "$TMP/client-nobody.tok" \
	--ca-file "$TMP/cert.pem" </dev/null
check_eq "exit status 1" "$RC" 1
check_contains "stderr names the 503" "$ERR" "503"
check_contains "stderr says the access was refused" "$ERR" "access refused"

begin_case "tokens of the wrong role are refused as such"
run_rc timeout 10 "$RELAY" connect --session "$AUD_S/connect/lab1" --token-file "$TMP/host-s.tok" \
	--ca-file "$TMP/cert.pem" </dev/null
check_eq "relay connect with a host token: exit 1" "$RC" 1
check_contains "a 403" "$ERR" "HTTP 403"
run_rc timeout 10 "$RELAY" host --connect "tcp:127.0.0.1:$ECHO_PORT" --session "$AUD_S/connect/lab1" \
	--token-file "$TMP/client-wss.tok" --ca-file "$TMP/cert.pem"
check_eq "relay host --connect with a client token: exit 1" "$RC" 1
check_contains "a 403, in the log" "$ERR" "HTTP 403"

begin_case "usage errors exit 2"
run_rc "$RELAY" connect --token-file "$TMP/client-nobody.tok"
check_eq "no --session: exit 2" "$RC" 2
run_rc "$RELAY" connect --session "$AUD_S/connect/x" --token-file "$TMP/client-nobody.tok" --listen nowhere
check_eq "bad --listen: exit 2" "$RC" 2
run_rc "$RELAY" host --connect udp:127.0.0.1:22 --session "$AUD_S/connect/x" --token-file "$TMP/client-nobody.tok" --check
check_eq "relay host --connect takes tcp: only" "$RC" 2
check_contains "and says so" "$ERR" "tcp:HOST:PORT"

# ---- the host's reconnection after a relay restart ----
begin_case "relay host --connect reconnects after a relay restart"
token "$AUD_P" lab1 client "$TMP/client-restart.tok"
kill "$RELAY_PID_p"
wait_exit "$RELAY_PID_p" 10
check "the host sees its control connection go" wait_for "$TMP/host-p.log" "relay link down" 10
check "relay serve restarts on the same port" start_relay p http "$PORT_p"
check "the host's control connection is back" wait_for "$TMP/host-p.log" "relay link back up" 15
out=$(ssh_to "$AUD_P" "$TMP/client-restart.tok" 'echo ok again' 2>"$TMP/ssh-restart.err")
check_eq "ssh works again ($(tail -c 300 "$TMP/ssh-restart.err"))" "$out" "ok again"

finish
