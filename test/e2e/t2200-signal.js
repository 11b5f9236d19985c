// t2200: WebRTC signaling at /signal/{realm} with node ws clients: the welcome, presence, a
// forged "from" replaced, order per sender, one connection per peer id (409 at the access call
// and at redemption), the peers claim both ways (hidden and absent peers answered alike), errors
// to the sender only (the connection stays open), size and rate limits, a slow reader closed,
// token expiry and deny closing with 1008, and discovery's group-expired event.
'use strict';
const { test, ok, eq, run, startRelay, openWs, openJsonWs, sigAccess, until, withTimeout } = require('./lib.js');

let r;

// Access and open: a websocket whose messages are parsed into ws.msgs (lib.js openJsonWs).
async function peer(rel, realm, id, over = {}) {
  const a = await sigAccess(rel, realm, id, over);
  if (a.status !== 200) throw new Error(`signal access ${id}: ${a.status} ${JSON.stringify(a.body)}`);
  return openJsonWs(a.body.uri, id);
}

const send = (ws, m) => ws.send(typeof m === 'string' ? m : JSON.stringify(m));
const closeAll = (...wss) => Promise.all(wss.map((w) => { w.close(); return w.closed; }));

test('start relay', async () => {
  r = await startRelay({ args: ['--access-rate', '0'] });
  ok(r.port > 0, 'relay started');
});

test('access answers a /signal uri; bad realm, prefix and sub are refused', async () => {
  const a = await sigAccess(r, 'lab', 'alice');
  eq(a.status, 200, 'access 200');
  ok(/^wss:\/\/127\.0\.0\.1:\d+\/signal\/lab\?code=[A-Za-z0-9_-]+$/.test(a.body.uri), `uri ${a.body.uri}`);
  eq((await sigAccess(r, 'lab', 'alice', { prefix: 'session' })).status, 403, 'session token refused');
  eq((await sigAccess(r, 'lab', 'alice', { topic: 'other' })).status, 403, 'other realm refused');
  eq((await sigAccess(r, 'lab', undefined)).status, 403, 'no sub refused');
  eq((await sigAccess(r, 'lab', 'x'.repeat(129))).status, 403, '129-character sub refused');
  eq((await sigAccess(r, 'lab', 'tab\there')).status, 403, 'unprintable sub refused');
  eq((await sigAccess(r, 'lab', 'alice', { peers: 'bob' })).status, 403, 'peers claim not an array');
  const bad = await fetch(`${r.base}/signal/a%2Fb`, { method: 'POST', headers: { Authorization: r.token({ prefix: 'signal', sub: 'a' }) } });
  eq(bad.status, 400, 'realm with a slash refused');
  eq((await fetch(`${r.base}/signal/lab`)).status, 426, 'GET without upgrade: 426');
  eq((await fetch(`${r.base}/signal/lab`, { method: 'PUT' })).status, 405, 'PUT: 405');
  // a session code does not open a signaling socket
  const s = await fetch(`${r.base}/session/lab`, { method: 'POST', headers: { Authorization: r.token({ topic: 'lab' }) } });
  const uri = (await s.json()).uri.replace('/session/', '/signal/');
  const e = await openWs(uri).then(() => null, (err) => err);
  ok(e && e.status === 403, `session code at /signal refused (${e && e.status})`);
});

