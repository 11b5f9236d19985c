// lib.js: a small harness for relay's node end-to-end tests.
// test(name, fn) registers a test; run() runs them in order, each bounded in time, prints
// "ok"/"not ok" lines, the number of assertions ("assertions: N run, N failed") and the closing
// "N passed, N failed", which counts tests (a test fails when one of its assertions fails or it
// throws); kills every process started with spawnTracked() and exits non-zero on failure.
'use strict';
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const RELAY = process.env.RELAY;
// The test build of the same program (a clock tests can move): see startRelay's testClock.
const RELAY_TEST = process.env.RELAY_TEST || (RELAY && path.join(path.dirname(RELAY), 'test', 'relay'));
const tests = [];
const children = new Set();
const tmpdirs = [];
let passed = 0; // assertions
let failed = 0;

function test(name, fn) {
  tests.push({ name, fn });
}

function ok(cond, what) {
  if (cond) {
    passed++;
  } else {
    failed++;
    console.log(`  not ok - ${what}`);
  }
}

function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  ok(g === w, `${what}: got ${g}, want ${w}`);
}

function tmpdir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-e2e-'));
  tmpdirs.push(d);
  return d;
}

// Run `relay ARGS` synchronously; returns { status, stdout, stderr }.
function relaySync(args, opts = {}) {
  try {
    const stdout = execFileSync(RELAY, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 20000, ...opts });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    return { status: e.status, stdout: e.stdout || '', stderr: e.stderr || '' };
  }
}

