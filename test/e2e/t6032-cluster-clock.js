// t6032: deny/allow versions across instances whose wall clocks disagree (second review of the
// cluster deny list, findings 2-5; reproductions r14, r18, r20, r15): versions follow Redis's
// clock (TIME, read at each link up) and go past every version an instance has seen, so a deny
// made at an instance whose clock is behind or stepped back still wins; ended entries are
// deleted by Redis's clock, not the clock of an instance far ahead; versions or exp Redis's
// script and relay cannot both read exactly are no entry in both. The instances' clocks are
// test clocks (the test build); Redis's TIME is real time.
'use strict';
const crypto = require('crypto');
const { test, ok, eq, run, startRelay, access, until } = require('./lib.js');

const secret = 'cluster-' + crypto.randomBytes(8).toString('hex');
const R = { port: 0, proc: null };
const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const redis = require('./redis-lib.js');
const startRedis = () => redis.startRedis(R);
const redisCli = (...args) => redis.redisCli(R, ...args);
const proxy = () => redis.proxy(R);

// An instance on the test build; @offsetMs: its wall (and monotonic) clock that far from real
// time from its start (r.advance moves it further).
async function startInstance(name, o = {}) {
  const args = ['--access-rate', '0', '--redis', `redis://127.0.0.1:${o.redisPort || R.port}`, '--instance', name];
  const r = await startRelay({ tls: false, secret, testClock: true, args });
  if (o.offsetMs) r.advance(o.offsetMs);
  r.name = name;
  return r;
}

const healthy = async (r) => (await fetch(`${r.base}/healthz`)).status === 200;
const linked = (r, ms = 10000) => until(() => healthy(r), ms, `${r.name} linked`);
const unlinked = (r, ms = 10000) => until(async () => !(await healthy(r)), ms, `${r.name} unlinked`);
const loads = (r) => (r.log.match(/deny.allow list loaded/g) || []).length;
// admin tokens valid whatever the instance's clock says
const adminToken = (r) => r.token({ topic: 'admin', scopes: ['relay:admin'], iat: now() - 3 * 86400, nbf: now() - 3 * 86400, exp: now() + 3 * 86400 });
async function bids(r, what, bid, exp) {
  const res = await fetch(`${r.base}/bids/${what}?bid=${encodeURIComponent(bid)}&exp=${exp}`,
    { method: 'POST', headers: { Authorization: adminToken(r) } });
  return res.status;
}
const accessStatus = async (r, bid) => (await access(r, 'lab', r.token({ topic: 'lab', booking_id: bid,
  iat: now() - 3 * 86400, nbf: now() - 3 * 86400, exp: now() + 3 * 86400 }))).status;
