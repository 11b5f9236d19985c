// t6020: signaling (/signal/{realm}) across instances: a redis-server started here on 127.0.0.1
// and two relays a and b sharing it. Peers at a and b see each other's join and leave, exchange
// messages with "from" written by the server (a forged one replaced), in order; one connection
// per peer id per realm across both (409 at the access call and at redemption); a peers claim
// restricts across instances, both ways. Meetings (/meet/{id}): participants at a and b learn
// each other's TCP address, and the UDP one after a STUN Binding at their own instance; "left"
// crosses. The id's key in Redis decides a race; an instance killed is forgotten within 3 s.
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');
const { execFileSync } = require('child_process');
const { test, ok, eq, run, startRelay, until, freePort, spawnTracked, tmpdir, openWs, openJsonWs, sigAccess, meetAccess,
  stunBinding, withTimeout } = require('./lib.js');

const secret = 'cluster-' + crypto.randomBytes(8).toString('hex');
let redisPort = 0;
const relays = {};

async function startRedis() {
  const p = spawnTracked('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '-::1',
    '--save', '', '--appendonly', 'no', '--dir', tmpdir()]);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  await until(() => /Ready to accept connections/.test(out), 10000, 'redis-server ready');
  return p;
}

async function metric(r, name) {
  const text = await (await fetch(`${r.base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

async function peer(rel, realm, id, over = {}) {
  const a = await sigAccess(rel, realm, id, over);
  if (a.status !== 200) throw new Error(`signal access ${id}: ${a.status} ${JSON.stringify(a.body)}`);
  return openJsonWs(a.body.uri, id);
}

// Wait until @rel knows @n peers at other instances (their announcements crossed).
const knows = (rel, n) => until(async () => await metric(rel, 'relay_cluster_signal_remote_peers') === n,
  5000, `remote peers ${n}`);
const send = (ws, m) => ws.send(JSON.stringify(m));

test('start redis and two instances', async () => {
  redisPort = await freePort();
  await startRedis();
  for (const n of ['a', 'b'])
    relays[n] = await startRelay({ tls: false, secret,
      args: ['--access-rate', '0', '--redis', `redis://127.0.0.1:${redisPort}`, '--instance', n,
        '--turn-listen', '127.0.0.1:0'] });
  for (const n of ['a', 'b'])
    relays[n].stunPort = Number(/turn listening on udp\+tcp \S*:(\d+)/.exec(relays[n].log)[1]);
  for (const n of ['a', 'b'])
    await until(async () => (await fetch(`${relays[n].base}/healthz`)).status === 200, 5000, `${n} linked`);
});

// hiredis would resolve a host name with a blocking getaddrinfo() on the loop at every
// reconnection: the relay resolves it on libuv's thread pool first. The name path must link up.
test('a Redis host given by name (localhost) is resolved and linked', async () => {
  const c = await startRelay({ tls: false, secret,
    args: ['--access-rate', '0', '--redis', `redis://localhost:${redisPort}`, '--instance', 'c'] });
  try {
    await until(async () => (await fetch(`${c.base}/healthz`)).status === 200, 5000, 'c linked through localhost');
    ok(!/redis unreachable/.test(c.log), 'no failed attempt on the way');
  } finally {
    await c.stop();
  }
});

test('peers at a and b: join, from written by the server, order, 409 across, leave', async () => {
  const { a, b } = relays;
  const alice = await peer(a, 'lab', 'alice');
  eq(alice.welcome.peers, [], 'alice alone');
  await knows(b, 1);
  const bob = await peer(b, 'lab', 'bob');
  eq(bob.welcome.peers, ['alice'], 'bob at b sees alice at a in his welcome');
  eq(await alice.take((m) => m.type === 'join', 'join'), { type: 'join', from: 'bob' }, 'alice told of bob');
  send(alice, { to: 'bob', type: 'offer', from: 'mallory', data: { sdp: 'v=0' }, ref: 7 });
  const o = await bob.take((m) => m.type === 'offer', 'offer');
  eq(o.from, 'alice', 'forged from replaced across instances');
  eq(o.data, { sdp: 'v=0' }, 'data carried');
  eq(o.ref, 7, 'ref carried');
  send(bob, { to: 'alice', type: 'answer', data: { sdp: 'v=1' } });
  const an = await alice.take((m) => m.type === 'answer', 'answer');
  eq([an.from, an.data.sdp], ['bob', 'v=1'], 'answer back from bob');
  const N = 60;
  for (let i = 0; i < N; i++) send(alice, { to: 'bob', type: 'candidate', data: { i } });
  await until(() => bob.msgs.filter((m) => m.type === 'candidate').length >= N, 10000, 'candidates');
  eq(bob.msgs.filter((m) => m.type === 'candidate').map((m) => m.data.i), [...Array(N).keys()], 'in order');

  // one live connection per id: at the access call of the other instance...
  const dup = await sigAccess(b, 'lab', 'alice');
  eq(dup.status, 409, `second alice at b: 409 (${JSON.stringify(dup.body)})`);
  // ...and at redemption: a code issued at b before dave connected at a
  const early = await sigAccess(b, 'lab', 'dave');
  eq(early.status, 200, 'code for dave at b');
  const dave = await peer(a, 'lab', 'dave');
  await knows(b, 2);
  const e = await openWs(early.body.uri).then((w) => { w.close(); return null; }, (err) => err);
  ok(e && e.status === 409, `dave's code at b refused while dave is at a (${e && e.status})`);
  dave.close();
  await dave.closed;
  await knows(b, 1);

  alice.close();
  await alice.closed;
  const l = await bob.take((m) => m.type === 'leave' && m.from === 'alice', 'leave of alice');
  eq(l, { type: 'leave', from: 'alice' }, 'leave crossed to b');
  await knows(b, 0);
  send(bob, { to: 'alice', type: 'offer', data: {}, ref: 9 });
  const err = await bob.take((m) => m.type === 'error', 'error');
  eq([err.code, err.ref], ['unknown-peer', 9], 'alice gone: unknown-peer');
  bob.close();
  await bob.closed;
});

