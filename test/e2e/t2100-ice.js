// t2100: POST /ice (relay/ice.c): the WebRTC configuration for a relay token, with REST credentials
// checked against an independent computation (node's crypto), only the listeners that are on,
// the token's exp as the credential's expiry, refusals and CORS. Then node-datachannel (a real
// WebRTC stack: libdatachannel/libjuice) configured from POST /ice with iceTransportPolicy
// 'relay' opens a data channel through relay's own TURN server.
'use strict';
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { test, ok, eq, run, startRelay, makeToken, withTimeout, until } = require('./lib.js');
const { turnMetrics } = require('./turnclient.js');

let off; // relay without TURN
let r;   // --turn-listen 127.0.0.1:0
let r2;  // --turn-listen + --turns-listen + --turn-external-ip + --turn-secret-file
let r3;  // TURN on 127.0.0.2 only, for node-datachannel (see there)

// The REST secret relay derives from its JWT secret (pkg/turncred: HKDF-SHA256).
function restSecret(secret) {
  return Buffer.from(crypto.hkdfSync('sha256', secret, 'relay-turn', 'turn rest secret v1', 32)).toString('hex');
}

function credential(secret, username) {
  return crypto.createHmac('sha1', secret).update(username).digest('base64');
}

async function ice(relay, token, init = {}) {
  const headers = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  const res = await fetch(`${relay.base}/ice`, { method: 'POST', headers, ...init });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: res.status, body, headers: res.headers };
}

function turnPort(answer) {
  const u = answer.body.iceServers[0].urls.find((x) => x.startsWith('turn:'));
  return Number(/:(\d+)\?/.exec(u)[1]);
}

test('start relays: TURN off, TURN on, TURN with TLS and an external IP', async () => {
  off = await startRelay();
  r = await startRelay({ args: ['--turn-listen', '127.0.0.1:0', '--turn-allow-peer', '127.0.0.1/32'] });
  const dir = require('./lib.js').tmpdir();
  require('fs').writeFileSync(`${dir}/turn-secret`, 'shared-with-coturn\n');
  r2 = await startRelay({
    args: ['--turn-listen', '127.0.0.1:0', '--turns-listen', '127.0.0.1:0', '--turn-external-ip', '203.0.113.7',
      '--turn-secret-file', `${dir}/turn-secret`],
  });
  // no --turn-allow-peer: relay-only peers send to each other's relayed addresses, this
  // relay's own, which a live allocation's are allowed as with no flag in production
  r3 = await startRelay({ args: ['--turn-listen', '127.0.0.2:0', '--turn-external-ip', '127.0.0.2'] });
  ok(true, 'started');
});

test('TURN off: 404 with a reason', async () => {
  const a = await ice(off, off.token());
  eq(a.status, 404, 'status');
  ok(/TURN is off/.test(a.body.message), `reason: ${JSON.stringify(a.body)}`);
});

test('shape: stun, turn udp and tcp on the listener, REST credential for booking_id until exp', async () => {
  const exp = Math.floor(Date.now() / 1000) + 1234;
  const a = await ice(r, r.token({ booking_id: 'bk-42', exp }));
  eq(a.status, 200, 'status');
  eq(Object.keys(a.body), ['iceServers', 'expires'], 'keys');
  eq(a.body.iceServers.length, 1, 'one server entry');
  const s = a.body.iceServers[0];
  const port = turnPort(a);
  ok(port > 0 && port !== r.port, `TURN port ${port}`);
  eq(s.urls, [`stun:127.0.0.1:${port}`, `turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`],
    'urls: only the listeners that are on, host from the audience');
  eq(s.username, `${exp}:bk-42`, 'username is <token exp>:<booking_id>');
  eq(a.body.expires, exp, 'expires is the token exp');
  eq(s.credential, credential(restSecret(r.secret), s.username), 'credential = base64(HMAC-SHA1(derived secret, username))');
  eq(a.headers.get('access-control-allow-origin'), '*', 'CORS header');
  eq(a.headers.get('cache-control'), 'no-store', 'not cached');
  // a real client reaches the port it names (Debian's coturn client, a Binding request)
  const out = execFileSync('timeout', ['10', 'turnutils_stunclient', '-p', String(port), '127.0.0.1'], { encoding: 'utf8' });
  ok(/UDP reflexive addr: 127\.0\.0\.1:\d+/.test(out), `stunclient answered: ${out.slice(-200)}`);
});