test('welcome, presence, forged from replaced, order per sender', async () => {
  const a = await peer(r, 'room1', 'alice');
  eq(a.welcome.id, 'alice', 'welcome names own id');
  eq(a.welcome.peers, [], 'nobody else yet');
  eq(a.welcome.iceServers, [], 'iceServers [] (TURN off)');
  const b = await peer(r, 'room1', 'bob');
  eq(b.welcome.peers, ['alice'], 'bob sees alice');
  const j = await a.take((m) => m.type === 'join', 'join');
  eq(j, { type: 'join', from: 'bob' }, 'alice told of bob');
  send(a, { to: 'bob', type: 'offer', from: 'mallory', data: { sdp: 'v=0' }, ref: 1 });
  const o = await b.take((m) => m.type === 'offer', 'offer');
  eq(o.from, 'alice', 'forged from replaced');
  eq(o.data, { sdp: 'v=0' }, 'data carried');
  eq(o.ref, 1, 'ref carried');
  // other realms see nothing
  const c = await peer(r, 'room2', 'carol');
  eq(c.welcome.peers, [], 'another realm is empty');
  const N = 90; // under the default burst (2 x signal_rate 50)
  for (let i = 0; i < N; i++) send(a, { to: 'bob', type: 'candidate', data: { i } });
  for (let i = 0; i < N; i++) send(c, { to: 'bob', type: 'candidate', data: { i } });
  await until(() => b.msgs.filter((m) => m.type === 'candidate').length >= N, 10000, 'candidates');
  const got = b.msgs.filter((m) => m.type === 'candidate').map((m) => m.data.i);
  eq(got, [...Array(N).keys()], 'in order, none from another realm');
  eq(c.msgs.filter((m) => m.type === 'error').map((m) => m.code)[0], 'unknown-peer', 'carol cannot reach bob in room1');
  b.close();
  const l = await a.take((m) => m.type === 'leave', 'leave');
  eq(l, { type: 'leave', from: 'bob' }, 'alice told bob left');
  await closeAll(a, c);
});

test('a discovery group that expires is announced to the realm named like its app', async () => {
  const app = 'ChatApp';
  const a = await peer(r, app, 'alice');
  const other = await peer(r, 'NotChatApp', 'alice');
  const dtok = r.token({ prefix: 'discovery', topic: app, sub: 'alice', scopes: ['read', 'write'] });
  const res = await fetch(`${r.base}/group`, { method: 'POST', headers: { Authorization: dtok, 'Content-Type': 'application/json' },
    body: JSON.stringify({ Name: 'g', AppID: app, TTL: 1, Peers: [], GenesisPeers: [] }) });
  eq(res.status, 201, 'group created');
  const id = await res.json();
  const m = await a.take((x) => x.type === 'group-expired', 'group-expired', 5000);
  eq(m, { type: 'group-expired', id }, 'group-expired with the id');
  send(other, { to: 'nobody', type: 'bye', ref: 'sync' });
  await other.take((x) => x.ref === 'sync', 'sync');
  ok(!other.msgs.some((x) => x.type === 'group-expired'), 'another realm is not told');
  await closeAll(a, other);
});

test('one connection per peer id: 409 peer-connected at access and at redemption', async () => {
  const early = await sigAccess(r, 'room3', 'dup'); // a code taken before the first connects
  eq(early.status, 200, 'first code');
  const first = await peer(r, 'room3', 'dup');
  const again = await sigAccess(r, 'room3', 'dup');
  eq(again.status, 409, 'access 409 while connected');
  eq(again.body.code, 'peer-connected', 'code peer-connected');
  const e = await openWs(early.body.uri).then(() => null, (err) => err);
  ok(e && e.status === 409, `redemption 409 (${e && e.status})`);
  ok(e && JSON.parse(e.body).code === 'peer-connected', `redemption body ${e && e.body}`);
  eq((await sigAccess(r, 'other3', 'dup')).status, 200, 'the same id in another realm is fine');
  await closeAll(first);
  await until(async () => (await sigAccess(r, 'room3', 'dup')).status === 200, 5000, 'id free after close');
});

