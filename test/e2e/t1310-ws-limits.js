// t1310: websocket limits a peer cannot talk its way past. A frame header announcing more than
// --max-message (or RELAY_MAX_MESSAGE in the environment) is closed with 1009 at its first bytes;
// --max-memory bounds the messages being received and queued in all, closing the largest holders
// (1009, 1013) while others keep working; a message left incomplete past --message-timeout is
// closed with 1008. The frames are written by hand (RFC 6455 section 5) on a raw socket: the ws
// package will not send what these tests need.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const { test, ok, eq, run, relaySync, startRelay, access, join, received, withTimeout, until } = require('./lib.js');

// ---- a websocket client by hand ----

// Open @uri; resolves a socket whose closeFrame promise gives the server's close { code, reason }.
function rawWs(uri) {
  const u = new URL(uri);
  return withTimeout(new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    sock.closeFrame = new Promise((res) => { sock.gotClose = res; });
    sock.on('error', () => {}); // a reset after the close is fine
    sock.on('close', () => { if (!upgraded) reject(new Error('closed before 101')); sock.gotClose(null); });
    sock.on('connect', () => sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
      'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n\r\n`));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const status = buf.subarray(0, end).toString().split('\r\n')[0];
        buf = buf.subarray(end + 4);
        if (!/^HTTP\/1\.1 101/.test(status)) {
          sock.destroy();
          reject(new Error(status));
          return;
        }
        upgraded = true;
        resolve(sock);
      }
      // The server's frames: unmasked; only the close frame matters here.
      while (buf.length >= 2) {
        let len = buf[1] & 127;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const op = buf[0] & 15;
        const p = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (op === 8) {
          sock.closeInfo = { code: p.length >= 2 ? p.readUInt16BE(0) : 1005, reason: p.subarray(2).toString() };
          sock.gotClose(sock.closeInfo);
        }
        if (op === 10) sock.emit('pong'); // the answer to our ping: everything before it was read
      }
    });
  }), 5000, `raw websocket ${u.pathname}`);
}

// A client frame header (RFC 6455 section 5.2) announcing @len (a BigInt) bytes, masked with @key.
function header(fin, op, len, key) {
  let h;
  if (len < 126n) {
    h = Buffer.from([0, 0x80 | Number(len)]);
  } else if (len < 65536n) {
    h = Buffer.alloc(4);
    h[1] = 0x80 | 126;
    h.writeUInt16BE(Number(len), 2);
  } else {
    h = Buffer.alloc(10);
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(len, 2);
  }
  h[0] = (fin ? 0x80 : 0) | op;
  return Buffer.concat([h, key]);
}

// @data masked with @key, as the bytes from offset @at of a frame's payload.
function masked(data, key, at = 0) {
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[(at + i) & 3];
  return out;
}

// A whole masked frame.
function frame(fin, op, data) {
  const key = crypto.randomBytes(4);
  return Buffer.concat([header(fin, op, BigInt(data.length), key), masked(data, key)]);
}