test('user part: sub when there is no booking_id; neither is refused', async () => {
  const a = await ice(r, r.token({ booking_id: undefined, sub: 'alice' }));
  eq(a.status, 200, 'status with sub only');
  ok(a.body.iceServers && a.body.iceServers[0].username.endsWith(':alice'), `username ${JSON.stringify(a.body)}`);
  const b = await ice(r, r.token({ booking_id: undefined }));
  eq(b.status, 403, 'no booking_id nor sub');
  const c = await ice(r, r.token({ booking_id: 'a:b' }));
  eq(c.status, 403, "a ':' in booking_id cannot be a TURN user");
});

test('any token of this audience: another prefix and topic too', async () => {
  const a = await ice(r, r.token({ prefix: 'signal', topic: 'realm1', scopes: [] }));
  eq(a.status, 200, 'status');
});

test('refusals: no token, expired, wrong audience, bad signature, GET; all with CORS', async () => {
  const now = Math.floor(Date.now() / 1000);
  const cases = [
    ['no token', undefined, 401],
    ['expired', r.token({ exp: now - 60, iat: now - 120, nbf: now - 120 }), 401],
    ['other audience', r.token({ aud: 'https://other.example' }), 401],
    ['bad signature', makeToken(off.secret, { aud: r.base }), 401],
  ];
  for (const [what, tok, want] of cases) {
    const a = await ice(r, tok);
    eq(a.status, want, what);
    eq(a.headers.get('access-control-allow-origin'), '*', `${what}: CORS header`);
    ok(a.body && typeof a.body.message === 'string', `${what}: reason ${JSON.stringify(a.body)}`);
  }
  const g = await ice(r, r.token(), { method: 'GET' });
  eq(g.status, 405, 'GET');
  const p = await fetch(`${r.base}/ice`, {
    method: 'OPTIONS',
    headers: { Origin: 'https://lab.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' },
  });
  eq(p.status, 204, 'preflight');
  ok(/POST/.test(p.headers.get('access-control-allow-methods')), 'preflight allows POST');
  ok(/Authorization/i.test(p.headers.get('access-control-allow-headers')), 'preflight allows Authorization');
});

test('a denied booking gets no credential', async () => {
  const admin = r.token({ scopes: ['relay:admin'] });
  const exp = Math.floor(Date.now() / 1000) + 600;
  const d = await fetch(`${r.base}/bids/deny?bid=bk-denied&exp=${exp}`, { method: 'POST', headers: { Authorization: admin } });
  eq(d.status, 204, 'deny');
  const a = await ice(r, r.token({ booking_id: 'bk-denied' }));
  eq(a.status, 403, 'denied booking');
});

test('turns listener, --turn-external-ip and --turn-secret-file', async () => {
  const a = await ice(r2, r2.token({ booking_id: 'bk-7' }));
  eq(a.status, 200, 'status');
  const s = a.body.iceServers[0];
  const port = turnPort(a);
  const tls = Number(/:(\d+)\?/.exec(s.urls[3] || '')?.[1]);
  eq(s.urls, [`stun:203.0.113.7:${port}`, `turn:203.0.113.7:${port}?transport=udp`, `turn:203.0.113.7:${port}?transport=tcp`,
    `turns:203.0.113.7:${tls}?transport=tcp`], 'urls name the external IP and the TLS listener');
  ok(tls > 0 && tls !== port, `TLS port ${tls}`);
  eq(s.credential, credential('shared-with-coturn', s.username), 'credential under --turn-secret-file');
});

