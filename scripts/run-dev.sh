#!/usr/bin/env bash
# `make run`: start `relay serve` on localhost with working development defaults. Creates, once,
# under ./state/: a self-signed certificate for localhost/127.0.0.1, a random secret, and the
# SQLite deny list; then prints how to connect and runs the relay in the foreground.
# Override with RELAY_LISTEN (default 127.0.0.1:8443) and RELAY_STATE_DIR (default ./state).
set -euo pipefail

relay=${1:?usage: scripts/run-dev.sh RELAY_BINARY}
state=${RELAY_STATE_DIR:-state}
listen=${RELAY_LISTEN:-127.0.0.1:8443}
base="https://$listen"
mkdir -p "$state"
chmod 700 "$state"

if [ ! -s "$state/secret" ]; then
	(umask 077 && openssl rand -base64 32 >"$state/secret")
	echo "run: generated a secret in $state/secret"
fi
if [ ! -s "$state/cert.pem" ] || [ ! -s "$state/key.pem" ]; then
	(umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
		-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$state/key.pem" -out "$state/cert.pem" 2>/dev/null)
	echo "run: generated a self-signed certificate in $state/cert.pem"
fi

cat <<EOT

relay serve is starting on $base (development defaults; Ctrl-C stops it).

Mint a token and connect from this shell:
  export RELAY_TOKEN_SECRET=\$(cat $state/secret)
  TOKEN=\$($relay token --audience $base --topic demo --lifetime 1h)
  curl -sk -X POST -H "Authorization: \$TOKEN" $base/session/demo
    -> {"uri":"wss://$listen/session/demo?code=..."}: open that websocket within 30 s.

From a browser page (accept the self-signed certificate first by visiting $base):
  const r = await fetch('$base/session/demo', {method: 'POST', headers: {Authorization: TOKEN}});
  const ws = new WebSocket((await r.json()).uri);

Stream the test pattern as a lab would (another shell), then watch it at $base/demo/
with access URL $base/session/cam and the token that
  \$($relay token --audience $base --topic cam --scopes read --lifetime 1h) prints:
  $relay host --session $base/session/cam --secret-file $state/secret --ca-file $state/cert.pem --video test

EOT
exec "$relay" serve --listen "$listen" --audience "$base" --secret-file "$state/secret" \
	--cert "$state/cert.pem" --key "$state/key.pem" --state-dir "$state"