async function rawJoin(r, topic) {
  const a = await access(r, topic, r.token({ topic }));
  if (a.status !== 200) throw new Error(`access ${topic}: ${a.status}`);
  return rawWs(a.body.uri);
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// A writer and a reader on their own topic; check() sends one message and resolves its round
// trip in ms (rejects after 1 s).
async function roundTrip(r, topic) {
  const rd = await join(r, topic, { scopes: ['read'] });
  const wr = await join(r, topic, { scopes: ['write'] });
  let n = 0;
  return {
    async check() {
      const t0 = Date.now();
      wr.send(`probe ${n}`);
      await received(rd, ++n, 1000);
      return Date.now() - t0;
    },
    close() { rd.close(); wr.close(); },
  };
}

// ---- protocol edges ----

let r;

test('start relay (plain HTTP, --max-message 64KiB)', async () => {
  r = await startRelay({ tls: false, args: ['--access-rate', '0', '--max-message', '64KiB'] });
  ok(r.port > 0, 'relay started');
  const mib = Math.floor(Math.max(require('os').totalmem() / 4, 64 << 20) / (1 << 20));
  ok(new RegExp(`memory budget for messages being received or queued: ${mib} MiB \\(a quarter of RAM\\)`).test(r.log),
    `default --max-memory: a quarter of RAM (${mib} MiB) logged`);
});

test('a frame header announcing 2^63-1 bytes is closed with 1009 at its first bytes', async () => {
  const s = await rawJoin(r, 'edge');
  const key = crypto.randomBytes(4);
  s.write(Buffer.concat([header(true, 2, (1n << 63n) - 1n, key), masked(Buffer.alloc(16), key)]));
  const c = await withTimeout(s.closeFrame, 3000, 'close frame');
  eq(c && c.code, 1009, 'close code');
  s.destroy();
});

test('a continuation frame announcing past --max-message is closed with 1009 at its first bytes', async () => {
  const s = await rawJoin(r, 'edge');
  s.write(frame(false, 1, Buffer.alloc(1000, 'a')));
  const key = crypto.randomBytes(4);
  // 1000 + 64 KiB: over the limit by 1000 bytes, of which only 16 are sent
  s.write(Buffer.concat([header(true, 0, 65536n, key), masked(Buffer.alloc(16, 'b'), key)]));
  const c = await withTimeout(s.closeFrame, 3000, 'close frame');
  eq(c && c.code, 1009, 'close code');
  s.destroy();
});

test('messages of exactly --max-message, in one frame or fragments, still go through', async () => {
  const rd = await join(r, 'edge-ok', { scopes: ['read'] });
  const s = await rawJoin(r, 'edge-ok');
  const big = crypto.randomBytes(65536);
  s.write(frame(true, 2, big));
  s.write(frame(false, 2, big.subarray(0, 30000)));
  s.write(frame(true, 0, big.subarray(30000)));
  await received(rd, 2);
  ok(rd.inbox.every((m) => m.isBinary && m.data.equals(big)), 'both delivered whole');
  s.destroy();
  rd.close();
});

test('stop relay', async () => {
  eq((await r.stop()).code, 0, 'exit status');
});

test('RELAY_MAX_MESSAGE in the environment limits messages as --max-message does', async () => {
  const e = await startRelay({ tls: false, args: ['--access-rate', '0'], env: { RELAY_MAX_MESSAGE: '64KiB' } });
  const s = await rawJoin(e, 'env');
  const key = crypto.randomBytes(4);
  // 64 KiB + 1: within the default 4 MiB, over the 64 KiB the variable sets
  s.write(Buffer.concat([header(true, 2, 65537n, key), masked(Buffer.alloc(16), key)]));
  const c = await withTimeout(s.closeFrame, 3000, 'close frame');
  eq(c && c.code, 1009, 'close code');
  s.destroy();
  eq((await e.stop()).code, 0, 'exit status');
});

// ---- the memory budget ----

test('--max-memory below --max-message is refused at start-up', async () => {
  const res = relaySync(['serve', '--insecure-http', '--audience', 'http://127.0.0.1:1', '--listen', '127.0.0.1:1',
    '--max-memory', '1MiB', '--max-message', '4MiB'], { env: { PATH: process.env.PATH, RELAY_SECRET: 'x'.repeat(32) } });
  eq(res.status, 2, 'exit status');
  ok(/max_memory \(1048576\) must be 0 \(automatic\) or at least max_message \(4194304\)/.test(res.stderr), `says why: ${res.stderr}`);
});

// The relay's /metrics as { 'name{labels}': value }.
async function metrics(x) {
  const text = await (await fetch(`${x.base}/metrics`)).text();
  const out = {};
  for (const l of text.split('\n')) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(l);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

test('--max-memory: the largest holders of unfinished messages are closed (1009), others keep working', async () => {
  const m = await startRelay({ tls: false, args: ['--access-rate', '0', '--max-memory', '8MiB',
    '--max-message', '4MiB'] });
  const probe = await roundTrip(m, 'calm');
  await probe.check();
  const base = rssKiB(m.proc.pid);
  const before = await metrics(m);
  eq(before.relay_memory_budget_bytes, 8 << 20, '/metrics: the budget');
  eq(before['relay_memory_budget_closures_total{held="receiving"}'], 0, '/metrics: no closures yet');
  // 12 writers each send a 3 MiB first fragment of a message and stop: 48 MiB of buffers
  // without a budget. A ping after it (RFC 6455 section 5.5: between fragments) is answered once
  // the relay has read the fragment, so a pong or a close frame on every socket proves that the
  // relay has seen every byte and taken all its decisions: nothing is left to wait out.
  const socks = await Promise.all(Array.from({ length: 12 }, () => rawJoin(m, 'heavy')));
  const part = Buffer.alloc(3 << 20, 'x');
  const read = socks.map((s) => {
    s.write(Buffer.concat([frame(false, 2, part), frame(true, 9, Buffer.from('sync'))]));
    return Promise.race([s.closeFrame, new Promise((res) => s.once('pong', () => res('read')))]);
  });
  // The calm topic's round trip, throughout.
  let worst = 0;
  let sending = true;
  const probing = (async () => {
    while (sending) worst = Math.max(worst, await probe.check());
  })();
  await withTimeout(Promise.all(read), 20000, 'every socket answered or closed');
  sending = false;
  await probing;
  // Closures decided after a socket's pong still send their close frame: the counter says how many.
  const after = await metrics(m);
  const shed = after['relay_memory_budget_closures_total{held="receiving"}'];
  ok(shed >= 10, `/metrics: at least 10 of 12 closed for the budget (${shed})`);
  eq(after['relay_memory_budget_closures_total{held="queued"}'], 0, '/metrics: none for queues');
  await until(() => socks.filter((s) => s.closeInfo).length >= shed, 5000, 'their close frames');
  const closed = socks.filter((s) => s.closeInfo);
  eq(closed.length, shed, 'as many close frames as closures counted');
  eq([...new Set(closed.map((s) => s.closeInfo.code))], [1009], 'close codes');
  ok(after.relay_memory_receiving_bytes > 0 && after.relay_memory_receiving_bytes <= 8 << 20,
    `/metrics: the survivors' buffers, within the budget (${after.relay_memory_receiving_bytes})`);
  const grown = rssKiB(m.proc.pid) - base;
  // ASan keeps freed memory in quarantine: RSS says nothing there (make check)
  if (!fs.readFileSync(`/proc/${m.proc.pid}/maps`, 'utf8').includes('libasan')) {
    ok(grown < 24 * 1024, `RSS grew by ${grown} KiB, under 24 MiB (48 MiB held without a budget)`);
  }
  ok(worst < 1000, `calm topic's round trip throughout: worst ${worst} ms`);
  ok(/memory budget of 8388608 bytes reached/.test(m.log), 'logged');
  await probe.check();
  probe.close();
  socks.forEach((s) => s.destroy());
  await until(async () => (await metrics(m)).relay_memory_receiving_bytes === 0, 5000, 'buffers given back');
  eq((await m.stop()).code, 0, 'exit status');
});

test('--max-memory: a reader that stops reading is closed (1013) once its queue passes the budget', async () => {
  const m = await startRelay({ tls: false, args: ['--access-rate', '0', '--max-memory', '4MiB',
    '--max-message', '1MiB', '--queue-bytes', '16MiB'] });
  const probe = await roundTrip(m, 'calm');
  const keeper = await join(m, 'q', { scopes: ['read'] });
  const stuck = await rawJoin(m, 'q');
  stuck.pause(); // reads nothing more: the relay queues for it once the socket buffers fill
  const wr = await join(m, 'q', { scopes: ['write'] });
  const mib = Buffer.alloc(1 << 20, 'q');
  // 14 MiB: more than the socket buffers and the budget take, less than a reader's queue
  for (let i = 0; i < 14; i++) wr.send(mib);
  await m.waitLog(/memory budget of 4194304 bytes reached: closing, holding \d+ bytes queued/, 10000);
  stuck.resume(); // take what was written before, then the close frame
  const c = await withTimeout(stuck.closeFrame, 5000, 'close frame');
  eq(c && [c.code, c.reason], [1013, 'reader too far behind for the relay\'s memory'], 'close');
  const mt = await metrics(m);
  eq([mt['relay_memory_budget_closures_total{held="queued"}'], mt['relay_memory_budget_closures_total{held="receiving"}']],
    [1, 0], '/metrics: one closure, for a queue');
  await received(keeper, 14, 10000);
  eq(keeper.inbox.length, 14, 'the reader that keeps up got every message');
  ok(await probe.check() < 1000, 'another topic\'s round trip');
  probe.close();
  keeper.close();
  wr.close();
  stuck.destroy();
  eq((await m.stop()).code, 0, 'exit status');
});

test('--message-timeout: a message left incomplete is closed with 1008', async () => {
  const m = await startRelay({ tls: false, args: ['--access-rate', '0', '--message-timeout', '1s'] });
  // A slow message that ends in time is delivered...
  const rd = await join(m, 'slow', { scopes: ['read'] });
  const slow = await rawJoin(m, 'slow');
  slow.write(frame(false, 1, Buffer.from('par')));
  await new Promise((res) => setTimeout(res, 300)); // fragments spaced out, inside the timeout
  slow.write(frame(true, 0, Buffer.from('ts')));
  await received(rd, 1);
  eq(rd.inbox[0].data.toString(), 'parts', 'delivered');
  // ...one whose last fragment never comes is closed.
  const t0 = Date.now();
  slow.write(frame(false, 1, Buffer.from('never ends')));
  const c = await withTimeout(slow.closeFrame, 5000, 'close frame');
  eq(c && [c.code, c.reason], [1008, 'message not completed in time'], 'close');
  const ms = Date.now() - t0;
  ok(ms >= 1000 && ms < 4000, `closed after ${ms} ms (timeout 1 s, checked once a second)`);
  slow.destroy();
  rd.close();
  eq((await m.stop()).code, 0, 'exit status');
});

run();