test('a peers claim restricts across instances, both ways', async () => {
  const { a, b } = relays;
  const alice = await peer(a, 'lab2', 'alice');
  const carol = await peer(a, 'lab2', 'carol');
  await knows(b, 2);
  const eve = await peer(b, 'lab2', 'eve', { peers: ['carol'] });
  eq(eve.welcome.peers, ['carol'], 'eve sees only carol');
  eq(await carol.take((m) => m.type === 'join', 'join'), { type: 'join', from: 'eve' }, 'carol told of eve');
  send(eve, { to: 'alice', type: 'offer', data: {}, ref: 1 });
  eq((await eve.take((m) => m.type === 'error', 'error')).code, 'unknown-peer', 'eve cannot reach alice');
  send(alice, { to: 'eve', type: 'offer', data: {}, ref: 2 });
  eq((await alice.take((m) => m.type === 'error', 'error')).code, 'unknown-peer', 'alice cannot reach eve');
  send(carol, { to: 'eve', type: 'offer', data: { x: 1 } });
  eq((await eve.take((m) => m.type === 'offer', 'offer')).from, 'carol', 'carol reaches eve');
  eve.close();
  await eve.closed;
  await carol.take((m) => m.type === 'leave', 'leave of eve');
  eq(alice.msgs.filter((m) => m.from === 'eve'), [], 'alice never told of eve');
  alice.close();
  carol.close();
  await Promise.all([alice.closed, carol.closed]);
});

test('the id key in Redis decides: a connection whose id is held elsewhere is closed', async () => {
  const { a } = relays;
  // as if another instance had taken zed's key a moment ago, its announcement not yet heard
  execFileSync('redis-cli', ['-p', String(redisPort), 'SET', 'relay:peer:lab3/zed', 'someone-else', 'PX', '5000'],
    { encoding: 'utf8', timeout: 5000 });
  const zed = await peer(a, 'lab3', 'zed');
  const c = await zed.closed;
  eq([c.code, c.reason], [1008, 'peer-connected'], 'closed with 1008 peer-connected');
  // and the holder's key was left alone
  const v = execFileSync('redis-cli', ['-p', String(redisPort), 'GET', 'relay:peer:lab3/zed'], { encoding: 'utf8', timeout: 5000 }).trim();
  eq(v, 'someone-else', 'key of the holder kept');
});

async function meet(rel, id) {
  const a = await meetAccess(rel, id);
  eq(a.status, 200, 'meet access');
  const ws = await openJsonWs(a.body.uri, 'meet');
  ws.tcp = `127.0.0.1:${ws._socket.localPort}`;
  return ws;
}

test('a meeting across instances: TCP and UDP addresses, left', async () => {
  const { a, b } = relays;
  const id = crypto.createHash('sha256').update('cluster-meet').digest('hex');
  const other = crypto.createHash('sha256').update('another').digest('hex');
  const pa = await meet(a, id);
  const po = await meet(b, other);
  const pb = await meet(b, id);
  const ab = await pb.take((x) => x.type === 'peer', 'b learns a');
  eq([ab.tcp, ab.udp], [pa.tcp, null], 'b learns a\'s TCP address');
  const ba = await pa.take((x) => x.type === 'peer', 'a learns b');
  eq([ba.tcp, ba.udp], [pb.tcp, null], 'a learns b\'s TCP address');
  const ua = dgram.createSocket('udp4');
  await new Promise((res) => ua.bind(0, '127.0.0.1', res));
  ok(await withTimeout(stunBinding(ua, a.stunPort, pa.welcome.tag), 5000, 'binding'), 'Binding at a');
  const u = await pb.take((x) => x.type === 'peer' && x.udp, 'b learns a\'s UDP address');
  eq([u.peer, u.udp], [ab.peer, `127.0.0.1:${ua.address().port}`], 'UDP address crossed');
  ua.close();
  pa.close();
  await pa.closed;
  eq(await pb.take((x) => x.type === 'left', 'left'), { type: 'left', peer: ab.peer }, 'left crossed');
  eq(po.msgs, [], 'another meeting learns nothing');
  pb.close();
  po.close();
  await Promise.all([pb.closed, po.closed]);
});

test('an instance killed: its peers leave within about 3 s at the others', async () => {
  const { a, b } = relays;
  const alice = await peer(a, 'lab4', 'alice');
  await knows(b, 1);
  const bob = await peer(b, 'lab4', 'bob');
  await alice.take((m) => m.type === 'join', 'join of bob');
  const t0 = Date.now();
  await b.stop('SIGKILL');
  eq(await alice.take((m) => m.type === 'leave', 'leave of bob', 6000), { type: 'leave', from: 'bob' }, 'leave of bob');
  const ms = Date.now() - t0;
  ok(ms < 5000, `bob forgotten in ${ms} ms`);
  bob.terminate();
  alice.close();
  await alice.closed;
});

run();
