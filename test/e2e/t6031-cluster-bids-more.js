// t6031: more of deny and allow across instances sharing Redis (--redis): the link-up load
// against changes made while it runs (a stale entry read before a newer deny arrives; an
// expired entry's clean-up against a new deny of it), entries /bids would refuse, the exp range,
// a second deny with an earlier end, a failing state disk (review of the cluster deny list,
// findings 3, 4, 5 A, 6, 8, 9). a and b run on test clocks (moved together, so their versions
// stay comparable).
'use strict';
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { test, ok, eq, run, startRelay, access, openWs, until, tmpdir } = require('./lib.js');

const secret = 'cluster-' + crypto.randomBytes(8).toString('hex');
const R = { port: 0, proc: null };
const st = {};
const now = () => Math.floor(Date.now() / 1000);

const redis = require('./redis-lib.js');
const startRedis = () => redis.startRedis(R);
const redisCli = (...args) => redis.redisCli(R, ...args);

async function startInstance(name, o = {}) {
  const args = ['--access-rate', '0', '--redis', `redis://127.0.0.1:${R.port}`, '--instance', name];
  if (o.turn) {
    const f = require('path').join(tmpdir(), 'turn-secret');
    require('fs').writeFileSync(f, 'turn-secret\n');
    args.push('--turn-listen', '127.0.0.1:0', '--turn-secret-file', f);
  }
  const r = await startRelay({ tls: false, secret, testClock: o.testClock, args: args.concat(o.args || []) });
  r.name = name;
  return r;
}

