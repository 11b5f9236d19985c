// t2040: what TURN over TCP holds for its clients counts against --max-memory. A TCP client that
// allocates, lets a peer send to it and never reads makes the relay queue its Data indications;
// that output stops growing at the budget (relay_turn_stream_buffered_bytes in /metrics), the
// frames past it are dropped and counted (relay_turn_refused_total{reason="memory_budget"}),
// and meanwhile a websocket topic, another TCP client and a UDP client keep working: a websocket
// is never closed for what TURN holds (a message whose reassembly takes the sum past the budget
// goes through), TURN gives way instead. Frames are
// dropped whole: once the client reads again its stream is intact (over TLS too: a record cut
// would not decrypt). Before, the output grew to 1 MiB a connection whatever the budget, and
// nothing counted it. Input counts too: allocated TCP clients that each send most of a 60 KB
// ChannelData and stop make the relay hold their partial frames; those buffers stay within the
// budget, the connections past it are closed (relay_turn_refused_total{reason=
// "memory_budget_closed"}), over TLS too, and with the budget full a new client's 1 KiB
// Allocate (sent in two pieces: the 2 KiB taken past the budget) is still answered and
// websockets still work. Before, partial frames were not counted: 64 KiB a connection, 256 MiB
// with 4096. A client without an allocation that sends a large frame in pieces is closed at
// once (reason="large_frame_unallocated"), so clients without credentials cannot fill the
// budget. And a burst of frames read on top of a partial one no longer closes the connection.
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');
const net = require('net');
const tls = require('tls');
const fs = require('fs');
const path = require('path');
const { test, ok, eq, run, until, startRelay, join, received, tmpdir } = require('./lib.js');
const { allocate, stun } = require('./turnclient.js');

const BUDGET = 384 * 1024; // under one connection's own bound (two buffers of 512 KiB)
const SECRET = 't2040-rest-secret';
const SOFTWARE = 0x8022;

let r;
let turnPort;
let turnsPort;

function credential(user) {
  const username = `${Math.floor(Date.now() / 1000) + 600}:${user}`;
  return { username, password: crypto.createHmac('sha1', SECRET).update(username).digest('base64') };
}

async function metrics() {
  const res = await fetch(`${r.base}/metrics`);
  const text = await res.text();
  const get = (name) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };
  return { held: get('relay_turn_stream_buffered_bytes'), unalloc: get('relay_turn_stream_unallocated_bytes'),
    dropped: get('relay_turn_refused_total{reason="memory_budget"}'),
    closed: get('relay_turn_refused_total{reason="memory_budget_closed"}'),
    large: get('relay_turn_refused_total{reason="large_frame_unallocated"}'),
    full: get('relay_turn_refused_total{reason="stream_queue_full"}') };
}

// A peer on 127.0.0.1 (allowed by --turn-allow-peer) that sends to relayed addresses.
async function peer() {
  const s = dgram.createSocket('udp4');
  await new Promise((resolve) => s.bind(0, '127.0.0.1', resolve));
  s.on('error', () => {});
  return s;
}

// Send datagrams of @size bytes to @to until @done() (polled between batches) or @ms pass.
async function flood(s, to, size, done, ms) {
  const payload = crypto.randomBytes(size);
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (let i = 0; i < 200; i++) s.send(payload, to.port, to.address);
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (await done()) return true;
  }
  return false;
}

// @c (a TURN allocation) receives what @p sends it, through the relay.
async function relays(c, p, what) {
  const n = c.received.length;
  const mark = crypto.randomBytes(16);
  await until(() => {
    p.send(mark, c.relayed.port, c.relayed.address);
    return c.received.slice(n).some((d) => d.equals(mark));
  }, 5000, what);
  return true;
}

