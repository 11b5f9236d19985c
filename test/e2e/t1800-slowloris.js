// t1800: connection-level hardening of `relay serve`. Thousands of connections that never send a
// byte, and thousands of request heads trickling in a byte every 3 s, must not stop a normal
// client's access call, websocket upgrade, message round trip and /healthz (TLS and plain); one
// address holds at most --max-pending-per-address unanswered connections (a clear refusal), and
// past --max-pending the oldest unanswered one gives way. T1800_QUICK=1 skips the two long tests;
// T1800_DEBUG=1 prints every slow round trip.
'use strict';
const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');
const path = require('path');
const fs = require('fs');
const crypto = require('crypto');
const { test, ok, eq, run, spawnTracked, withTimeout, until, tmpdir, devCert, makeToken, openWs, received, awaitListening,
  RELAY } = require('./lib.js');

const IDLE = 2000;
const TRICKLE = 2000;
const ATTACK_ADDRS = 200; // 127.0.1.1 ... : 20 sockets per address, below the per-address cap
const HOLD_MS = 14000; // longer than a head's deadline (http_timeout 10 s): every socket is cut once
const FDS = 20000;
// Sockets open over RAMP_MS and reopen within REOPEN_MS of being cut, as a patient attacker's do:
// not thousands in one instant, which would be a flood of TLS handshakes, not a slow client.
const RAMP_MS = 3000;
const REOPEN_MS = 5000;

// `relay serve` under bash's `ulimit -n` (node cannot raise a child's limit); exec keeps the pid.
async function startRelay({ tls: useTls = true, args = [] } = {}) {
  const dir = tmpdir();
  const secret = 'e2e-' + crypto.randomBytes(12).toString('hex');
  const secretFile = path.join(dir, 'secret');
  fs.writeFileSync(secretFile, secret + '\n');
  const scheme = useTls ? 'https' : 'http';
  // Port 0, as lib.js's startRelay: the port comes from the log, and so does the audience's.
  const a = ['serve', '--listen', '127.0.0.1:0', '--audience', `${scheme}://127.0.0.1:0`, '--secret-file', secretFile,
    '--state-dir', path.join(dir, 'state'), '--access-rate', '0', '--max-connections', '10000', ...args];
  if (useTls) a.push('--cert', devCert().cert, '--key', devCert().key);
  else a.push('--insecure-http');
  const proc = spawnTracked('bash', ['-c', `ulimit -n ${FDS} && exec "$0" "$@"`, RELAY, ...a],
    { env: { PATH: process.env.PATH } });
  const r = { proc, port: 0, base: '', tls: useTls, log: '' };
  await awaitListening(proc, r, scheme);
  r.token = (over = {}) => makeToken(secret, { aud: r.base, ...over });
  r.stop = async () => {
    if (proc.exitCode === null && !proc.signalCode) {
      const gone = new Promise((resolve) => proc.on('exit', resolve));
      proc.kill('SIGKILL');
      await gone;
    }
    ok(!/AddressSanitizer|runtime error:/.test(r.log), 'no sanitizer report from the relay');
  };
  return r;
}

// One HTTP request on a fresh connection (no pooling: each call pays its own accept).
function request(r, method, p, headers = {}) {
  const mod = r.tls ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request({ host: '127.0.0.1', port: r.port, method, path: p, headers, agent: false,
      rejectUnauthorized: false }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    req.on('error', reject);
    req.end();
  });
}

// The normal client: /healthz, access POST, websocket upgrade, one message to a reader. Returns ms.
async function roundTrip(r, reader, i) {
  const t0 = Date.now();
  const h = await request(r, 'GET', '/healthz');
  if (h.status !== 200) throw new Error(`healthz: ${h.status}`);
  const a = await request(r, 'POST', '/session/rt', { Authorization: r.token({ topic: 'rt', scopes: ['write'] }),
    'Content-Length': '0' });
  if (a.status !== 200) throw new Error(`access: ${a.status} ${a.body}`);
  const ws = await openWs(JSON.parse(a.body).uri);
  ws.send(`ping ${i}`);
  await received(reader, i + 1, 5000);
  ws.close();
  return Date.now() - t0;
}