function spawnTracked(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// Poll @cond (sync or async) every 20 ms until it returns something truthy, and resolve with
// that; after @ms reject with "timed out after MS ms: WHAT". The bounded wait for a condition.
function until(cond, ms = 5000, what = 'condition') {
  let done = false;
  const poll = (async () => {
    while (!done) {
      const v = await cond();
      if (v) return v;
      await new Promise((res) => setTimeout(res, 20));
    }
    return undefined;
  })();
  return withTimeout(poll, ms, what).finally(() => { done = true; });
}

function killAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
  for (const d of tmpdirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

async function run({ perTestMs = 30000 } = {}) {
  process.on('exit', killAll);
  let testsPassed = 0;
  let testsFailed = 0;
  for (const t of tests) {
    const before = failed;
    let threw = false;
    try {
      await withTimeout(Promise.resolve().then(t.fn), perTestMs, t.name);
    } catch (e) {
      threw = true;
      console.log(`  not ok - ${t.name}: ${e && e.stack ? e.stack : e}`);
    }
    const good = !threw && failed === before;
    if (good) testsPassed++; else testsFailed++;
    console.log(`${good ? 'ok' : 'not ok'} - ${t.name}`);
  }
  killAll();
  console.log(`assertions: ${passed + failed} run, ${failed} failed`);
  console.log(`${testsPassed} passed, ${testsFailed} failed`);
  process.exit(testsFailed ? 1 : 0);
}

module.exports = { test, ok, eq, run, relaySync, spawnTracked, freePort, withTimeout, until, tmpdir, RELAY };

// ---- relay serve fixtures ----

const crypto = require('crypto');

// A self-signed certificate for 127.0.0.1/localhost, made once per test file.
let certCache = null;
function devCert() {
  if (certCache) return certCache;
  const dir = tmpdir();
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  certCache = { cert, key };
  return certCache;
}

function b64u(x) {
  return Buffer.from(x).toString('base64url');
}

// HS256 token with relay's claims; @over replaces or removes (undefined) claims.
function makeToken(secret, over = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { topic: 't', prefix: 'session', scopes: ['read', 'write'], booking_id: 'b1',
    aud: over.aud, iat: now - 1, nbf: now - 1, exp: now + 600, ...over };
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  const sig = crypto.createHmac('sha256', secret).update(input).digest();
  return `${input}.${b64u(sig)}`;
}

// Wait for relay serve's "relay listening" line on @proc's stderr (kept in r.log), then set
// r.port and r.base from the port it bound (it was started with --listen 127.0.0.1:0).
async function awaitListening(proc, r, scheme) {
  await withTimeout(new Promise((resolve, reject) => {
    proc.stderr.on('data', (d) => {
      r.log += d;
      if (/relay listening/.test(r.log)) resolve();
    });
    proc.on('exit', (code) => reject(new Error(`relay serve exited ${code}: ${r.log}`)));
  }), 10000, 'relay serve start');
  const bound = /relay listening on \w+:\/\/\S*:(\d+) /.exec(r.log);
  if (!bound) throw new Error(`no port in relay serve's log: ${r.log}`);
  r.port = Number(bound[1]);
  r.base = `${scheme}://127.0.0.1:${r.port}`;
}

// Start `relay serve`; resolves once it logs that it listens. Without opts.port it binds port 0
// and the fixture reads the port the kernel chose from the log ("relay listening on
// https://127.0.0.1:PORT"): no free-port guess that another process could take first. The
// audience names port 0 too; relay serve puts the bound port in it.
// opts: { args: [...], tls: true, stateDir, secret, port, testClock, env }. r.metricsPort:
// --metrics-listen's. env: variables added to the relay's environment (RELAY_* settings; it has
// only PATH otherwise, so nothing of the caller's environment configures it). testClock: run the test build (build/VARIANT/test/relay, or $RELAY_TEST)
// whose clocks r.advance(ms) moves forward at once (pkg/clock/clock.c), for expiry tests.
async function startRelay(opts = {}) {
  const dir = tmpdir();
  const env = { ...(opts.env || {}), PATH: process.env.PATH };
  let clock = null;
  if (opts.testClock) {
    clock = { file: path.join(dir, 'clock'), ms: 0 };
    fs.writeFileSync(clock.file, Buffer.alloc(8)); // the int64 must exist before relay maps it
    clock.fd = fs.openSync(clock.file, 'r+');
    env.RELAY_TEST_CLOCK_FILE = clock.file;
  }
  const binary = opts.testClock ? RELAY_TEST : RELAY;
  const tls = opts.tls !== false;
  const secret = opts.secret || 'e2e-' + crypto.randomBytes(12).toString('hex');
  const secretFile = path.join(dir, 'secret');
  fs.writeFileSync(secretFile, secret + '\n');
  const scheme = tls ? 'https' : 'http';
  const stateDir = opts.stateDir || path.join(dir, 'state');
  const listenPort = opts.port || 0;
  const args = ['serve', '--listen', `127.0.0.1:${listenPort}`, '--audience', `${scheme}://127.0.0.1:${listenPort}`,
    '--secret-file', secretFile, '--state-dir', stateDir, '--log-level', 'debug'];
  if (tls) {
    const c = devCert();
    args.push('--cert', c.cert, '--key', c.key);
  } else {
    args.push('--insecure-http');
  }
  args.push(...(opts.args || []));
  const proc = spawnTracked(binary, args, { env });
  const r = { proc, port: 0, base: '', secret, secretFile, stateDir, log: '', exited: null };
  r.exitPromise = new Promise((resolve) => proc.on('exit', (code, signal) => {
    r.exited = { code, signal };
    resolve(r.exited);
  }));
  await awaitListening(proc, r, scheme);
  const base = r.base;
  const metrics = /metrics listening on http:\/\/\S*:(\d+)$/m.exec(r.log);
  if (metrics) r.metricsPort = Number(metrics[1]);
  r.token = (over = {}) => makeToken(secret, { aud: base, ...over });
  // Move the relay's clocks (wall and monotonic) @ms forward: written in place, never
  // truncated, since relay reads the mapped int64 on every clock call.
  r.advance = (ms) => {
    if (!clock) throw new Error('startRelay({ testClock: true }) to move the clock');
    clock.ms += ms;
    const b = Buffer.alloc(8);
    if (os.endianness() === 'LE') b.writeBigInt64LE(BigInt(clock.ms)); else b.writeBigInt64BE(BigInt(clock.ms));
    fs.writeSync(clock.fd, b, 0, 8, 0);
  };
  r.stop = async (signal = 'SIGTERM') => {
    const t0 = Date.now();
    if (!r.exited) proc.kill(signal);
    const e = await withTimeout(r.exitPromise, 10000, 'relay serve exit');
    return { ...e, ms: Date.now() - t0 };
  };
  // Wait until the relay's log matches @re (for events only the server sees).
  r.waitLog = (re, ms = 5000) => withTimeout(new Promise((resolve) => {
    const check = () => { if (re.test(r.log)) { proc.stderr.off('data', check); resolve(); } };
    proc.stderr.on('data', check);
    check();
  }), ms, `log ${re}`);
  return r;
}

// POST the access URL; resolves { status, body (parsed JSON or text), headers }.
async function access(r, topic, token, init = {}) {
  const headers = token === undefined ? {} : { Authorization: token };
  return post(`${r.base}/session/${topic}`, { headers, ...init });
}

// POST @url; resolves { status, body (parsed when JSON), headers }.
async function post(url, init) {
  const res = await fetch(url, { method: 'POST', ...init });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: res.status, body, headers: res.headers };
}

// POST /signal/{realm} for peer @id with a token of @r's (claims in @over); resolves as access().
function sigAccess(r, realm, id, over = {}) {
  const tok = r.token({ topic: realm, prefix: 'signal', sub: id, ...over });
  return post(`${r.base}/signal/${realm}`, { headers: { Authorization: tok } });
}

// POST /meet/{id} with a token of @r's for that meeting (claims in @over); resolves as access().
function meetAccess(r, id, over = {}) {
  const tok = r.token({ topic: id, prefix: 'meet', ...over });
  return post(`${r.base}/meet/${id}`, { headers: { Authorization: tok } });
}

// Open a websocket of JSON messages (/signal, /meet) and resolve once its welcome came
// (ws.welcome). ws.msgs holds the messages not taken yet, from the first (those that came with
// the upgrade's answer too); ws.take(pred, what, ms) resolves the first that matches, removed.
async function openJsonWs(uri, name) {
  const ws = await openWs(uri);
  ws.msgs = ws.inbox.map((m) => JSON.parse(m.data.toString()));
  ws.on('message', (d) => ws.msgs.push(JSON.parse(d.toString())));
  ws.take = (pred, what, ms = 5000) => until(() => {
    const i = ws.msgs.findIndex(pred);
    return i >= 0 ? ws.msgs.splice(i, 1)[0] : null;
  }, ms, `${name}: ${what}`);
  ws.welcome = await ws.take((m) => m.type === 'welcome', 'welcome');
  return ws;
}

// A STUN Binding request (RFC 8489 section 5) carrying USERNAME = @tag, from the UDP socket
// @sock to 127.0.0.1:@port; resolves true when the answer is a Binding success.
function stunBinding(sock, port, tag) {
  const user = Buffer.from(tag);
  const pad = (4 - (user.length % 4)) % 4;
  const msg = Buffer.alloc(20 + 4 + user.length + pad);
  msg.writeUInt16BE(0x0001, 0); // Binding request
  msg.writeUInt16BE(4 + user.length + pad, 2);
  msg.writeUInt32BE(0x2112a442, 4); // magic cookie
  crypto.randomBytes(12).copy(msg, 8); // transaction id
  msg.writeUInt16BE(0x0006, 20); // USERNAME
  msg.writeUInt16BE(user.length, 22);
  user.copy(msg, 24);
  return new Promise((resolve, reject) => {
    sock.once('message', (m) => resolve(m.readUInt16BE(0) === 0x0101));
    sock.once('error', reject);
    sock.send(msg, port, '127.0.0.1');
  });
}

// Open a websocket and resolve once open, or reject with the HTTP status of a refusal.
function openWs(uri) {
  const WebSocket = require('ws');
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(uri, { rejectUnauthorized: false });
    ws.inbox = [];
    ws.closed = new Promise((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      ws.inbox.push({ data: Buffer.from(data), isBinary });
      if (ws.waiter && ws.inbox.length >= ws.waiter.n) { const w = ws.waiter; ws.waiter = null; w.resolve(); }
    });
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (req, res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => { const e = new Error(`HTTP ${res.statusCode}`); e.status = res.statusCode; e.body = b; reject(e); });
    });
    ws.on('error', reject);
  });
}

