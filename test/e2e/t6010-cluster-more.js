// t6010: more of scale-out through Redis (--redis), with a redis-server started here on
// 127.0.0.1 and two relays a and b sharing it: a deny at a ends a TURN allocation held at b
// within a second (coturn's turnutils_uclient as the TURN client, as in t2010); discovery groups
// live in Redis: created at a, read, patched and deleted at b, each app seeing only its own,
// expiring after their TTL everywhere; a private channel's client at b reaches its host at a
// (b answers with a uri at a, where the pairing happens).
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { test, ok, eq, run, startRelay, until, freePort, spawnTracked, tmpdir, openWs, withTimeout, access } = require('./lib.js');

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
  await b.waitLog(/allocation for 'bk-turn'/, 10000);
  await until(async () => await metric(b, 'relay_turn_to_peer_packets_total') > 10, 10000, 'relaying at b');
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

test('a deny lengthened at a holds at c once the first one has ended (c on a test clock)', async () => {
  const { a } = relays;
  const c = await startRelay({ tls: false, secret, testClock: true,
    args: ['--access-rate', '0', '--redis', `redis://127.0.0.1:${redisPort}`, '--instance', 'c'] });
  await until(async () => (await fetch(`${c.base}/healthz`)).status === 200, 5000, 'c linked');
  const deny = async (bid, exp) => (await fetch(`${a.base}/bids/deny?bid=${bid}&exp=${exp}`,
    { method: 'POST', headers: { Authorization: admin(a) } })).status;
  const accessAtC = async (bid) => (await access(c, 'lab', c.token({ topic: 'lab', booking_id: bid }))).status;
  const now = Math.floor(Date.now() / 1000);
  eq(await deny('bk-long', now + 100), 204, 'bk-long denied at a for 100 s');
  eq(await deny('bk-short', now + 100), 204, 'bk-short denied at a for 100 s');
  await until(async () => await accessAtC('bk-short') === 403, 2000, 'both denied at c');
  eq(await deny('bk-long', now + 3600), 204, 'bk-long denied again at a, for an hour');
  // c takes the notes in order from one channel: once this later one is in, so is that one
  eq(await deny('bk-mark', now + 3600), 204, 'a marker denied after it');
  await until(async () => await accessAtC('bk-mark') === 403, 2000, 'the marker denied at c');
  c.advance(200 * 1000);
  eq(await accessAtC('bk-short'), 200, 'bk-short allowed at c 200 s on (its deny ended)');
  eq(await accessAtC('bk-long'), 403, 'bk-long still denied at c 200 s on (the later deny holds)');
  eq((await c.stop()).code, 0, 'c stopped');
});

// ---- discovery groups ----

const GROUP = { Name: 'office', AppID: 'Babble', Peers: [{ NetAddr: 'n1', PubKeyHex: 'k1', Moniker: 'M' }] };

function dtok(r, app = 'Babble', sub = 'alice') {
  return r.token({ prefix: 'discovery', topic: app, sub, scopes: ['read', 'write'] });
}

async function call(r, method, path, token, body) {
  const headers = { Authorization: token };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${r.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: res.status, body: parsed, text };
}

test('a group created at a is read, patched and deleted at b; each app sees its own', async () => {
  const { a, b } = relays;
  const c = await call(a, 'POST', '/group', dtok(a), GROUP);
  eq(c.status, 201, `created at a: ${c.text}`);
  const id = c.body;
  let g;
  await until(async () => (g = await call(b, 'GET', `/groups/${id}`, dtok(b))).status === 200, 1000, 'visible at b');
  eq(g.body.Name, 'office', 'b answers the group made at a');
  const list = await call(b, 'GET', '/groups', dtok(b));
  eq(Object.keys(list.body).join(), id, 'b lists it');
  const other = await call(b, 'GET', `/groups/${id}`, dtok(b, 'OtherApp'));
  eq(other.status, 404, 'another app does not see it at b');
  eq(Object.keys((await call(b, 'GET', '/groups', dtok(b, 'OtherApp'))).body).length, 0, 'nor lists it');
  eq((await call(b, 'PATCH', `/groups/${id}`, dtok(b, 'Babble', 'mallory'), { Name: 'x' })).status, 403,
    'at b, only the creator changes it');
  const p = await call(b, 'PATCH', `/groups/${id}`, dtok(b), { Name: 'renamed' });
  eq(p.status, 200, `patched at b: ${p.text}`);
  await until(async () => (await call(a, 'GET', `/groups/${id}`, dtok(a))).body.Name === 'renamed', 1000,
    'the change seen at a');
  eq((await call(b, 'DELETE', `/groups/${id}`, dtok(b))).status, 204, 'deleted at b');
  await until(async () => (await call(a, 'GET', `/groups/${id}`, dtok(a))).status === 404, 1000, 'gone at a');
  eq(redisCli('--scan', '--pattern', 'relay:g:*'), '', 'and gone from redis');
});