// Attackers from 127.0.1.x, in a child process (so that their work never delays the measured
// client): @idle sockets that never write, @trickle heads written a byte every 3 s (after the TLS
// handshake on a TLS relay). Each is reopened when the relay cuts it. The child reports
// "live opened cut" once a second on stdout.
function attackChild(port, useTls, idle, trickle) {
  const socks = new Set();
  const stats = { opened: 0, cut: 0 };
  const head = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'y'.repeat(200) + '\r\n\r\n';
  const open = (n, writes) => {
    const opts = { host: '127.0.0.1', port, localAddress: `127.0.1.${1 + (n % ATTACK_ADDRS)}` };
    const s = writes && useTls ? tls.connect({ ...opts, rejectUnauthorized: false }) : net.connect(opts);
    stats.opened++;
    socks.add(s);
    let pos = 0;
    let timer = null;
    const drip = () => {
      if (s.destroyed) return;
      s.write(head[pos++ % head.length]);
      timer = setTimeout(drip, 3000);
    };
    if (writes) s.once(useTls ? 'secureConnect' : 'connect', drip);
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      socks.delete(s);
      stats.cut++;
      setTimeout(() => open(n, writes), Math.random() * REOPEN_MS);
    });
  };
  for (let i = 0; i < idle; i++) setTimeout(() => open(i, false), Math.random() * RAMP_MS);
  for (let i = 0; i < trickle; i++) setTimeout(() => open(i, true), Math.random() * RAMP_MS);
  setInterval(() => process.stdout.write(`${socks.size} ${stats.opened} ${stats.cut}\n`), 1000);
  process.stdin.on('end', () => process.exit(0)); // the parent went away
  process.stdin.resume();
}

function attack(r, { idle, trickle }) {
  const child = spawnTracked(process.execPath, [__filename, 'attack', r.port, r.tls ? 1 : 0, idle, trickle],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const a = { live: 0, opened: 0, cut: 0 };
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop();
    for (const l of lines) [a.live, a.opened, a.cut] = l.split(' ').map(Number);
  });
  a.stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.on('exit', resolve);
    child.kill('SIGKILL');
  });
  return a;
}

// The bound is 1 s per round trip. A sanitizer build (make check) runs the relay several
// times slower under the same TLS handshake load, so there the bound is 3 s.
const BOUND_MS = /(asan|tsan)\/?$/.test(process.env.BUILD || '') ? 3000 : 1000;

async function lockout(useTls) {
  const r = await startRelay({ tls: useTls });
  try {
    const reader = await (async () => {
      const a = await request(r, 'POST', '/session/rt', { Authorization: r.token({ topic: 'rt', scopes: ['read'] }),
        'Content-Length': '0' });
      return openWs(JSON.parse(a.body).uri);
    })();
    const atk = attack(r, { idle: IDLE, trickle: TRICKLE });
    await until(() => atk.live >= (IDLE + TRICKLE) * 0.9, 15000, 'the attack to open its sockets');
    const t0 = Date.now();
    const times = [];
    let failures = 0;
    let i = 0;
    while (Date.now() - t0 < HOLD_MS) {
      try {
        const ms = await withTimeout(roundTrip(r, reader, i), 5000, 'round trip');
        times.push(ms);
        if (ms > 300 && process.env.T1800_DEBUG) console.log(`  # slow at ${Date.now() - t0} ms: ${ms} ms (live ${atk.live})`);
        i++;
      } catch (e) {
        failures++;
        if (process.env.T1800_DEBUG) console.log(`  # failed at ${Date.now() - t0} ms: ${e} (live ${atk.live})`);
        times.push(5000);
        if (failures > 2) break;
      }
    }
    const live = atk.live;
    await atk.stop();
    const max = Math.max(...times);
    console.log(`  # ${useTls ? 'TLS' : 'plain'}: ${times.length} round trips under attack ` +
      `(${atk.opened} attacker sockets opened, ${live} open at the end, ${atk.cut} cut), max ${max} ms, ` +
      `median ${times.sort((x, y) => x - y)[times.length >> 1]} ms`);
    ok(live > (IDLE + TRICKLE) / 2, `the attack held thousands of sockets (${live})`);
    eq(failures, 0, 'no round trip failed');
    ok(times.length >= 10, `round trips throughout the attack (${times.length})`);
    ok(max < BOUND_MS, `every round trip within ${BOUND_MS} ms (max ${max} ms)`);
    ok(atk.cut >= TRICKLE, `trickled heads were cut at their deadline (${atk.cut} cut)`);
    reader.close();
  } finally {
    await r.stop();
  }
}

if (process.argv[2] === 'attack') {
  const [port, useTls, idle, trickle] = process.argv.slice(3).map(Number);
  attackChild(port, !!useTls, idle, trickle);
  return;
}

if (!process.env.T1800_QUICK) {
  test('TLS: 2,000 idle sockets and 2,000 trickled heads do not lock anyone out', () => lockout(true));
  test('plain: 2,000 idle sockets and 2,000 trickled heads do not lock anyone out', () => lockout(false));
}

// A socket from @localAddress; resolves once connected, with .got (bytes read) and .ended.
function rawSocket(r, localAddress) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: r.port, localAddress });
    s.got = '';
    s.ended = false;
    s.on('data', (d) => { s.got += d; });
    s.on('error', () => {});
    s.on('close', () => { s.ended = true; });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

