// t6000: scale-out through Redis (--redis). A redis-server started here on 127.0.0.1 and three
// relays a, b, c sharing it: topic messages cross instances exactly once and in order (text and
// binary, boundaries kept), a code issued at one instance is redeemable once at any, deny at
// one closes and refuses everywhere and survives a restart, /status?scope=cluster lists every
// instance; with Redis killed each instance goes on serving its own readers and /healthz says
// 503; with Redis back, cross-instance delivery resumes by itself.
'use strict';
const { execFileSync } = require('child_process');
const { test, ok, eq, run, startRelay, access, openWs, received, until, withTimeout, freePort,
  spawnTracked, tmpdir } = require('./lib.js');

const secret = 'cluster-' + require('crypto').randomBytes(8).toString('hex');
const exp = () => Math.floor(Date.now() / 1000) + 3600;
let redis = null;
let redisPort = 0;
const relays = {};

async function startRedis() {
  const dir = tmpdir();
  const p = spawnTracked('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dir]);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  await until(() => /Ready to accept connections/.test(out), 10000, 'redis-server ready');
  p.exitPromise = new Promise((resolve) => p.on('exit', resolve));
  return p;
}

function redisCli(...args) {
  return execFileSync('redis-cli', ['-p', String(redisPort), ...args], { encoding: 'utf8', timeout: 5000 }).trim();
}

// Instances subscribed to @topic's channel, as Redis counts them.
function subscribers(topic) {
  return Number(redisCli('PUBSUB', 'NUMSUB', `relay:t:${topic}`).split('\n')[1]);
}

async function startInstance(name, opts = {}) {
  return startRelay({ tls: false, secret, stateDir: opts.stateDir,
    args: ['--access-rate', '0', '--redis', `redis://127.0.0.1:${redisPort}`, '--instance', name] });
}

async function health(r, query = '') {
  const res = await fetch(`${r.base}/healthz${query}`);
  return { status: res.status, body: await res.json() };
}

// The uri of @a's access answer, pointed at relay @r instead.
function at(r, uri) {
  const u = new URL(uri);
  u.port = String(r.port);
  return u.toString();
}

async function issue(r, topic, over = {}) {
  const a = await access(r, topic, r.token({ topic, ...over }));
  if (a.status !== 200) throw new Error(`access ${topic}: ${a.status} ${JSON.stringify(a.body)}`);
  return a.body.uri;
}

// Open @uri: 'open' once admitted (a websocket that stays open), else how it was refused: the
// HTTP status, or the close code when it was closed before any message.
async function tryOpen(uri) {
  let ws;
  try {
    ws = await openWs(uri);
  } catch (e) {
    return { refused: e.status };
  }
  const closed = await Promise.race([ws.closed, new Promise((res) => setTimeout(() => res(null), 700))]);
  if (closed) return { refused: closed.code, reason: closed.reason, inbox: ws.inbox.length };
  return { ws };
}

async function joinAt(r, topic, over = {}) {
  return openWs(await issue(r, topic, over));
}

const admin = (r) => r.token({ topic: 'admin', scopes: ['relay:admin'] });

async function bids(r, method, path) {
  const res = await fetch(`${r.base}${path}`, { method, headers: { Authorization: admin(r) } });
  return res.status;
}

test('start redis and three instances', async () => {
  redisPort = await freePort();
  redis = await startRedis();
  for (const n of ['a', 'b', 'c']) relays[n] = await startInstance(n);
  for (const n of ['a', 'b', 'c'])
    await until(async () => (await health(relays[n])).status === 200, 5000, `${n} linked to redis`);
  ok(/instance 'a'/.test(relays.a.log), 'a logs its instance name');
});

test('writer on a, readers on a, b and c: every message once, in order, text and binary', async () => {
  const { a, b, c } = relays;
  const readers = [await joinAt(a, 'lab', { scopes: ['read'] }), await joinAt(b, 'lab', { scopes: ['read'] }),
    await joinAt(c, 'lab', { scopes: ['read'] })];
  const writer = await joinAt(a, 'lab', { scopes: ['write'] });
  await until(() => subscribers('lab') === 3, 5000, 'three instances subscribed');
  const sent = [];
  for (let i = 0; i < 60; i++) {
    const binary = i % 2 === 1;
    const len = i === 0 ? 0 : i === 7 ? 100000 : 1 + (i * 37) % 3000;
    const data = binary ? Buffer.alloc(len, i) : Buffer.from(`m${i}:`.padEnd(len, 'x').slice(0, Math.max(len, 0)));
    sent.push({ data, binary });
    writer.send(data, { binary });
  }
  writer.send('end');
  for (const ws of readers) await received(ws, 61, 10000);
  for (const [i, ws] of readers.entries()) {
    const got = ws.inbox.slice(0, 60);
    ok(got.every((m, k) => m.isBinary === sent[k].binary && m.data.equals(sent[k].data)),
      `reader ${'abc'[i]}: every message in order, type and bytes kept`);
    eq(ws.inbox[60].data.toString(), 'end', `reader ${'abc'[i]}: the last one last`);
  }
  // One more round trip: any duplicate would have arrived before it.
  writer.send('again');
  for (const ws of readers) await received(ws, 62);
  for (const [i, ws] of readers.entries()) eq(ws.inbox.length, 62, `reader ${'abc'[i]}: nothing twice`);
  const m = await (await fetch(`${a.base}/metrics`)).text();
  ok(/relay_cluster_info\{instance="a"\} 1/.test(m), '/metrics names the instance');
  for (const ws of [...readers, writer]) ws.close();
});

test('a code issued at a is redeemed at b once; then refused at a and b', async () => {
  const { a, b } = relays;
  const uri = await issue(a, 'codes', { scopes: ['read'] });
  const first = await tryOpen(at(b, uri));
  ok(first.ws, `redeemed at b (${JSON.stringify(first.refused)})`);
  const writer = await joinAt(a, 'codes', { scopes: ['write'] });
  await until(() => subscribers('codes') === 1, 5000, 'b subscribed');
  writer.send('hello b');
  await received(first.ws, 1);
  eq(first.ws.inbox[0].data.toString(), 'hello b', 'the reader admitted at b gets messages from a');
  const atA = await tryOpen(uri);
  eq(atA.refused, 1008, 'the same code refused at a');
  eq(atA.inbox, 0, 'nothing delivered to it');
  const atB = await tryOpen(at(b, uri));
  eq(atB.refused, 1008, 'the same code refused at b');
  first.ws.close();
  writer.close();
});

test('an expired code is refused everywhere', async () => {
  const { a, b } = relays;
  const uri = await issue(a, 'late', { scopes: ['read'] });
  const keys = redisCli('--scan', '--pattern', 'relay:code:*').split('\n').filter(Boolean);
  eq(keys.length, 1, 'the code is kept in redis');
  ok(/^relay:code:[0-9a-f]{64}$/.test(keys[0]) && !keys[0].includes(new URL(uri).searchParams.get('code')),
    'under its hash, not the code itself');
  const key = keys[0];
  const pttl = Number(redisCli('PTTL', key));
  ok(pttl > 0 && pttl <= 30000, `it expires within 30 s (PTTL ${pttl})`);
  redisCli('PEXPIRE', key, '1'); // what 30 s would do, now
  await until(() => redisCli('EXISTS', key) === '0', 5000, 'code expired');
  eq((await tryOpen(at(b, uri))).refused, 1008, 'expired code refused at b');
  eq((await tryOpen(uri)).refused, 1008, 'expired code refused at a');
});

test('deny at a closes a connection at b within a second; c refuses; allow at b undoes it', async () => {
  const { a, b, c } = relays;
  const victim = await joinAt(b, 'lab2', { booking_id: 'bk-x' });
  const bystander = await joinAt(b, 'lab2', { booking_id: 'bk-y' });
  const t0 = Date.now();
  eq(await bids(a, 'POST', `/bids/deny?bid=bk-x&exp=${exp()}`), 204, 'deny at a');
  const closed = await withTimeout(victim.closed, 1000, 'closed at b within a second');
  eq([closed.code, closed.reason], [1008, 'booking cancelled'], 'closed as cancelled');
  ok(Date.now() - t0 < 1000, `within a second (${Date.now() - t0} ms)`);
  eq(bystander.readyState, 1, 'other booking still connected at b');
  const refused = await access(c, 'lab2', c.token({ topic: 'lab2', booking_id: 'bk-x' }));
  eq(refused.status, 403, 'new access at c refused');
  eq(refused.body.message, 'booking denied', 'reason');
  eq(await bids(b, 'POST', `/bids/allow?bid=bk-x&exp=${exp()}`), 204, 'allow at b');
  await until(async () => (await access(c, 'lab2', c.token({ topic: 'lab2', booking_id: 'bk-x' }))).status === 200,
    2000, 'access at c allowed again');
  ok(/^allow /.test(redisCli('HGET', 'relay:bookings', 'bk-x')), 'allowed in redis now');
  bystander.close();
});

test('the deny list survives a restart (from redis, with a fresh state dir)', async () => {
  const { a } = relays;
  eq(await bids(a, 'POST', `/bids/deny?bid=bk-keep&exp=${exp()}`), 204, 'deny at a');
  await until(() => /^deny /.test(redisCli('HGET', 'relay:bookings', 'bk-keep')), 2000, 'kept in redis');
  eq((await relays.b.stop()).code, 0, 'b stopped');
  relays.b = await startInstance('b');
  await until(async () => (await health(relays.b)).status === 200, 5000, 'b linked again');
  await until(async () => (await access(relays.b, 'lab3', relays.b.token({ topic: 'lab3', booking_id: 'bk-keep' }))).status === 403,
    2000, 'still denied at the restarted b');
});

test('/status?scope=cluster lists every instance (relay:admin)', async () => {
  const { a } = relays;
  const get = async (token) => fetch(`${a.base}/status?scope=cluster`, { headers: { Authorization: token } });
  const names = await until(async () => {
    const res = await get(admin(a));
    if (res.status !== 200) return null;
    const body = await res.json();
    const n = body.instances.map((i) => i.instance).sort();
    return n.length === 3 ? n : null;
  }, 5000, 'three reports');
  eq(names, ['a', 'b', 'c'], 'a, b and c');
  eq((await get(a.token({ topic: 'x', scopes: ['relay:stats'] }))).status, 401, 'relay:stats is not enough');
});

test('redis killed: /healthz 503, local delivery goes on; redis back: cross delivery resumes', async () => {
  const { a, b } = relays;
  const readerA = await joinAt(a, 'lab4', { scopes: ['read'] });
  const readerB = await joinAt(b, 'lab4', { scopes: ['read'] });
  const writer = await joinAt(a, 'lab4', { scopes: ['write'] });
  await until(() => subscribers('lab4') === 2, 5000, 'a and b subscribed');
  writer.send('before');
  await received(readerB, 1);
  redis.kill('SIGKILL');
  await redis.exitPromise;
  const h = await until(async () => { const x = await health(a); return x.status === 503 ? x : null; }, 5000, 'a unhealthy');
  ok(/redis/.test(h.body.status), `the reason names redis (${h.body.status})`);
  eq((await health(a, '?live')).status, 200, '/healthz?live stays 200');
  writer.send('during');
  await received(readerA, 2);
  eq(readerA.inbox[1].data.toString(), 'during', 'local reader served while redis is down');
  const local = await tryOpen(await issue(a, 'lab4', { scopes: ['read'] }));
  ok(local.ws, 'a new local connection while redis is down');
  if (local.ws) local.ws.close();
  const writerB = await joinAt(b, 'lab4', { scopes: ['write'] });
  writerB.send('local at b');
  await received(readerB, 2);
  eq(readerB.inbox[1].data.toString(), 'local at b', 'b serves its own readers too');
  const m = await (await fetch(`${a.base}/metrics`)).text();
  ok(/relay_cluster_not_crossed_total\{reason="redis_down"\} [1-9]/.test(m), 'what could not cross is counted');
  redis = await startRedis();
  for (const r of [a, b]) await until(async () => (await health(r)).status === 200, 10000, 'linked again');
  await until(() => subscribers('lab4') === 2, 5000, 'subscribed again');
  writer.send('after');
  await received(readerB, 3);
  eq(readerB.inbox.map((x) => x.data.toString()), ['before', 'local at b', 'after'], 'b: cross delivery resumed');
  await received(readerA, 3);
  eq(readerA.inbox.map((x) => x.data.toString()), ['before', 'during', 'after'],
    'a: what could not cross during the outage is not replayed later');
  for (const ws of [readerA, readerB, writer, writerB]) ws.close();
});

test('a frozen redis (SIGSTOP: no socket closes) is noticed, and its thaw too', async () => {
  const { a } = relays;
  redis.kill('SIGSTOP');
  try {
    const h = await until(async () => { const x = await health(a); return x.status === 503 ? x : null; }, 8000, 'a unhealthy');
    ok(/redis/.test(h.body.status), `the reason names redis (${h.body.status})`);
  } finally {
    redis.kill('SIGCONT');
  }
  await until(async () => (await health(a)).status === 200, 10000, 'a linked again');
});

test('stop', async () => {
  for (const n of ['a', 'b', 'c']) eq((await relays[n].stop()).code, 0, `${n} stopped cleanly`);
  redis.kill('SIGTERM');
});

run();