async function metric(r, name) {
  const text = await (await fetch(`${r.base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}
// EVALs Redis was sent (executed or refused)
function evals() {
  const m = /cmdstat_eval:calls=(\d+).*rejected_calls=(\d+)/.exec(redisCli('INFO', 'commandstats'));
  return m ? Number(m[1]) + Number(m[2]) : 0;
}
const entry = (bid) => redisCli('HGET', 'relay:bookings', bid);
async function relink(...rs) {
  const n = rs.map(loads);
  redisCli('CLIENT', 'KILL', 'TYPE', 'pubsub');
  await until(() => rs.every((r, i) => loads(r) > n[i]), 15000, 'reloaded');
}

test('start redis', async () => {
  await startRedis();
});

test('r14: a deny made while unlinked at an instance whose clock is 10 min behind wins', async () => {
  const px = await proxy();
  const a = await startInstance('a14');
  const b = await startInstance('b14', { redisPort: px.port, offsetMs: -600000 });
  await linked(a);
  await linked(b);
  await px.down(); // b links again with its clock behind: it reads Redis's TIME at link up
  await unlinked(b);
  await px.up();
  await linked(b);
  await b.waitLog(/clock is \d+ ms behind redis/, 5000);
  await px.down();
  await unlinked(b);
  const exp = now() + 7200;
  eq(await bids(a, 'allow', 'bk-skew', exp), 204, 'allow at a');
  // the deny is made later than the allow by more than the offset's error (half a round trip)
  await sleep(300);
  eq(await bids(b, 'deny', 'bk-skew', exp), 204, 'then a deny at b (unlinked)');
  await px.up();
  await linked(b);
  await until(() => /^deny /.test(entry('bk-skew')), 5000, 'redis holds the deny (the last change made)');
  await until(async () => await accessStatus(a, 'bk-skew') === 403, 3000, 'a refuses');
  eq(await accessStatus(b, 'bk-skew'), 403, 'b refuses');
  eq((await a.stop()).code, 0, 'a stopped');
  eq((await b.stop()).code, 0, 'b stopped');
  await px.down();
});

test('r18: a deny after a clock step back, of a booking whose entry ended, reaches redis and b', async () => {
  const a = await startInstance('a18');
  const b = await startInstance('b18');
  await linked(a);
  await linked(b);
  eq(await bids(a, 'deny', 'bk-s', now() + 2), 204, 'deny bk-s at a until +2 s');
  await until(async () => await accessStatus(b, 'bk-s') === 403, 3000, 'b refuses');
  a.advance(61000); // a's tidy runs: the ended entry leaves a's store
  await until(async () => await accessStatus(a, 'bk-s') === 200, 5000, 'ended at a');
  await a.waitLog(/deny list: \d+ ended entries removed/, 5000); // a's tidy dropped bk-s
  a.advance(-3600000 - 61000); // then a's clock steps back an hour
  const exp = now() + 3600;
  eq(await bids(a, 'deny', 'bk-s', exp), 204, 'bk-s denied again at a (until +1 h)');
  await until(() => entry('bk-s').split(' ')[1] === String(exp), 3000, 'redis holds the new deny');
  await until(async () => await accessStatus(b, 'bk-s') === 403, 3000, 'b refuses bk-s');
  eq((await a.stop()).code, 0, 'a stopped');
  eq((await b.stop()).code, 0, 'b stopped');
});

test('r20: an instance 2 days ahead does not delete live denies from redis', async () => {
  const a = await startInstance('a20');
  await linked(a);
  eq(await bids(a, 'deny', 'bk-live', now() + 3600), 204, 'deny bk-live at a (1 h)');
  await until(() => /^deny /.test(entry('bk-live')), 3000, 'in redis');
  const c = await startInstance('c20', { offsetMs: 2 * 86400000 });
  await linked(c);
  // c's clock reads Redis's TIME first, so its load no longer even sends a delete; were one sent,
  // a later write of c's on the same connection is done after it: wait for that
  eq(await bids(c, 'deny', 'bk-mark20', now() + 3 * 86400), 204, 'a marker denied at c (its clock 2 days on)');
  await until(() => /^deny /.test(entry('bk-mark20')), 3000, 'the marker in redis');
  ok(/^deny /.test(entry('bk-live')), `redis still holds bk-live: ${entry('bk-live')}`);
  const d = await startInstance('d20');
  await linked(d);
  eq(await accessStatus(d, 'bk-live'), 403, 'fresh d refuses bk-live');
  for (const r of [a, c, d]) eq((await r.stop()).code, 0, `${r.name} stopped`);
});

test('r15: versions past 2^53 and exp past 9999 are no entry in relay and in redis', async () => {
  const a = await startInstance('a15');
  const b = await startInstance('b15');
  await linked(a);
  await linked(b);
  const exp = now() + 3600;
  // A: 21 digits (relay refused it, Lua read 1e20 and kept it against every later change)
  redisCli('HSET', 'relay:bookings', 'bk-g', `allow ${exp} 99999999999999999999`);
  // B: INT64_MAX (relay took it; its next change overflowed)
  redisCli('HSET', 'relay:bookings', 'bk-max', `allow ${exp} 9223372036854775807`);
  // an exp past year 9999
  redisCli('HSET', 'relay:bookings', 'bk-exp', `allow 253402300800 5`);
  await relink(a, b);
  for (const bid of ['bk-g', 'bk-max', 'bk-exp']) {
    eq(await bids(a, 'deny', bid, exp), 204, `deny ${bid} at a`);
    await until(() => /^deny /.test(entry(bid)), 3000, `redis overwrote ${bid} with the deny`);
    await until(async () => await accessStatus(b, bid) === 403, 3000, `b refuses ${bid}`);
    const ver = Number(entry(bid).split(' ')[2]);
    ok(ver < 2 ** 53 && ver > 0, `${bid}'s version is below 2^53 (${ver})`);
  }
  await relink(a, b);
  for (const bid of ['bk-g', 'bk-max', 'bk-exp']) {
    eq(await accessStatus(a, bid), 403, `a refuses ${bid} after a relink`);
    eq(await accessStatus(b, bid), 403, `b refuses ${bid} after a relink`);
  }
  eq((await a.stop()).code, 0, 'a stopped');
  eq((await b.stop()).code, 0, 'b stopped');
});

test('r17: while redis refuses writes, only the refused change is written again', async () => {
  const N = 2000, exp = now() + 3600;
  redisCli('EVAL', `for i=1,${N} do redis.call('HSET','relay:bookings','bk-wb-'..i,'deny '..ARGV[1]..' 1') end return 1`,
    '0', String(exp));
  const a = await startInstance('a17');
  await linked(a);
  await a.waitLog(/\d{4} deny.allow entries written back/, 10000); // 10 or more EVALs of 200
  redisCli('REPLICAOF', '127.0.0.1', '1'); // read-only: writes refused (READONLY)
  try {
    const f0 = await metric(a, 'relay_cluster_bid_writes_failed_total');
    const passes0 = (a.log.match(/entries written back/g) || []).length;
    const e0 = evals();
    eq(await bids(a, 'deny', 'bk-ro', exp), 204, 'deny at a (its write refused)');
    await until(async () => await metric(a, 'relay_cluster_bid_writes_failed_total') >= f0 + 3, 10000,
      'the change and two retries refused');
    const f1 = await metric(a, 'relay_cluster_bid_writes_failed_total'), e1 = evals();
    ok(e1 - e0 <= f1 - f0 + 1, `${e1 - e0} EVALs for ${f1 - f0} refused writes: the refused change alone is sent again`);
    eq((a.log.match(/entries written back/g) || []).length, passes0, 'no "written back" line for a failed pass');
  } finally {
    redisCli('REPLICAOF', 'NO', 'ONE');
  }
  await until(() => /^deny /.test(entry('bk-ro')), 10000, 'bk-ro in redis once it takes writes');
  await a.waitLog(/deny.allow list written to redis again/, 5000);
  eq((await a.stop()).code, 0, 'a stopped');
});

test('stop', async () => {
  R.proc.kill('SIGKILL');
  await R.proc.exitPromise;
});

run({ perTestMs: 40000 });