const healthy = async (r) => (await fetch(`${r.base}/healthz`)).status === 200;
const linked = (r, ms = 10000) => until(() => healthy(r), ms, `${r.name} linked`);
async function bids(r, what, bid, exp) {
  const res = await fetch(`${r.base}/bids/${what}?bid=${encodeURIComponent(bid)}&exp=${exp}`,
    { method: 'POST', headers: { Authorization: r.token({ topic: 'admin', scopes: ['relay:admin'] }) } });
  return { status: res.status, body: await res.text() };
}
const accessStatus = async (r, bid) => (await access(r, 'lab', r.token({ topic: 'lab', booking_id: bid }))).status;
async function metric(r, name) {
  const text = await (await fetch(`${r.base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}
const entry = (bid) => redisCli('HGET', 'relay:bookings', bid);
const loaded = (r, n) => r.waitLog(new RegExp(`(loaded from redis[^\\n]*[\\s\\S]*){${n}}`), 15000);

test('start redis, a and b (test clocks)', async () => {
  await startRedis();
  st.a = await startInstance('a', { testClock: true, args: ['--allow-no-booking-id'] });
  st.b = await startInstance('b', { testClock: true });
  await linked(st.a);
  await linked(st.b);
});

test('6: exp past year 9999 refused at /bids (400); the last second of 9999 crosses', async () => {
  const before = await metric(st.b, 'relay_cluster_bad_messages_total');
  let r = await bids(st.a, 'deny', 'bk-19', '9223372036854775807');
  eq(r.status, 400, '2^63-1 refused');
  ok(/9999/.test(r.body), `says why: ${r.body}`);
  eq((await bids(st.a, 'deny', 'bk-19', '253402300800')).status, 400, 'year 10000 refused');
  eq((await bids(st.a, 'deny', 'bk-9999', '253402300799')).status, 204, 'end of 9999 taken');
  await until(async () => await accessStatus(st.b, 'bk-9999') === 403, 3000, 'b refuses bk-9999');
  eq(await metric(st.b, 'relay_cluster_bad_messages_total'), before, 'no bad message at b');
});

test('9: entries /bids would refuse are skipped and counted at the link-up load', async () => {
  const exp = now() + 3600;
  const r = await access(st.a, 'lab', st.a.token({ topic: 'lab', booking_id: undefined, sub: 'no-booking' }));
  eq(r.status, 200, 'access without a booking id');
  const ws = await openWs(r.body.uri);
  const before = await metric(st.a, 'relay_cluster_bad_messages_total');
  redisCli('EVAL', `redis.call('HSET', KEYS[1], '', ARGV[1])
    redis.call('HSET', KEYS[1], string.char(255, 254), ARGV[1])
    redis.call('HSET', KEYS[1], string.rep('x', 128), ARGV[1])
    redis.call('HSET', KEYS[1], 'bk-badval', 'deny soon 1')
    redis.call('HSET', KEYS[1], 'bk-seeded', ARGV[1]) return 1`, '1', 'relay:bookings', `deny ${exp} 1`);
  redisCli('CLIENT', 'KILL', 'TYPE', 'pubsub'); // a's and b's links drop and come back: a load
  await loaded(st.a, 2);
  eq(await accessStatus(st.a, 'bk-seeded'), 403, 'the valid entry is applied');
  eq(await accessStatus(st.a, 'bk-badval'), 200, 'the unreadable one is not');
  eq(await metric(st.a, 'relay_cluster_bad_messages_total') - before, 4, 'four entries counted as bad');
  eq(ws.readyState, 1, 'the booking-less websocket is still open');
  ok(!/booking '' /.test(st.a.log), 'nothing done to booking \'\'');
  ws.close();
});

test('3: a list entry older than what an instance holds does not undo it; its write-back mends redis', async () => {
  eq((await bids(st.a, 'deny', 'bk-stale', now() + 3600)).status, 204, 'deny at a');
  await until(async () => await accessStatus(st.b, 'bk-stale') === 403, 3000, 'b refuses');
  // an older allow, as a load could read it before the deny was written
  redisCli('HSET', 'relay:bookings', 'bk-stale', `allow ${now() + 3600} 1`);
  redisCli('CLIENT', 'KILL', 'TYPE', 'pubsub'); // a's and b's links drop and come back: a load
  await loaded(st.b, 3);
  eq(await accessStatus(st.b, 'bk-stale'), 403, 'b still refuses');
  eq(await accessStatus(st.a, 'bk-stale'), 403, 'a still refuses');
  await until(() => /^deny /.test(entry('bk-stale')), 5000, 'the deny written back to redis');
});

test('3 and 4: changes made while another instance\'s link-up load reads older entries hold', async () => {
  const exp = now() + 3600;
  const old = now() - 3 * 86400;
  // 20,000 denies to load, bk-x allowed long ago (version 1), bk-old and bk-gone denied once,
  // ended days ago: a load deletes such entries, each only if unchanged since it read it.
  redisCli('EVAL', `for i = 1, 20000 do redis.call('HSET', KEYS[1], 'bk-f-' .. i, ARGV[1]) end
    redis.call('HSET', KEYS[1], 'bk-x', ARGV[2])
    redis.call('HSET', KEYS[1], 'bk-old', ARGV[3])
    redis.call('HSET', KEYS[1], 'bk-gone', ARGV[3]) return 1`, '1', 'relay:bookings',
  `deny ${exp} 1`, `allow ${exp} 1`, `deny ${old} 1`);
  // Writes wait (reads go on) until UNPAUSE, then run in the order they came: a's denies are
  // written after c has read the older entries, and before c's clean-up of them.
  redisCli('CLIENT', 'PAUSE', '10000', 'WRITE');
  let c;
  try {
    eq((await bids(st.a, 'deny', 'bk-x', exp)).status, 204, 'bk-x denied at a');
    eq((await bids(st.a, 'deny', 'bk-old', exp)).status, 204, 'bk-old denied again at a');
    c = await startInstance('c', { turn: true });
    await loaded(c, 1);
    eq(await accessStatus(c, 'bk-f-20000'), 403, 'c took the list');
  } finally {
    redisCli('CLIENT', 'UNPAUSE');
  }
  await until(() => entry('bk-gone') === '', 5000, 'the entry ended days ago is deleted');
  ok(/^deny /.test(entry('bk-old')), 'bk-old\'s new deny is still in redis');
  ok(/^deny /.test(entry('bk-x')), 'bk-x\'s deny is in redis');
  await until(async () => await accessStatus(c, 'bk-x') === 403, 3000, 'c refuses bk-x');
  await until(async () => await accessStatus(c, 'bk-old') === 403, 3000, 'c refuses bk-old');
  eq((await c.stop()).code, 0, 'c stopped');
  const d = await startInstance('d');
  await linked(d);
  await loaded(d, 1);
  eq(await accessStatus(d, 'bk-old'), 403, 'd (started later) refuses bk-old');
  eq(await accessStatus(d, 'bk-x'), 403, 'd refuses bk-x');
  eq((await d.stop()).code, 0, 'd stopped');
});

// Run @sql on @r's state database through a connection of our own (python3's sqlite3).
function stateSql(r, sql) {
  execFileSync('python3', ['-c', 'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.close()',
    require('path').join(r.stateDir, 'relay.db'), sql], { timeout: 10000 });
}

test('8: another instance\'s deny holds at an instance whose state disk write fails', async () => {
  stateSql(st.b, 'DROP TABLE bookings');
  try {
    eq((await bids(st.a, 'deny', 'bk-disk', now() + 3600)).status, 204, 'deny at a');
    await until(async () => await accessStatus(st.b, 'bk-disk') === 403, 3000, 'b refuses');
    await st.b.waitLog(/applied in memory only/, 3000);
  } finally {
    stateSql(st.b, 'CREATE TABLE bookings(bid TEXT PRIMARY KEY, denied INTEGER NOT NULL, ' +
      'exp INTEGER NOT NULL, ver INTEGER NOT NULL DEFAULT 0)');
  }
});

test('5A: a second deny with an earlier end shortens the first everywhere', async () => {
  const t = now();
  eq((await bids(st.a, 'deny', 'bk-end', t + 60)).status, 204, 'deny at a until +60 s');
  await until(async () => await accessStatus(st.b, 'bk-end') === 403, 3000, 'b refuses');
  eq((await bids(st.b, 'deny', 'bk-end', t + 3)).status, 204, 'deny at b until +3 s');
  await until(() => entry('bk-end').split(' ')[1] === String(t + 3), 3000, 'redis holds +3 s');
  const c = await startInstance('c2', { testClock: true });
  await linked(c);
  await loaded(c, 1);
  eq(await accessStatus(c, 'bk-end'), 403, 'c refuses now');
  for (const r of [st.a, st.b, c]) r.advance(10 * 1000);
  eq(await accessStatus(st.a, 'bk-end'), 200, 'a admits at +10 s');
  eq(await accessStatus(st.b, 'bk-end'), 200, 'b admits at +10 s');
  eq(await accessStatus(c, 'bk-end'), 200, 'c admits at +10 s');
  eq((await c.stop()).code, 0, 'c stopped');
});

test('r13: a fresh instance admits nothing while its first load runs; /healthz 503 until done', async () => {
  const N = 20000, exp = now() + 3600;
  redisCli('EVAL', `for i=1,${N} do redis.call('HSET','relay:bookings','bk-load-'..i,'deny '..ARGV[1]..' 1') end return 1`,
    '0', String(exp));
  const d = await startInstance('d-fresh');
  const toks = [];
  for (let i = 1; i <= N; i += N / 20) toks.push(d.token({ topic: 'lab', booking_id: 'bk-load-' + i }));
  const seen = {};
  let healthyAt = null;
  while (!healthyAt) {
    const h = await fetch(`${d.base}/healthz`);
    const body = await h.text();
    if (h.status === 200) {
      healthyAt = Date.now();
      ok(/loaded from redis/.test(d.log), 'healthz 200 only once the load is done');
    } else {
      seen[body.includes('loading') ? 'loading' : 'other'] = true;
    }
    for (const t of toks) {
      const res = await access(d, 'lab', t);
      seen[res.status] = (seen[res.status] || 0) + 1;
      if (healthyAt) eq(res.status, 403, 'refused once healthy');
    }
  }
  eq(seen[200], undefined, `no denied booking admitted during the load (${JSON.stringify(seen)})`);
  ok(seen[503] > 0, 'access calls before the load answered 503');
  eq((await d.stop()).code, 0, 'd stopped');
  redisCli('EVAL', "for i=1,tonumber(ARGV[1]) do redis.call('HDEL','relay:bookings','bk-load-'..i) end return 1", '0', String(N));
});

test('a version far ahead of the clock (at the 2^53 cap) is refused: later changes still win', async () => {
  // one such entry, read as the highest version seen, made every later change of every
  // booking tie at the cap, where deny wins: an allow after a deny never reached the others
  redisCli('HSET', 'relay:bookings', 'bk-poison', 'allow 1 9007199254740991');
  const e = await startInstance('e');
  const f = await startInstance('f');
  await linked(e);
  await linked(f);
  eq((await bids(e, 'deny', 'bk-cap', now() + 3600)).status, 204, 'deny bk-cap at e');
  await until(async () => await accessStatus(f, 'bk-cap') === 403, 3000, 'f refuses bk-cap');
  eq((await bids(e, 'allow', 'bk-cap', now() + 3600)).status, 204, 'then allow bk-cap at e');
  await until(() => /^allow /.test(entry('bk-cap')), 3000, 'redis holds the allow');
  await until(async () => await accessStatus(f, 'bk-cap') === 200, 3000, 'f admits bk-cap again');
  for (const r of [e, f]) eq((await r.stop()).code, 0, `${r.name} stopped`);
  redisCli('HDEL', 'relay:bookings', 'bk-poison');
});

test('stop', async () => {
  eq((await st.a.stop()).code, 0, 'a stopped');
  eq((await st.b.stop()).code, 0, 'b stopped');
  R.proc.kill('SIGKILL');
  await R.proc.exitPromise;
});

run({ perTestMs: 30000 });