// The RTCIceServer entries of an /ice answer as node-datachannel's IceServer objects: TURN over
// UDP only (the prebuilt libdatachannel uses libjuice, which speaks TURN over UDP only).
function ndcServers(answer) {
  const s = answer.iceServers[0];
  return s.urls.filter((u) => /^turn:.*\?transport=udp$/.test(u)).map((u) => {
    const m = /^turn:(.*):(\d+)\?/.exec(u);
    return { hostname: m[1], port: Number(m[2]), username: s.username, password: s.credential, relayType: 'TurnUdp' };
  });
}

// libjuice's 'relay' policy signals only relay candidates, but it answers a check that arrives
// from a peer-reflexive address on its own socket, and on loopback that direct path works. So
// this relay's TURN listens and relays on 127.0.0.2 and lets peers be 127.0.0.2 only: the peers'
// own sockets send from 127.0.0.1, which no permission covers, and every packet between them
// must go allocation to allocation through our server.
test('node-datachannel: two relay-only peers configured from POST /ice exchange messages', async () => {
  const ndc = require('node-datachannel');
  const config = async (bid) => {
    const a = await ice(r3, r3.token({ booking_id: bid }));
    if (a.status !== 200) throw new Error(`/ice ${a.status} ${JSON.stringify(a.body)}`);
    return { iceServers: ndcServers(a.body), iceTransportPolicy: 'relay' };
  };
  const before = await turnMetrics(r3);
  const pa = new ndc.PeerConnection('a', await config('peer-a'));
  const pb = new ndc.PeerConnection('b', await config('peer-b'));
  const candidates = [];
  try {
    pa.onLocalDescription((sdp, type) => pb.setRemoteDescription(sdp, type));
    pb.onLocalDescription((sdp, type) => pa.setRemoteDescription(sdp, type));
    pa.onLocalCandidate((c, mid) => { candidates.push(c); pb.addRemoteCandidate(c, mid); });
    pb.onLocalCandidate((c, mid) => { candidates.push(c); pa.addRemoteCandidate(c, mid); });
    const got = [];
    pb.onDataChannel((dc) => dc.onMessage((m) => dc.sendMessage(`echo:${m}`)));
    const dc = pa.createDataChannel('t2100');
    dc.onMessage((m) => got.push(String(m)));
    await withTimeout(new Promise((resolve) => dc.onOpen(resolve)), 15000, 'data channel open');
    const pad = 'x'.repeat(1000);
    for (let i = 0; i < 20; i++) dc.sendMessage(`m${i}:${pad}`);
    await until(() => got.length >= 20, 10000, '20 echoes');
    eq(got, Array.from({ length: 20 }, (_, i) => `echo:m${i}:${pad}`), 'messages echoed in order');
    ok(candidates.length >= 2 && candidates.every((c) => / typ relay /.test(c)),
      `only relay candidates, from our TURN server: ${candidates.join(' | ')}`);
    const after = await turnMetrics(r3);
    const d = (k) => (after[k] || 0) - (before[k] || 0);
    ok(d('relay_turn_allocations_total') >= 2, `two allocations made: ${JSON.stringify(after)}`);
    // Bytes, not packets (SCTP bundles small messages): 20 KB each way, and each byte passes
    // the server twice (from a's allocation to b's), counted to and from peers.
    const carried = d('relay_turn_to_peer_bytes_total') + d('relay_turn_from_peer_bytes_total');
    ok(carried >= 80000, `the messages went through our TURN server (${carried} bytes relayed)`);
  } finally {
    pa.close();
    pb.close();
    ndc.cleanup();
  }
});

test('cleanup', async () => {
  for (const x of [off, r, r2, r3]) eq((await x.stop()).code, 0, 'relay stopped');
});

run();