// A full request from @localAddress on a fresh socket; resolves with the raw answer ('' if closed).
async function rawGet(r, localAddress) {
  const s = await rawSocket(r, localAddress);
  s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await until(() => s.ended, 5000, 'answer');
  return s.got;
}

for (const useTls of [false, true]) {
  test(`${useTls ? 'TLS' : 'plain'}: one address holds at most --max-pending-per-address unanswered connections`, async () => {
    const r = await startRelay({ tls: useTls, args: ['--max-pending-per-address', '8'] });
    try {
      const held = [];
      for (let i = 0; i < 12; i++) held.push(await rawSocket(r, '127.0.3.1'));
      await until(() => held.filter((s) => s.ended).length >= 4, 5000, 'refusals');
      eq(held.map((s) => s.ended), [...Array(8).fill(false), ...Array(4).fill(true)], 'the 9th to 12th were refused');
      if (!useTls) {
        ok(/^HTTP\/1.1 429 /.test(held[8].got), `a 429 first: ${held[8].got.split('\r\n')[0]}`);
        eq(JSON.parse(held[8].got.slice(held[8].got.indexOf('\r\n\r\n') + 4)).code, 'too_many_requests', 'JSON code');
        ok(/429/.test(await rawGet(r, '127.0.3.1')), 'a whole request from that address is refused too');
        ok(/^HTTP\/1.1 200 /.test(await rawGet(r, '127.0.3.2')), 'another address is served');
      } else {
        eq(held[8].got, '', 'TLS: closed without a byte');
        const h = await request(r, 'GET', '/healthz');
        eq(h.status, 200, 'another address is served');
      }
      // Answered connections no longer count: a request on a held socket frees its place...
      if (!useTls) {
        held[0].write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
        await until(() => /200/.test(held[0].got), 5000, 'answer on a held socket');
        ok(/^HTTP\/1.1 200 /.test(await rawGet(r, '127.0.3.1')), 'an answered connection frees its place');
      }
      // ...and so does closing: once the held ones are gone the address is served again.
      for (const s of held) s.destroy();
      let ans = '';
      for (let i = 0; i < 50 && !(useTls ? ans === 'ok' : /^HTTP\/1.1 200 /.test(ans)); i++) {
        if (useTls) {
          ans = await new Promise((resolve) => {
            const t = tls.connect({ host: '127.0.0.1', port: r.port, localAddress: '127.0.3.1', rejectUnauthorized: false },
              () => { t.destroy(); resolve('ok'); });
            t.on('error', () => resolve(''));
          });
        } else {
          ans = await rawGet(r, '127.0.3.1');
        }
        if (!ans || /429/.test(ans)) await new Promise((res) => setTimeout(res, 100));
      }
      ok(useTls ? ans === 'ok' : /^HTTP\/1.1 200 /.test(ans), 'served again once its connections closed');
      await until(() => /refused \d+ connection\(s\) over max_pending_per_address \(8\)/.test(r.log), 5000, 'log line');
    } finally {
      await r.stop();
    }
  });
}

test('over --max-pending the oldest unanswered connection is closed, new ones are served', async () => {
  const r = await startRelay({ tls: false, args: ['--max-pending', '50'] });
  try {
    const idle = [];
    for (let i = 0; i < 100; i++) idle.push(await rawSocket(r, `127.0.4.${1 + (i % 50)}`));
    await until(() => idle.filter((s) => s.ended).length >= 50, 5000, 'the oldest 50 closed');
    ok(idle.slice(0, 50).every((s) => s.ended), 'the oldest were closed');
    ok(/^HTTP\/1.1 200 /.test(await rawGet(r, '127.0.4.200')), 'a new client is served');
    await until(() => /closed \d+ slow connection\(s\) over max_pending \(50\)/.test(r.log), 5000, 'log line');
    for (const s of idle) s.destroy();
  } finally {
    await r.stop();
  }
});

// HTTP/2 frames (RFC 9113 §4.1): 24-bit length, type, flags, 31-bit stream id, payload.
function h2frame(type, flags, sid, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(sid, 5);
  return Buffer.concat([h, payload]);
}
const HEADERS = 1;
const SETTINGS = 4;
const CONTINUATION = 9;
const END_STREAM = 1;
const END_HEADERS = 4;
// HPACK (RFC 7541): :method GET, :scheme https, :path /healthz, :authority x (no Huffman).
const HEALTHZ = Buffer.concat([Buffer.from([0x82, 0x87, 0x04, 8]), Buffer.from('/healthz'),
  Buffer.from([0x01, 1]), Buffer.from('x')]);