test('peers claim restricts both sending and presence; hidden and absent peers alike', async () => {
  const a = await peer(r, 'room4', 'alice');
  const b = await peer(r, 'room4', 'bob');
  await a.take((m) => m.type === 'join' && m.from === 'bob', 'join bob');
  const c = await peer(r, 'room4', 'carol', { peers: ['alice'] });
  eq(c.welcome.peers, ['alice'], 'carol sees only alice');
  await a.take((m) => m.type === 'join' && m.from === 'carol', 'alice told of carol');
  // bob may not see carol (carol's claim): no join, unknown-peer both ways
  send(b, { to: 'carol', type: 'message', data: 1, ref: 'b1' });
  send(b, { to: 'nobody', type: 'message', data: 1, ref: 'b2' });
  send(c, { to: 'bob', type: 'message', data: 1, ref: 'c1' });
  const e1 = await b.take((m) => m.ref === 'b1', 'error to bob');
  const e2 = await b.take((m) => m.ref === 'b2', 'error to bob');
  const e3 = await c.take((m) => m.ref === 'c1', 'error to carol');
  eq(e1.code, 'unknown-peer', 'hidden peer: unknown-peer');
  eq({ ...e1, ref: 0 }, { ...e2, ref: 0 }, 'hidden and absent peers get the same error');
  eq(e3.code, 'unknown-peer', 'carol cannot address bob');
  // a claim on the other side: dave's claim leaves out alice, alice has none
  const d = await peer(r, 'room4', 'dave', { peers: ['bob'] });
  eq(d.welcome.peers, ['bob'], 'dave sees bob only');
  send(a, { to: 'dave', type: 'message', data: 1, ref: 'a1' });
  eq((await a.take((m) => m.ref === 'a1', 'error to alice')).code, 'unknown-peer', 'alice cannot address dave');
  send(c, { to: 'alice', type: 'offer', data: 'x' });
  eq((await a.take((m) => m.type === 'offer', 'offer from carol')).from, 'carol', 'allowed both ways delivers');
  await d.close();
  await c.close();
  await a.take((m) => m.type === 'leave' && m.from === 'carol', 'leave carol');
  await b.take((m) => m.type === 'leave' && m.from === 'dave', 'leave dave');
  ok(!b.msgs.some((m) => m.from === 'carol'), 'bob never heard of carol');
  ok(!a.msgs.some((m) => m.from === 'dave'), 'alice never heard of dave');
  await closeAll(a, b);
});

test('errors go to the sender only, ref echoed, and the connection stays open', async () => {
  const a = await peer(r, 'room5', 'alice');
  const b = await peer(r, 'room5', 'bob');
  send(a, 'not json');
  eq((await a.take((m) => m.type === 'error', 'bad json')).code, 'bad-message', 'not JSON: bad-message');
  send(a, { to: 'bob', type: 'welcome', ref: 7 });
  const t = await a.take((m) => m.type === 'error', 'bad type');
  eq([t.code, t.ref], ['bad-message', 7], 'unknown type: bad-message with ref');
  send(a, { type: 'offer', ref: [1, 2] });
  eq((await a.take((m) => m.type === 'error', 'no to')).ref, [1, 2], 'missing to: ref echoed');
  send(a, '{"to":"bob","to":"alice","type":"offer"}');
  eq((await a.take((m) => m.type === 'error', 'dup')).code, 'bad-message', 'duplicate keys refused');
  a.send(Buffer.from('{"to":"bob","type":"offer"}'), { binary: true });
  eq((await a.take((m) => m.type === 'error', 'binary')).code, 'bad-message', 'binary frame refused');
  send(a, { to: 'bob', type: 'message', data: 'x'.repeat(70 * 1024), ref: 'big' });
  const big = await a.take((m) => m.type === 'error', 'too large');
  eq(big.code, 'too-large', 'over 64 KiB: too-large');
  send(a, { to: 'bob', type: 'message', data: 'x'.repeat(60 * 1024) });
  send(a, { to: 'bob', type: 'bye', data: null });
  await b.take((m) => m.type === 'bye', 'bye after errors');
  eq(b.msgs.filter((m) => m.type === 'message').length, 1, 'bob got the 60 KiB message, and no error');
  ok(!b.msgs.some((m) => m.type === 'error'), 'no error reached bob');
  await closeAll(a, b);
});