test('start relay with a small --max-memory', async () => {
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'turn-secret'), `${SECRET}\n`);
  r = await startRelay({ args: ['--turn-listen', '127.0.0.1:0', '--turns-listen', '127.0.0.1:0', '--turn-allow-peer', '127.0.0.1/32',
    '--turn-secret-file', path.join(dir, 'turn-secret'), '--turn-bandwidth', '0', '--turn-packet-rate', '0',
    '--max-message', '128KiB', '--max-memory', String(BUDGET), '--access-rate', '0'] });
  await r.waitLog(/turn listening on udp\+tcp 127\.0\.0\.1:\d+/);
  await r.waitLog(/turns listening on tls 127\.0\.0\.1:\d+/);
  turnPort = Number(/turn listening on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(r.log)[1]);
  turnsPort = Number(/turns listening on tls 127\.0\.0\.1:(\d+)/.exec(r.log)[1]);
  const m = await metrics();
  eq(m.held, 0, 'TURN stream output counted in /metrics, nothing held yet');
  eq(m.dropped, 0, 'memory_budget drops counted in /metrics, none yet');
  eq(m.closed, 0, 'memory_budget_closed counted in /metrics, none yet');
});

test('a TCP client that never reads holds no more than the budget; others keep working', async () => {
  const p = await peer();
  const stalled = await allocate('127.0.0.1', turnPort, ...Object.values(credential('stalled')), 5000, { tcp: true });
  const other = await allocate('127.0.0.1', turnPort, ...Object.values(credential('other')), 5000, { tcp: true });
  const udp = await allocate('127.0.0.1', turnPort, ...Object.values(credential('udp')), 5000);
  const reader = await join(r, 'mem', { scopes: ['read'] });
  const writer = await join(r, 'mem', { scopes: ['write'] });
  try {
    const { port } = p.address();
    for (const c of [stalled, other, udp]) await c.permit('127.0.0.1', port);
    ok(await relays(other, p, 'the other TCP client relays before'), 'the other TCP client relays before');
    stalled.sock.pause(); // never reads again: the relay's output to it grows

    let last = null;
    const filled = await flood(p, stalled.relayed, 1200, async () => {
      last = await metrics();
      return last.dropped > 20;
    }, 20000);
    ok(filled, `frames to the stalled client dropped for the budget (${last && last.dropped} so far)`);
    ok(last.held <= BUDGET, `its output stops at the budget: ${last.held} <= ${BUDGET} bytes`);
    ok(last.held >= BUDGET / 4, `and holds a share of it: ${last.held} bytes`);

    // More of the same: still within the budget, and every extra frame dropped is counted.
    await flood(p, stalled.relayed, 1200, async () => false, 500);
    const after = await metrics();
    console.log(`  # stalled client: ${last.held} then ${after.held} bytes held, ${last.dropped} then ${after.dropped} frames dropped`);
    ok(after.held <= BUDGET, `still within the budget after more: ${after.held} bytes`);
    ok(after.dropped > last.dropped, `more frames counted as dropped: ${last.dropped} -> ${after.dropped}`);
    await r.waitLog(/memory budget of 393216 bytes reached: dropping frames to TCP\/TLS clients/);
    ok(true, 'the drop is logged');

    // Meanwhile: websockets, another TCP client and a UDP client.
    writer.send('still here');
    await received(reader, 1);
    eq(reader.inbox[0].data.toString(), 'still here', 'a websocket message goes through');
    // 120 KiB in three fragments: its reassembly buffer (128 KiB) plus what TURN holds passes
    // the budget; the websocket must not be shed for TURN's bytes.
    const big = crypto.randomBytes(120 * 1024);
    writer.send(big.subarray(0, 40960), { binary: true, fin: false });
    writer.send(big.subarray(40960, 81920), { binary: true, fin: false });
    writer.send(big.subarray(81920), { binary: true, fin: true });
    await received(reader, 2);
    ok(reader.inbox[1].data.equals(big), 'a fragmented message past what TURN leaves goes through whole');
    eq(writer.readyState, 1, 'and its writer stays open');
    ok(await relays(other, p, 'the other TCP client relays during'), 'the other TCP client still relays');
    ok(await relays(udp, p, 'the UDP client relays during'), 'a UDP client relays');

    stalled.sock.resume(); // frames were dropped whole: what follows still parses
    ok(await relays(stalled, p, 'the stalled client relays once it reads'), 'the stalled client relays again once it reads');
  } finally {
    for (const c of [stalled, other, udp]) c.close();
    reader.close();
    writer.close();
    p.close();
  }
  // The stalled connection's buffers go with it.
  await until(async () => (await metrics()).held === 0, 5000, 'output given back at close');
  ok(true, 'what it held is given back when it closes');
});