// Resolve when @ws has received at least @n messages.
function received(ws, n, ms = 5000) {
  if (ws.inbox.length >= n) return Promise.resolve();
  return withTimeout(new Promise((resolve) => { ws.waiter = { n, resolve }; }), ms, `${n} messages`);
}

// Access and open in one go.
async function join(r, topic, over = {}) {
  const a = await access(r, topic, r.token({ topic, ...over }));
  if (a.status !== 200) throw new Error(`access ${topic}: ${a.status} ${JSON.stringify(a.body)}`);
  return openWs(a.body.uri);
}

// Start `relay host ARGS`; p.err collects its log, p.logged(re) waits for a line, p.done its exit code.
function relayHost(args) {
  const p = spawnTracked(RELAY, ['host', ...args], { env: { PATH: process.env.PATH } });
  p.err = '';
  p.stderr.on('data', (d) => { p.err += d; });
  // 'close', not 'exit': by then everything it wrote has been read
  p.done = new Promise((resolve) => p.on('close', (code) => resolve(code)));
  p.logged = (re, ms = 10000) => withTimeout(new Promise((resolve) => {
    const check = () => { if (re.test(p.err)) { p.stderr.off('data', check); resolve(); } };
    p.stderr.on('data', check);
    check();
  }), ms, `relay host log ${re}`);
  return p;
}

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; // the dev certificate is self-signed
process.removeAllListeners('warning');

Object.assign(module.exports, { startRelay, awaitListening, makeToken, access, sigAccess, meetAccess, stunBinding, openWs,
  openJsonWs, received, join, devCert, relayHost });