test('a group created at b with the same id as one at a is refused at a (409)', async () => {
  const { a, b } = relays;
  eq((await call(b, 'POST', '/group', dtok(b), { ...GROUP, ID: 'team-1' })).status, 201, 'team-1 at b');
  await until(async () => (await call(a, 'GET', '/groups/team-1', dtok(a))).status === 200, 1000, 'seen at a');
  eq((await call(a, 'POST', '/group', dtok(a), { ...GROUP, ID: 'team-1' })).status, 409, '409 at a');
  eq((await call(a, 'POST', '/group', dtok(a, 'OtherApp'), { ...GROUP, AppID: 'OtherApp', ID: 'team-1' })).status,
    201, 'the same id in another app is another group');
  await until(async () => (await call(b, 'GET', '/groups/team-1', dtok(b, 'OtherApp'))).status === 200, 1000,
    'other app\'s team-1 at b');
  eq((await call(b, 'GET', '/groups/team-1', dtok(b))).body.AppID, 'Babble', 'Babble\'s team-1 unchanged at b');
});

test('TTL: a group expires at every instance and in redis', async () => {
  const { a, b } = relays;
  const c = await call(a, 'POST', '/group', dtok(a), { ...GROUP, TTL: 1 });
  eq(c.status, 201, 'created with TTL 1 s');
  const id = c.body;
  await until(async () => (await call(b, 'GET', `/groups/${id}`, dtok(b))).status === 200, 1000, 'visible at b');
  const key = redisCli('--scan', '--pattern', `relay:g:*${id}`);
  ok(Number(redisCli('PTTL', key)) > 0 && Number(redisCli('PTTL', key)) <= 1000, 'the key expires with the group');
  await until(async () => (await call(b, 'GET', `/groups/${id}`, dtok(b))).status === 404, 3000, 'gone at b');
  await until(async () => (await call(a, 'GET', `/groups/${id}`, dtok(a))).status === 404, 1000, 'gone at a');
  eq(redisCli('EXISTS', key), '0', 'gone from redis');
});

test('a restarted instance takes its groups from redis, not from its own disk', async () => {
  const { a, b } = relays;
  const keep = (await call(a, 'POST', '/group', dtok(a), { ...GROUP, ID: 'keep' })).body;
  const drop = (await call(a, 'POST', '/group', dtok(a), { ...GROUP, ID: 'drop' })).body;
  await until(async () => (await call(b, 'GET', '/groups/drop', dtok(b))).status === 200, 1000, 'drop at b');
  const stateDir = b.stateDir;
  await b.stop();
  eq((await call(a, 'DELETE', `/groups/${drop}`, dtok(a))).status, 204, 'drop deleted at a while b is down');
  const b2 = await startRelay({ tls: false, secret, stateDir,
    args: ['--access-rate', '0', '--redis', `redis://127.0.0.1:${redisPort}`, '--instance', 'b'] });
  relays.b = b2;
  // Linked means loading: b's own copy is dropped at link up, then Redis's is read.
  await until(async () => (await fetch(`${b2.base}/healthz`)).status === 200, 5000, 'b linked again');
  await until(async () => (await call(b2, 'GET', `/groups/${keep}`, dtok(b2))).status === 200, 3000, 'keep at b');
  eq((await call(b2, 'GET', '/groups/drop', dtok(b2))).status, 404, 'drop does not come back from b\'s disk');
});