test('over TLS: frames dropped for the budget never cut a record', async () => {
  const p = await peer();
  const before = await metrics();
  const c = await allocate('127.0.0.1', turnsPort, ...Object.values(credential('tls')), 5000, { tls: true });
  let broken = null;
  c.sock.on('error', (e) => { broken = e; });
  try {
    await c.permit('127.0.0.1', p.address().port);
    c.sock.pause();
    let last = null;
    const filled = await flood(p, c.relayed, 1200, async () => {
      last = await metrics();
      return last.dropped > before.dropped + 20;
    }, 20000);
    ok(filled, `frames to the stalled TLS client dropped for the budget (${last && last.dropped - before.dropped})`);
    ok(last.held <= BUDGET, `its output stops at the budget: ${last.held} <= ${BUDGET} bytes`);
    c.sock.resume();
    ok(await relays(c, p, 'the TLS client relays once it reads'), 'the TLS client relays again once it reads');
    eq(broken, null, 'its TLS stream never broke');
  } finally {
    c.close();
    p.close();
  }
  await until(async () => (await metrics()).held === 0, 5000, 'output given back at close');
});

// An unauthenticated Allocate (REQUESTED-TRANSPORT UDP) of a new client, @pad bytes of
// SOFTWARE in it (0: none).
function allocateRequest(pad = 0) {
  const attrs = [stun.attr(stun.ATTR.TRANSPORT, Buffer.from([17, 0, 0, 0]))];
  if (pad) attrs.push(stun.attr(SOFTWARE, Buffer.alloc(pad, 'x')));
  return stun.message(0x0003, attrs).buf;
}

// An unauthenticated Allocate over a new TCP connection: resolves the answer's type (0x0113, a
// 401), or null when none comes within @ms (a TCP client does not retransmit). @split: sent in
// two writes, so that the relay keeps a partial frame between them; @pad: as allocateRequest().
function rawAllocate(port, ms, split = false, pad = 0) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const h = allocateRequest(pad);
    let got = Buffer.alloc(0);
    const done = (v) => { clearTimeout(timer); s.destroy(); resolve(v); };
    const timer = setTimeout(() => done(null), ms);
    s.on('connect', () => {
      if (!split) return s.write(h);
      s.write(h.subarray(0, 10));
      setTimeout(() => { if (!s.destroyed) s.write(h.subarray(10)); }, 100);
    });
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 20) done(got.readUInt16BE(0));
    });
    s.on('error', () => done('error'));
    s.on('close', () => done('closed'));
  });
}

// Before, every frame to a TCP/TLS client was checked against the budget, STUN answers too: once
// stalled clients filled it, a new client's 401 and a reading client's Refresh answer were dropped.
test('stalled clients filling the budget lock no one out: STUN answers still go', async () => {
  const p = await peer();
  const reading = await allocate('127.0.0.1', turnPort, ...Object.values(credential('reading')), 5000, { tcp: true });
  const stalled = [];
  try {
    for (let k = 0; k < 12; k++) {
      const c = await allocate('127.0.0.1', turnPort, ...Object.values(credential(`stalled${k}`)), 5000, { tcp: true });
      await c.permit('127.0.0.1', p.address().port);
      c.sock.pause();
      stalled.push(c);
    }
    // Large frames first, then small ones to fill what is left of the budget.
    let last = null;
    for (const [k, c] of stalled.entries()) {
      const before = (await metrics()).dropped;
      const filled = await flood(p, c.relayed, k < 9 ? 1200 : 60, async () => {
        last = await metrics();
        return last.dropped > before + 20;
      }, 20000);
      ok(filled, `frames to stalled client ${k} dropped for the budget`);
    }
    console.log(`  # ${stalled.length} stalled clients hold ${last.held} bytes`);
    eq(await rawAllocate(turnPort, 5000), 0x0113, "a new TCP client's Allocate is answered (401)");
    const fresh = await allocate('127.0.0.1', turnPort, ...Object.values(credential('fresh')), 5000, { tcp: true });
    ok(fresh.relayed.port > 0, 'and it allocates');
    fresh.close();
    eq(await reading.refresh(600), 0x0104, "a reading client's Refresh is answered");
    const m = await metrics();
    ok(m.held <= BUDGET + 16 * 16 * 1024, `output past the budget only for STUN answers: ${m.held} bytes`);
  } finally {
    for (const c of [reading, ...stalled]) c.close();
    p.close();
  }
  await until(async () => (await metrics()).held === 0, 5000, 'output given back at close');
});

