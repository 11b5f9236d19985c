// t1710: /status lists every kind of connection (issues 12 and 14). Besides the /session
// members (practable's fields, unchanged) and /connect websockets: /signal peers (realm, peer
// id, messages delivered and refused), /meet participants (meeting, peer id, addresses) and one
// entry of "kind":"turn" per booking holding TURN allocations, with the bytes relayed each way,
// also when that booking has no websocket at all. The TURN allocation is made by a small UDP
// client (turnclient.js) with the credential POST /ice gave, and relays bytes both ways.
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');
const { test, ok, eq, run, startRelay, openWs, join, until, withTimeout } = require('./lib.js');
const { allocate } = require('./turnclient.js');

let r;
let turn;
let peerSock;
const open = [];

const statsToken = () => r.token({ topic: 'stats', scopes: ['read', 'relay:stats'] });

async function status() {
  const res = await fetch(`${r.base}/status`, { headers: { Authorization: statsToken() } });
  eq(res.status, 200, 'GET /status');
  return res.json();
}

async function postJson(path, token) {
  const res = await fetch(`${r.base}${path}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function sigPeer(realm, id) {
  const a = await postJson(`/signal/${realm}`, r.token({ topic: realm, prefix: 'signal', sub: id, booking_id: `bk-${id}` }));
  const ws = await openWs(a.uri);
  ws.msgs = [];
  ws.on('message', (d) => ws.msgs.push(JSON.parse(d.toString())));
  await until(() => ws.msgs.some((m) => m.type === 'welcome'), 5000, `${id}: welcome`);
  open.push(ws);
  return ws;
}

test('start relay with TURN', async () => {
  r = await startRelay({ args: ['--access-rate', '0', '--turn-listen', '127.0.0.1:0', '--turn-allow-peer', '127.0.0.1/32'] });
  ok(r.port > 0, 'relay started');
});

test('a TURN allocation of a booking without a websocket relays bytes both ways', async () => {
  const ice = await postJson('/ice', r.token({ booking_id: 'bk-turn' }));
  const s = ice.iceServers[0];
  const port = Number(/:(\d+)\?/.exec(s.urls.find((u) => u.startsWith('turn:')))[1]);
  turn = await allocate('127.0.0.1', port, s.username, s.credential);
  ok(turn.relayed.port > 0, `relayed address ${JSON.stringify(turn.relayed)}`);
  peerSock = dgram.createSocket('udp4');
  const got = [];
  peerSock.on('message', (b, from) => { got.push(b); peerSock.send(Buffer.from('answer-from-peer'), from.port, from.address); });
  await new Promise((resolve) => peerSock.bind(0, '127.0.0.1', resolve));
  await turn.permit('127.0.0.1', peerSock.address().port);
  turn.send('127.0.0.1', peerSock.address().port, Buffer.from('hello-peer'));
  await until(() => got.length > 0 && turn.received.length > 0, 5000, 'a datagram each way');
  eq(got[0].toString(), 'hello-peer', 'the peer got the client\'s datagram');
  eq(turn.received[0].toString(), 'answer-from-peer', 'the client got the peer\'s answer');
});

test('/status: a "turn" entry for the booking with allocations and bytes each way', async () => {
  const st = await status();
  const t = st.filter((e) => e.kind === 'turn');
  eq(t.length, 1, `one turn entry: ${JSON.stringify(t)}`);
  eq(t[0].booking_id, 'bk-turn', 'its booking');
  eq(t[0].allocations, 1, 'allocations');
  eq([t[0].stats.rx.bytes, t[0].stats.rx.messages], [10, 1], 'rx: from the client to its peers');
  eq([t[0].stats.tx.bytes, t[0].stats.tx.messages], [16, 1], 'tx: from the peers to the client');
  ok(!st.some((e) => e.kind !== 'turn' && e.booking_id === 'bk-turn'), 'no websocket of bk-turn');
});

test('/status: a member keeps practable\'s fields and its turn_allocations count', async () => {
  const ws = await join(r, 'lab1', { scopes: ['read'], booking_id: 'bk-turn' });
  open.push(ws);
  const st = await status();
  const m = st.find((e) => e.topic === 'lab1');
  ok(m, 'the member is listed');
  for (const k of ['topic', 'can_read', 'can_write', 'connected', 'remote_addr', 'scopes', 'user_agent', 'booking_id', 'id', 'stats'])
    ok(k in m, `field ${k}`);
  ok(!('kind' in m), 'a member entry has no kind (as before)');
  eq(m.turn_allocations, 1, 'turn_allocations of its booking');
});

test('/status: signaling peers with realm, peer id and messages delivered', async () => {
  const alice = await sigPeer('realm1', 'alice');
  const bob = await sigPeer('realm1', 'bob');
  alice.send(JSON.stringify({ to: 'bob', type: 'offer', data: { sdp: 'v=0' } }));
  await until(() => bob.msgs.some((m) => m.type === 'offer'), 5000, 'bob gets the offer');
  const st = await status();
  const sig = st.filter((e) => e.kind === 'signal').sort((a, b) => a.peer.localeCompare(b.peer));
  eq(sig.map((e) => [e.realm, e.peer, e.topic, e.booking_id]),
    [['realm1', 'alice', 'realm1', 'bk-alice'], ['realm1', 'bob', 'realm1', 'bk-bob']], 'both peers');
  eq([sig[0].delivered, sig[0].refused, sig[1].delivered], [1, 0, 0], 'messages counted');
  ok(sig.every((e) => /^127\.0\.0\.1/.test(e.remote_addr) && e.connected_at), 'remote and connected_at');
});

test('/status: meeting participants with meeting and peer id', async () => {
  const id = crypto.createHash('sha256').update('meeting secret').digest('hex');
  const a = await postJson(`/meet/${id}`, r.token({ topic: id, prefix: 'meet', booking_id: 'bk-meet' }));
  const ws = await openWs(a.uri);
  open.push(ws);
  const msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  await until(() => msgs.some((x) => x.type === 'welcome'), 5000, 'welcome');
  const m = (await status()).find((e) => e.kind === 'meet');
  ok(m, 'a meet entry');
  eq([m.meeting, m.topic, m.booking_id], [id, id, 'bk-meet'], 'meeting, topic, booking');
  ok(typeof m.peer === 'string' && m.peer.length > 0, `peer id ${m.peer}`);
  ok(/127\.0\.0\.1/.test(m.tcp), `tcp address ${m.tcp}`);
});

test('cleanup', async () => {
  for (const ws of open) ws.close();
  await withTimeout(Promise.all(open.map((w) => w.closed)), 5000, 'websockets closed');
  turn.close();
  peerSock.close();
  eq((await r.stop()).code, 0, 'relay stopped');
});

run({ perTestMs: 20000 });
