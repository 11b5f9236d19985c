// t6030: deny and allow across instances sharing Redis (--redis), when links drop, instances
// restart, Redis loses or refuses writes, or changes cross: the last change made wins
// everywhere, and a deny answered 204 at one instance reaches every other, TURN allocations
// included (review of the cluster deny list, findings 1, 2, 3, 5 D, 7). a (with TURN, for /ice)
// links directly; b (TURN, a state dir kept across restarts) through a TCP proxy the test cuts
// to take b's link down alone.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { test, ok, eq, run, startRelay, access, until, freePort, spawnTracked, tmpdir } = require('./lib.js');

const secret = 'cluster-' + crypto.randomBytes(8).toString('hex');
const turnSecret = 'turn-' + crypto.randomBytes(8).toString('hex');
const R = { port: 0, proc: null };
const st = {};
const now = () => Math.floor(Date.now() / 1000);

const redis = require('./redis-lib.js');
const startRedis = () => redis.startRedis(R);
const stopRedis = () => redis.stopRedis(R);
const redisCli = (...args) => redis.redisCli(R, ...args);
const proxy = () => redis.proxy(R);

async function startInstance(name, o = {}) {
  const args = ['--access-rate', '0', '--redis', `redis://127.0.0.1:${o.redisPort || R.port}`, '--instance', name];
  if (o.turn) {
    const f = path.join(tmpdir(), 'turn-secret');
    fs.writeFileSync(f, turnSecret + '\n');
    args.push('--turn-listen', '127.0.0.1:0', '--turn-secret-file', f, '--turn-allow-peer', '127.0.0.1/32');
  }
  const r = await startRelay({ tls: false, secret, stateDir: o.stateDir, args });
  if (o.turn) r.turnPort = Number(/udp\+tcp \S*:(\d+)/.exec(r.log)[1]);
  r.name = name;
  return r;
}