// The first @send bytes of a ChannelData frame of @len bytes (channel 0x4000), never finished.
function partialChannelData(len, send) {
  const b = Buffer.alloc(send);
  b.writeUInt16BE(0x4000, 0);
  b.writeUInt16BE(len, 2);
  return b;
}
const PARTIAL = partialChannelData(60000, 40004);

// Writes @write on @sock and waits until it is counted, or @sock is closed: true when kept.
async function heldOrClosed(sock, write, what) {
  let gone = sock.destroyed;
  sock.on('close', () => { gone = true; });
  const held = (await metrics()).held;
  sock.write(write);
  await until(async () => gone || (await metrics()).held >= held + write.length, 5000, what);
  return !gone;
}

// A client without an allocation sends only small requests: one that sends a large frame in
// pieces is closed at once, budget or not; an allocated client's large Send split alike arrives.
test('a client without an allocation sending 10 KB of a 60 KB frame is closed; an allocated one\'s is taken', async () => {
  const before = await metrics();
  eq(before.held, 0, 'the budget is empty');
  const p = await peer();
  const c = await allocate('127.0.0.1', turnPort, ...Object.values(credential('bigsend')), 5000, { tcp: true });
  const s = net.connect(turnPort, '127.0.0.1');
  s.on('error', () => {});
  try {
    let gone = false;
    s.on('close', () => { gone = true; });
    await new Promise((resolve) => s.once('connect', resolve));
    const { port } = p.address();
    const big = stun.message(0x0016, (tid) => [stun.attr(stun.ATTR.XOR_PEER, stun.xorAddr('127.0.0.1', port, tid)),
      stun.attr(stun.ATTR.DATA, crypto.randomBytes(60000))]).buf;
    s.write(big.subarray(0, 10000));
    await until(() => gone, 5000, 'the connection without an allocation closed');
    const m = await metrics();
    eq(m.large - before.large, 1, 'counted as large_frame_unallocated');
    eq(m.closed - before.closed, 0, 'not as memory_budget_closed');
    await r.waitLog(/closing TCP\/TLS client 127\.0\.0\.1:\d+: it has no allocation and is sending a 60\d\d\d-byte frame/);
    ok(true, 'the closing is logged');

    await c.permit('127.0.0.1', port);
    const data = crypto.randomBytes(60000);
    const send = stun.message(0x0016, (tid) => [stun.attr(stun.ATTR.XOR_PEER, stun.xorAddr('127.0.0.1', port, tid)),
      stun.attr(stun.ATTR.DATA, data)]).buf;
    const got = new Promise((resolve) => p.on('message', (d) => { if (d.equals(data)) resolve(true); }));
    ok(await heldOrClosed(c.sock, send.subarray(0, 10000), 'the allocated client\'s partial Send kept'), 'the allocated client\'s partial Send is kept');
    c.sock.write(send.subarray(10000));
    await until(() => Promise.race([got, new Promise((resolve) => setTimeout(() => resolve(false), 100))]), 5000, 'the split Send relayed');
    ok(true, 'and its 60 KB Send, sent in two pieces, reaches the peer');
  } finally {
    s.destroy();
    c.close();
    p.close();
  }
  await until(async () => (await metrics()).held === 0, 5000, 'input buffers given back');
});