// ---- private channels: the client at b, its host's control connection at a ----

async function connectAccess(r, host, token) {
  const res = await fetch(`${r.base}/connect/${host}`, { method: 'POST', headers: { Authorization: token } });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: res.status, body };
}
const hostToken = (r, host) => r.token({ topic: host, prefix: 'connect', scopes: ['host'], booking_id: 'host-bk', sub: 'agent' });
const clientToken = (r, host) => r.token({ topic: host, prefix: 'connect', scopes: ['client'], booking_id: 'client-bk', sub: 'alice' });

test('a client at b reaches the host whose control connection is at a', async () => {
  const { a, b } = relays;
  const h = await connectAccess(a, 'lab7', hostToken(a, 'lab7'));
  eq(h.status, 200, 'host access at a');
  const ctl = await openWs(h.body.uri);
  await until(async () => (await connectAccess(b, 'lab7', hostToken(b, 'lab7'))).status === 409, 2000,
    'b knows the host is connected at a');
  eq((await connectAccess(b, 'lab7', hostToken(b, 'lab7'))).body.code, 'host-connected', 'a second host at b: 409');
  const c = await connectAccess(b, 'lab7', clientToken(b, 'lab7'));
  eq(c.status, 200, `client access at b: ${JSON.stringify(c.body)}`);
  ok(c.body.uri.startsWith(`ws://127.0.0.1:${a.port}/connect/lab7?code=`), `the uri points at a: ${c.body.uri}`);
  const client = await openWs(c.body.uri);
  await until(() => ctl.inbox.length === 1, 5000, 'the host told at a');
  const msg = JSON.parse(ctl.inbox[0].data.toString());
  eq(msg.client, 'client-bk', 'the connect message names the client');
  const end = await openWs(msg.uri);
  client.send(Buffer.from([1, 2, 3]));
  end.send('from the host');
  await until(() => end.inbox.length === 1 && client.inbox.length === 1, 5000, 'both ways');
  eq(end.inbox[0].data, Buffer.from([1, 2, 3]), 'client -> host, bytes kept');
  eq([client.inbox[0].isBinary, client.inbox[0].data.toString()], [false, 'from the host'], 'host -> client, text kept');
  const again = await tryOpenRaw(c.body.uri);
  ok(again !== 'open', `the code is used up (${again})`);
  client.close(4001, 'bye');
  eq((await withTimeout(end.closed, 3000, 'host end closed')).code, 4001, 'close code carried');
  ctl.close();
  await until(async () => (await connectAccess(b, 'lab7', clientToken(b, 'lab7'))).status === 503, 2000,
    'b learns the host left');
  eq((await connectAccess(b, 'lab7', clientToken(b, 'lab7'))).body.code, 'host-offline', 'then 503 host-offline at b');
});

// 'open', or how @uri was refused (HTTP status or close code).
async function tryOpenRaw(uri) {
  let ws;
  try { ws = await openWs(uri); } catch (e) { return e.status; }
  const closed = await Promise.race([ws.closed, new Promise((res) => setTimeout(() => res(null), 700))]);
  if (closed) return closed.code;
  ws.close();
  return 'open';
}

test('redis down: changes refused with 503, reads go on', async () => {
  const { a } = relays;
  redisCli('CONFIG', 'SET', 'requirepass', 'locked-out');
  redisCli('-a', 'locked-out', '--no-auth-warning', 'CLIENT', 'KILL', 'TYPE', 'normal');
  await until(async () => (await fetch(`${a.base}/healthz`)).status === 503, 5000, 'a sees redis gone');
  const c = await call(a, 'POST', '/group', dtok(a), GROUP);
  eq(c.status, 503, `create refused: ${c.text}`);
  eq((await call(a, 'GET', '/groups/keep', dtok(a))).status, 200, 'read from the local copy');
  redisCli('-a', 'locked-out', '--no-auth-warning', 'CONFIG', 'SET', 'requirepass', '');
  await until(async () => (await fetch(`${a.base}/healthz`)).status === 200, 10000, 'a back');
  eq((await call(a, 'POST', '/group', dtok(a), GROUP)).status, 201, 'changes accepted again');
});

run();