test('rate limit: rate-limited errors, connection open, limit refills', async () => {
  const rl = await startRelay({ args: ['--access-rate', '0', '--signal-rate', '5'] });
  const a = await peer(rl, 'lab', 'alice');
  const b = await peer(rl, 'lab', 'bob');
  for (let i = 0; i < 40; i++) send(a, { to: 'bob', type: 'message', data: i, ref: i });
  await until(() => a.msgs.filter((m) => m.type === 'error').length + 0 >= 25, 5000, 'rate-limited errors');
  const errs = a.msgs.filter((m) => m.type === 'error');
  ok(errs.every((m) => m.code === 'rate-limited'), 'all errors are rate-limited');
  ok(errs.every((m) => typeof m.ref === 'number'), 'refs echoed');
  await until(() => b.msgs.filter((m) => m.type === 'message').length + errs.length >= 40, 5000, 'all accounted');
  const delivered = b.msgs.filter((m) => m.type === 'message').length;
  ok(delivered >= 10 && delivered <= 15, `burst of about 2x rate delivered (${delivered})`);
  await new Promise((res) => setTimeout(res, 400)); // a refill of 2 tokens: the rate itself is under test
  send(a, { to: 'bob', type: 'bye' });
  await b.take((m) => m.type === 'bye', 'bye after the refill');
  await closeAll(a, b);
  await rl.stop();
});

test('a reader that does not read is closed, the rest keep working', async () => {
  const rs = await startRelay({ args: ['--access-rate', '0', '--signal-rate', '0', '--signal-queue', '64KiB'] });
  const a = await peer(rs, 'lab', 'alice');
  const slow = await peer(rs, 'lab', 'slow');
  const c = await peer(rs, 'lab', 'carol');
  slow._socket.pause();
  const chunk = 'y'.repeat(60 * 1024);
  let sent = 0;
  const closed = await withTimeout((async () => {
    for (;;) {
      for (let i = 0; i < 32; i++) send(a, { to: 'slow', type: 'message', data: chunk });
      sent += 32;
      await new Promise((res) => setTimeout(res, 5));
      if (/closing slow reader/.test(rs.log)) return true;
      if (sent > 2000) return false;
    }
  })(), 20000, 'slow reader closed');
  ok(closed, `slow reader closed after ${sent} messages of 60 KiB`);
  send(a, { to: 'carol', type: 'bye' });
  await c.take((m) => m.type === 'bye', 'others still served');
  slow._socket.resume();
  const code = await slow.closed;
  eq(code.code, 1008, 'closed with 1008');
  await closeAll(a, c);
  await rs.stop();
});

test('token expiry closes with 1008, deny too', async () => {
  const rt = await startRelay({ testClock: true, args: ['--access-rate', '0'] });
  const now = Math.floor(Date.now() / 1000);
  const a = await peer(rt, 'lab', 'alice', { exp: now + 60, booking_id: 'bk-x' });
  const b = await peer(rt, 'lab', 'bob', { booking_id: 'bk-y' });
  rt.advance(120 * 1000);
  const ca = await withTimeout(a.closed, 5000, 'expiry close');
  eq(ca.code, 1008, 'expired token: 1008');
  await b.take((m) => m.type === 'leave' && m.from === 'alice', 'bob told alice left');
  const admin = rt.token({ topic: 'admin', scopes: ['relay:admin'], exp: now + 3600 + 120 });
  const d = await fetch(`${rt.base}/bids/deny?bid=bk-y&exp=${now + 7200}`, { method: 'POST', headers: { Authorization: admin } });
  eq(d.status, 204, 'deny 204');
  eq((await withTimeout(b.closed, 5000, 'deny close')).code, 1008, 'denied booking: 1008');
  await rt.stop();
});

run();