// An HTTP/2 connection that sends a header block that never ends on stream @sid (after a whole
// request on stream 1 when @sid > 1): empty CONTINUATION frames as fast as the socket takes them.
// Resolves with the ms until the relay closed it, or null if still open after @ms.
function continuationFlood(r, sid, ms) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = tls.connect({ host: '127.0.0.1', port: r.port, ALPNProtocols: ['h2'], rejectUnauthorized: false });
    const burst = Buffer.concat(Array(1000).fill(h2frame(CONTINUATION, 0, sid)));
    let open = true;
    let frames = 0;
    const pump = () => {
      while (open && s.write(burst)) frames += 1000;
    };
    const timer = setTimeout(() => { open = false; s.destroy(); resolve({ closedMs: null, frames }); }, ms);
    s.on('error', () => {});
    s.on('close', () => {
      if (!open) return;
      open = false;
      clearTimeout(timer);
      resolve({ closedMs: Date.now() - t0, frames });
    });
    s.on('drain', pump);
    s.on('data', () => {});
    s.once('secureConnect', () => {
      if (s.alpnProtocol !== 'h2') throw new Error(`ALPN ${s.alpnProtocol}`);
      s.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      s.write(h2frame(SETTINGS, 0, 0));
      if (sid > 1) s.write(h2frame(HEADERS, END_STREAM | END_HEADERS, 1, HEALTHZ));
      s.write(h2frame(HEADERS, END_STREAM, sid, HEALTHZ)); // no END_HEADERS: CONTINUATION must follow
      pump();
    });
  });
}

test('HTTP/2: a header block that never ends is cut at the head deadline, others are served', async () => {
  const r = await startRelay({ tls: true, args: ['--http-timeout', '2s'] });
  try {
    // An HTTP/2 connection and a websocket that got their answers are never cut by the deadline.
    const h2 = require('http2');
    const sess = h2.connect(r.base, { rejectUnauthorized: false });
    sess.on('error', () => {});
    const h2get = () => new Promise((resolve, reject) => {
      const q = sess.request({ ':path': '/healthz' });
      q.on('response', (hd) => { q.resume(); q.on('end', () => resolve(hd[':status'])); });
      q.on('error', reject);
      q.end();
    });
    eq(await h2get(), 200, 'h2 request');
    const a = await request(r, 'POST', '/session/keep', { Authorization: r.token({ topic: 'keep' }), 'Content-Length': '0' });
    const ws = await openWs(JSON.parse(a.body).uri);
    const floods = [continuationFlood(r, 1, 8000), continuationFlood(r, 3, 8000)];
    await new Promise((res) => setTimeout(res, 500));
    const h = await request(r, 'GET', '/healthz');
    eq(h.status, 200, 'served during the floods');
    const [first, later] = await Promise.all(floods);
    console.log(`  # CONTINUATION floods closed after ${first.closedMs} ms (${first.frames} frames) and ` +
      `${later.closedMs} ms (${later.frames} frames, after a whole request)`);
    ok(first.closedMs !== null && first.closedMs < 5000, `first stream's endless head closed (${first.closedMs} ms)`);
    ok(later.closedMs !== null && later.closedMs < 5000, `a later stream's endless head closed (${later.closedMs} ms)`);
    await until(() => /closed \d+ connection\(s\) whose request head took over 2000 ms/.test(r.log), 5000, 'log line');
    eq(await h2get(), 200, 'the answered HTTP/2 connection still serves after the deadline');
    eq(ws.readyState, 1, 'the websocket is still open after the deadline');
    ws.close();
    sess.close();
  } finally {
    await r.stop();
  }
});

// CVE-2025-11677: lws 4.1.6 refuses an unknown Upgrade with a 403, frees the request's header
// table, then still asks the relay to confirm the upgrade with a pointer into it. On a keep-alive
// connection the relay answered a second time (a 400 after the 403) from freed memory. Every
// HTTP/1 connection now closes after its first answer (t1210), so the second request is never
// read; the unknown Upgrade as a first request gets one 403 and a close.
test('CVE-2025-11677: an unknown Upgrade gets one 403 and a close, also after a first request', async () => {
  const r = await startRelay({ tls: false });
  try {
    const a = await rawSocket(r, '127.0.0.1');
    a.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => /\{"status":"ok"\}/.test(a.got), 5000, 'first answer');
    a.write('GET /session/x?code=y HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\n\r\n');
    await until(() => a.ended, 5000, 'the connection closed');
    eq(a.got.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 200'], 'keep-alive: one answer, the second request is not read');
    const b = await rawSocket(r, '127.0.0.1');
    b.write('GET /session/x?code=y HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\n\r\n');
    await until(() => b.ended, 5000, 'the connection closed after the 403');
    const first = b.got.match(/HTTP\/1\.1 \d+/g) || [];
    ok(first.length <= 1 && first.every((a) => a === 'HTTP/1.1 403'),
      `first request: at most one answer, a 403 (got ${JSON.stringify(first)})`);
  } finally {
    await r.stop();
  }
});

run({ perTestMs: 40000 });