// What connections without an allocation hold (partial requests of up to 2 KiB) is counted
// apart, outside the budget: 200 of them, together past the budget, take nothing from an
// allocated client, whose large Send split in two still arrives.
test('clients without credentials holding partial requests do not take the budget from an allocated client', async () => {
  const before = await metrics();
  const p = await peer();
  const { port } = p.address();
  const frame = stun.message(0x0003, [stun.attr(stun.ATTR.TRANSPORT, Buffer.from([17, 0, 0, 0])),
    stun.attr(SOFTWARE, Buffer.alloc(2000, 'x'))]).buf;
  const socks = [];
  let c;
  try {
    for (let k = 0; k < 200; k++) {
      const s = net.connect(turnPort, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
      await new Promise((resolve) => s.once('connect', resolve));
      s.write(frame.subarray(0, frame.length - 8));
    }
    await until(async () => (await metrics()).unalloc >= before.unalloc + BUDGET, 10000, 'the partial requests held');
    const m0 = await metrics();
    ok(m0.unalloc - before.unalloc >= BUDGET, `clients without an allocation hold ${m0.unalloc - before.unalloc} bytes, past the budget`);
    eq(m0.held, before.held, 'none of it in the budget');
    eq(m0.large, before.large, 'none closed: each request is under 2 KiB');
    c = await allocate('127.0.0.1', turnPort, ...Object.values(credential('amid')), 5000, { tcp: true });
    await c.permit('127.0.0.1', port);
    const data = crypto.randomBytes(10000);
    const send = stun.message(0x0016, (tid) => [stun.attr(stun.ATTR.XOR_PEER, stun.xorAddr('127.0.0.1', port, tid)),
      stun.attr(stun.ATTR.DATA, data)]).buf;
    const got = new Promise((resolve) => p.on('message', (d) => { if (d.equals(data)) resolve(true); }));
    ok(await heldOrClosed(c.sock, send.subarray(0, 5000), 'the allocated client\'s partial Send kept'), 'the allocated client\'s partial Send is kept');
    c.sock.write(send.subarray(5000));
    await until(() => Promise.race([got, new Promise((resolve) => setTimeout(() => resolve(false), 100))]), 5000, 'the split Send relayed');
    ok(true, 'and reaches the peer');
    eq((await metrics()).closed, m0.closed, 'nobody closed for the budget');
  } finally {
    for (const s of socks) s.destroy();
    if (c) c.close();
    p.close();
  }
  await until(async () => (await metrics()).unalloc === before.unalloc, 5000, 'given back when they go');
});

// A connection without an allocation is outside the budget, so its unread answers are held to
// 4 KiB whatever the budget: 100,000 unauthenticated Allocates on a connection that never reads
// (13 MB of 401s, past what the kernel's socket buffers take) leave it at most a few KiB.
test('a client without an allocation that never reads its answers holds at most 4 KiB of them', async () => {
  const before = await metrics();
  const one = allocateRequest();
  const s = net.connect(turnPort, '127.0.0.1');
  s.on('error', () => {});
  try {
    await new Promise((resolve) => s.once('connect', resolve));
    s.pause(); // never read
    s.write(Buffer.concat(Array(100000).fill(one)));
    await until(async () => (await metrics()).full > before.full, 15000, 'answers dropped for the full queue');
    const m = await metrics();
    ok(m.unalloc - before.unalloc <= 16384, `the connection holds ${m.unalloc - before.unalloc} bytes (at most 16 KiB of buffers)`);
    eq(m.held, before.held, 'nothing in the budget');
  } finally {
    s.destroy();
  }
  await until(async () => (await metrics()).unalloc === before.unalloc, 5000, 'given back when it goes');
});

test('partial frames on many TCP connections stay within the budget: the connections past it are closed', async () => {
  const before = await metrics();
  const kept = [];
  let closed = 0;
  let n = 0;
  const reader = await join(r, 'mem-in', { scopes: ['read'] });
  const writer = await join(r, 'mem-in', { scopes: ['write'] });
  // An allocated TCP client holding the first @send bytes of a @len-byte frame: kept, or closed.
  const hold = async (len, send) => {
    const c = await allocate('127.0.0.1', turnPort, ...Object.values(credential(`in${n++}`)), 5000, { tcp: true });
    if (await heldOrClosed(c.sock, partialChannelData(len, send), `connection ${n}: its partial frame counted, or the connection closed`)) {
      kept.push(c);
      return true;
    }
    c.close();
    return false;
  };
  try {
    // One at a time: each connection's partial frame is either counted or its connection closed.
    for (let k = 0; k < 16; k++) if (!await hold(60000, PARTIAL.length)) closed++;
    const m = await metrics();
    console.log(`  # 16 connections with a partial 60 KB frame: ${kept.length} kept (${m.held} bytes held), ${closed} closed`);
    ok(kept.length >= 2, `partial frames are held while the budget has room: ${kept.length} connections`);
    ok(closed >= 1, `the connections past the budget are closed: ${closed}`);
    ok(m.held <= BUDGET, `what TURN holds stays within the budget: ${m.held} <= ${BUDGET} bytes`);
    eq(m.closed - before.closed, closed, 'each closed connection counted as memory_budget_closed');
    await r.waitLog(/memory budget of 393216 bytes reached: closing TCP\/TLS client 127\.0\.0\.1:\d+, whose partial frame needs a \d+-byte buffer/);
    ok(true, 'the closing is logged');

    // Over TLS alike: with the budget full, a partial frame past 2 KiB closes the connection.
    const t = await allocate('127.0.0.1', turnsPort, ...Object.values(credential('tls-in')), 5000, { tls: true });
    ok(!await heldOrClosed(t.sock, PARTIAL, 'the TLS connection with a partial frame closed'), 'a TLS connection with a partial frame is closed');
    eq((await metrics()).closed - before.closed, closed + 1, 'and counted');
    ok((await metrics()).held <= BUDGET, 'still within the budget');

    // Fill what is left: smaller partial frames until one is closed, then ones of up to 2 KiB
    // (taken past the budget) until TURN alone holds the budget.
    for (const [len, send] of [[12000, 9000], [3000, 2500]]) {
      for (let k = 0; k < 24 && await hold(len, send);) k++;
    }
    for (let k = 0; k < 32 && (await metrics()).held < BUDGET; k++) await hold(2000, 1500);
    const full = (await metrics()).held;
    ok(full >= BUDGET, `the budget is full: TURN holds ${full} >= ${BUDGET} bytes`);

    // A new client's Allocate of about 1 KiB in two pieces: its partial frame is taken past the
    // budget (up to 2 KiB), so it gets its 401.
    eq(await rawAllocate(turnPort, 5000, true, 1000), 0x0113, "a new TCP client's 1 KiB Allocate, sent in two pieces, is answered (401)");
    eq(await rawAllocate(turnPort, 5000), 0x0113, 'and one sent whole');
    writer.send('still here');
    await received(reader, 1);
    eq(reader.inbox[0].data.toString(), 'still here', 'a websocket message goes through');

    // A connection that finishes its frame gets it handed on and its buffer given back.
    kept[0].sock.write(Buffer.alloc(PARTIAL.readUInt16BE(2) + 4 - PARTIAL.length));
    await until(async () => (await metrics()).held <= full - 65536, 5000, 'a finished frame\'s buffer given back');
    eq(kept[0].sock.destroyed, false, 'and that connection stays open');
  } finally {
    for (const c of kept) c.close();
    reader.close();
    writer.close();
  }
  await until(async () => (await metrics()).held === 0, 5000, 'input buffers given back at close');
  ok(true, 'what they held is given back when they close');
});

// Before, every read was appended to the partial frame kept from the last one: a 64 KiB read on
// top of a few hundred bytes passed the input buffer's bound and the connection was closed as
// if it sent an oversized frame.
test('a burst of frames on top of a partial one: the connection stays and every frame is taken', async () => {
  const frame = Buffer.alloc(1004);
  frame.writeUInt16BE(0x4000, 0);
  frame.writeUInt16BE(1000, 2);
  const all = Buffer.concat([...Array(300).fill(frame), allocateRequest()]); // the Allocate last
  const s = net.connect(turnPort, '127.0.0.1');
  s.on('error', () => {});
  let gone = false;
  let got = Buffer.alloc(0);
  s.on('close', () => { gone = true; });
  s.on('data', (d) => { got = Buffer.concat([got, d]); });
  await new Promise((resolve) => s.once('connect', resolve));
  try {
    const unalloc = (await metrics()).unalloc;
    s.write(all.subarray(0, 500));
    await until(async () => (await metrics()).unalloc >= unalloc + 500, 5000, 'the partial frame kept (outside the budget: no allocation)');
    s.write(all.subarray(500));
    await until(() => gone || got.length >= 20, 5000, 'the Allocate at the end answered');
    eq(gone, false, 'the connection stays open');
    eq(got.readUInt16BE(0), 0x0113, 'the Allocate after 300 KB of frames is answered (401)');
  } finally {
    s.destroy();
  }
});

test('stop', async () => {
  const e = await r.stop();
  eq(e.code, 0, 'relay exits cleanly');
});

run();