const healthy = async (r) => (await fetch(`${r.base}/healthz`)).status === 200;
const linked = (r, ms = 10000) => until(() => healthy(r), ms, `${r.name} linked`);
const unlinked = (r, ms = 10000) => until(async () => !(await healthy(r)), ms, `${r.name} unlinked`);
async function bids(r, what, bid, exp) {
  const res = await fetch(`${r.base}/bids/${what}?bid=${encodeURIComponent(bid)}&exp=${exp}`,
    { method: 'POST', headers: { Authorization: r.token({ topic: 'admin', scopes: ['relay:admin'] }) } });
  return res.status;
}
const accessStatus = async (r, bid) => (await access(r, 'lab', r.token({ topic: 'lab', booking_id: bid }))).status;
async function iceStatus(r, bid) {
  const res = await fetch(`${r.base}/ice`, { method: 'POST', headers: { Authorization: r.token({ topic: 'lab', booking_id: bid }) } });
  return res.status;
}
async function metric(r, name) {
  const text = await (await fetch(`${r.base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}
// Redis's entry of @bid: 'deny' | 'allow' | '' (none).
const inRedis = (bid) => redisCli('HGET', 'relay:bookings', bid).split(' ')[0];
const restartB = async () => {
  eq((await st.b.stop()).code, 0, 'b stopped');
  st.b = await startInstance('b', { stateDir: st.bState, redisPort: st.px.port, turn: true });
};
// b's link-up load and write-back are done once Redis holds b's marker, written while unlinked.
async function bWrittenBack(marker) {
  await until(() => inRedis(marker) === 'deny', 10000, `b's write-back (${marker}) in redis`);
}

test('start redis, a (TURN) and b (through a proxy, its own state dir)', async () => {
  await startRedis();
  st.px = await proxy();
  st.bState = path.join(tmpdir(), 'b-state');
  st.a = await startInstance('a', { turn: true });
  st.b = await startInstance('b', { stateDir: st.bState, redisPort: st.px.port, turn: true });
  await linked(st.a);
  await linked(st.b);
});

test('1A: a deny made at b while unlinked, b restarted before its link is back, reaches a', async () => {
  await st.px.down();
  await unlinked(st.b);
  eq(await bids(st.b, 'deny', 'bk-restart', now() + 3600), 204, 'deny at b (unlinked)');
  await restartB();
  await st.px.up();
  await linked(st.b);
  await bWrittenBack('bk-restart');
  eq(await accessStatus(st.b, 'bk-restart'), 403, 'b refuses');
  await until(async () => await accessStatus(st.a, 'bk-restart') === 403, 3000, 'a refuses (access)');
  eq(await iceStatus(st.a, 'bk-restart'), 403, 'a refuses /ice');
});

test('1D: allowed earlier, then denied at b while unlinked: b\'s deny holds at a and b', async () => {
  eq(await bids(st.a, 'allow', 'bk-prev', now() + 3600), 204, 'allow at a (linked)');
  await until(() => inRedis('bk-prev') === 'allow', 3000, 'the allow in redis');
  await st.px.down();
  await unlinked(st.b);
  eq(await bids(st.b, 'deny', 'bk-prev', now() + 3600), 204, 'deny at b (unlinked)');
  await restartB();
  await st.px.up();
  await linked(st.b);
  await bWrittenBack('bk-prev');
  eq(await accessStatus(st.b, 'bk-prev'), 403, 'b still refuses (its own deny is the newer change)');
  await until(async () => await accessStatus(st.a, 'bk-prev') === 403, 3000, 'a refuses');
});

test('1B: every deny made while unlinked reaches a, however many (no queue to overflow)', async () => {
  const n = 300;
  await st.px.down();
  await unlinked(st.b);
  const exp = now() + 3600;
  for (let i = 0; i < n; i++) {
    const s = await bids(st.b, 'deny', `bk-n-${i}`, exp);
    if (s !== 204) eq(s, 204, `deny bk-n-${i}`);
  }
  await st.px.up();
  await linked(st.b);
  await until(() => Number(redisCli('HLEN', 'relay:bookings')) >= n, 10000, 'all in redis');
  for (const i of [0, 1, n - 1]) {
    eq(inRedis(`bk-n-${i}`), 'deny', `bk-n-${i} in redis`);
    await until(async () => await accessStatus(st.a, `bk-n-${i}`) === 403, 3000, `a refuses bk-n-${i}`);
  }
});

test('3B: an allow made at b while unlinked, before a deny at a, does not undo that deny', async () => {
  await st.px.down();
  await unlinked(st.b);
  eq(await bids(st.b, 'allow', 'bk-stale', now() + 3600), 204, 't1: allow at b (unlinked)');
  await new Promise((r) => setTimeout(r, 20)); // versions are milliseconds
  eq(await bids(st.a, 'deny', 'bk-stale', now() + 3600), 204, 't2: deny at a');
  eq(await bids(st.b, 'deny', 'bk-mark-3b', now() + 3600), 204, 'a marker at b');
  await st.px.up();
  await linked(st.b);
  await bWrittenBack('bk-mark-3b');
  eq(inRedis('bk-stale'), 'deny', 'redis holds the deny');
  eq(await accessStatus(st.a, 'bk-stale'), 403, 'a refuses');
  eq(await accessStatus(st.b, 'bk-stale'), 403, 'b refuses (took the newer deny at its load)');
});

test('3C: allow at a and deny at b of one booking at once: a, b and redis agree', async () => {
  const bidsC = [];
  for (let i = 0; i < 8; i++) {
    const bid = `bk-both-${i}`;
    bidsC.push(bid);
    eq(await bids(st.a, 'deny', bid, now() + 3600), 204, 'denied first');
    await until(async () => await accessStatus(st.b, bid) === 403, 3000, 'b knows');
    const [x, y] = await Promise.all([bids(st.a, 'allow', bid, now() + 3600), bids(st.b, 'deny', bid, now() + 3600)]);
    eq(x + y, 408, 'both answered 204');
  }
  for (const bid of bidsC) {
    const want = inRedis(bid) === 'deny' ? 403 : 200;
    await until(async () => await accessStatus(st.a, bid) === want && await accessStatus(st.b, bid) === want,
      3000, `a and b agree with redis on ${bid}`);
  }
});

test('5D: "allow, then deny again until +3 s" made at a reaches b, unlinked meanwhile', async () => {
  const t = now();
  eq(await bids(st.a, 'deny', 'bk-short2', t + 3600), 204, 'deny at a for an hour');
  await until(async () => await accessStatus(st.b, 'bk-short2') === 403, 3000, 'b refuses');
  await st.px.down();
  await unlinked(st.b);
  eq(await bids(st.a, 'allow', 'bk-short2', t + 3600), 204, 'allow at a');
  eq(await bids(st.a, 'deny', 'bk-short2', t + 3), 204, 'deny again at a until +3 s');
  eq(await bids(st.b, 'deny', 'bk-mark-5d', t + 3600), 204, 'a marker at b');
  await st.px.up();
  await linked(st.b);
  await bWrittenBack('bk-mark-5d');
  eq(redisCli('HGET', 'relay:bookings', 'bk-short2').split(' ')[1], String(t + 3), 'redis holds the shorter deny');
  await until(async () => now() > t + 3, 5000, '+4 s');
  eq(await accessStatus(st.a, 'bk-short2'), 200, 'a admits after +3 s');
  eq(await accessStatus(st.b, 'bk-short2'), 200, 'b admits after +3 s (as a does)');
});

test('2: redis full (maxmemory, noeviction): the deny is logged, counted, retried until stored', async () => {
  redisCli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
  redisCli('CONFIG', 'SET', 'maxmemory', '1');
  try {
    eq(await bids(st.a, 'deny', 'bk-full', now() + 3600), 204, 'deny at a');
    await until(async () => await accessStatus(st.b, 'bk-full') === 403, 3000, 'b (linked) refuses');
    await st.a.waitLog(/could not be written to redis \(OOM/, 3000);
    ok(await metric(st.a, 'relay_cluster_bid_writes_failed_total') >= 1, 'failed write counted');
    eq(inRedis('bk-full'), '', 'not in redis while full');
  } finally {
    redisCli('CONFIG', 'SET', 'maxmemory', '0');
  }
  await until(() => inRedis('bk-full') === 'deny', 8000, 'in redis once it has room');
  await st.a.waitLog(/written to redis again/, 3000);
  const c = await startInstance('c');
  await linked(c);
  await until(async () => await accessStatus(c, 'bk-full') === 403, 3000, 'c, started afterwards, refuses');
  eq((await c.stop()).code, 0, 'c stopped');
});

test('2: a deny sent over a dead route (no answer, then PING timeout) reaches redis and a', async () => {
  st.px.hole = true;
  eq(await bids(st.b, 'deny', 'bk-route', now() + 3600), 204, 'deny at b (its link still counts as up)');
  await unlinked(st.b, 10000);
  await st.px.down();
  st.px.hole = false;
  await st.px.up();
  await linked(st.b);
  await until(() => inRedis('bk-route') === 'deny', 5000, 'in redis');
  await until(async () => await accessStatus(st.a, 'bk-route') === 403, 3000, 'a refuses');
});

test('7: a TURN allocation at b, unlinked, ends when b links and loads a deny made at a meanwhile', async () => {
  const peerPort = await freePort();
  spawnTracked('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)]);
  const user = `${now() + 600}:bk-turn`;
  const pass = crypto.createHmac('sha1', turnSecret).update(user).digest('base64');
  await st.px.down();
  await unlinked(st.b);
  // About 8 s of sending, far longer than the test waits.
  spawnTracked('turnutils_uclient', ['-p', String(st.b.turnPort), '-e', '127.0.0.1', '-r', String(peerPort),
    '-n', '400', '-m', '1', '-l', '100', '-c', '-u', user, '-w', pass, '127.0.0.1']);
  await st.b.waitLog(/allocation for 'bk-turn'/, 10000);
  eq(await bids(st.a, 'deny', 'bk-turn', now() + 600), 204, 'deny at a');
  ok(await metric(st.b, 'relay_turn_allocations') >= 1, 'still allocated at b (unlinked)');
  await st.px.up();
  await linked(st.b);
  await until(async () => await metric(st.b, 'relay_turn_allocations') === 0, 5000, 'allocation at b ended');
  await st.b.waitLog(/'bk-turn' from .* ended \(booking denied\)/, 1000);
});

test('1C: redis restarted empty: a and b write their lists back, a fresh c refuses', async () => {
  eq(await bids(st.a, 'deny', 'bk-redis', now() + 3600), 204, 'deny at a');
  await until(async () => await accessStatus(st.b, 'bk-redis') === 403, 3000, 'b refuses');
  await stopRedis();
  await unlinked(st.a);
  await startRedis();
  await linked(st.a);
  await linked(st.b);
  await until(() => inRedis('bk-redis') === 'deny' && inRedis('bk-n-0') === 'deny', 5000, 'written back');
  const c = await startInstance('c');
  await linked(c);
  await until(async () => await accessStatus(c, 'bk-redis') === 403, 3000, 'c refuses bk-redis');
  eq(await accessStatus(c, 'bk-restart'), 403, 'c refuses bk-restart');
  eq((await c.stop()).code, 0, 'c stopped');
});

test('stop', async () => {
  eq((await st.a.stop()).code, 0, 'a stopped');
  eq((await st.b.stop()).code, 0, 'b stopped');
  await st.px.down();
  await stopRedis();
});

run({ perTestMs: 30000 });
