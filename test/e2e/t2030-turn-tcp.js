// t2030 (node): TURN TCP allocations (RFC 6062) where coturn's uclient cannot go (its runs are
// in t2030-turn-tcp.sh). A small RFC 6062 client over TCP: Allocate with REQUESTED-TRANSPORT
// TCP, Connect, ConnectionAttempt, ConnectionBind, then raw bytes. Checked: TCP over UDP is
// refused (400); Connect to forbidden peers (127.0.0.2 and its IPv6-wrapped form, 0.0.0.0) is 403,
// without a permission 403, twice to one peer 446, to a closed port 447, past the per-allocation
// cap 508; a peer without a permission is not let in; ConnectionBind with an unknown id 400 and
// under another user 441; 16 MiB each way towards sides that do not read stop the senders
// (back-pressure), then arrive whole and in order; a half-close passes and both sides then close;
// denying the booking closes its data connections; --turn-bandwidth and --max-memory hold a
// connection without losing a byte; with the test build's clock moved 31 s on, a connection left
// unbound is closed, a Connect that hangs gets 447 and an expired credential ends the allocation
// with its connections.
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { test, ok, eq, run, withTimeout, until, tmpdir, startRelay, spawnTracked } = require('./lib.js');

const { stun } = require('./turnclient.js');
const { attr, xorAddr, parseXorAddr, parse, errorCode: code, longTerm, ATTR: A } = stun;
const M = { ALLOCATE: 0x003, CREATE_PERMISSION: 0x008, CHANNEL_BIND: 0x009, CONNECT: 0x00a, CONNECTION_BIND: 0x00b };
const TCP = 6;
const UDP = 17;

const turnSecret = 'turn-' + crypto.randomBytes(8).toString('hex');
const secretFile = path.join(tmpdir(), 'turn-secret');
fs.writeFileSync(secretFile, turnSecret + '\n');

function cred(user, lifetime = 3600) {
  const username = `${Math.floor(Date.now() / 1000) + lifetime}:${user}`;
  return { username, password: crypto.createHmac('sha1', turnSecret).update(username).digest('base64') };
}

// A STUN message, always with FINGERPRINT: @attrs(tid) its attributes; with @key MESSAGE-INTEGRITY.
const message = (type, attrs, key) => stun.message(type, attrs, { key, fingerprint: true });

// A TCP connection to the TURN port speaking STUN until a ConnectionBind succeeds, raw after.
class Conn {
  constructor(sock) {
    this.sock = sock;
    this.in = Buffer.alloc(0);
    this.waiting = new Map();
    this.indications = [];
    this.raw = null; // Buffer[] once bound
    this.ended = false;
    this.closed = socketClosed(sock);
    sock.on('error', () => {});
    sock.on('end', () => { this.ended = true; });
    sock.on('data', (d) => this.onData(d));
  }

  onData(d) {
    if (this.raw) return this.raw.push(d);
    this.in = Buffer.concat([this.in, d]);
    while (this.in.length >= 20) {
      const len = 20 + this.in.readUInt16BE(2);
      if (this.in.length < len) break;
      const m = parse(this.in.subarray(0, len));
      this.in = this.in.subarray(len);
      if (!m) continue; // not STUN: nothing waits for it
      if ((m.type & 0x0110) === 0x0010) this.indications.push(m);
      if (m.type === 0x0100 + M.CONNECTION_BIND) { // what follows is the peer's
        this.raw = this.in.length ? [this.in] : [];
        this.in = Buffer.alloc(0);
      }
      const w = this.waiting.get(m.tid.toString('hex'));
      if (w) w(m);
      if (this.raw) break;
    }
  }

  request(type, attrs, key) {
    const { tid, buf } = message(type, attrs, key);
    const id = tid.toString('hex');
    const p = new Promise((resolve) => this.waiting.set(id, resolve));
    this.sock.write(buf);
    return withTimeout(p, 40000, `an answer to method 0x${type.toString(16)}`);
  }

  received() { return Buffer.concat(this.raw || []); }
}

function dial(port) {
  return withTimeout(new Promise((resolve, reject) => {
    // half-open allowed: a test's end() must not be answered by node on its own
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
  }), 5000, 'a TCP connection');
}

// Long-term credentials on @c: the 401's realm and nonce, the key.
async function challenge(c, type, attrs, { username, password }) {
  const first = await c.request(type, attrs);
  eq(code(first), 401, 'challenged first');
  return longTerm(first, username, password);
}

const transport = (t) => attr(A.TRANSPORT, Buffer.from([t, 0, 0, 0]));

// A TCP allocation of @user over TCP to @port: { c, relayed, req(method, attrs(tid)) }.
async function allocation(port, user) {
  const c = new Conn(await dial(port));
  const { key, auth } = await challenge(c, M.ALLOCATE, () => [transport(TCP)], user);
  const res = await c.request(M.ALLOCATE, () => [transport(TCP), ...auth()], key);
  eq(code(res), 0, `TCP allocation for ${user.username}`);
  const req = (method, attrs) => c.request(method, (tid) => [...attrs(tid), ...auth()], key);
  return { c, key, auth, user, relayed: parseXorAddr(res.attrs.get(A.XOR_RELAYED)), req };
}

const peerAttr = (ip, port) => (tid) => [attr(A.XOR_PEER, xorAddr(ip, port, tid))];
const permit = async (al, ip) => eq(code(await al.req(M.CREATE_PERMISSION, peerAttr(ip, 9))), 0, `permission for ${ip}`);

// A data connection of @user bound to @id: its Conn, or the refusal's code.
async function bind(port, user, id) {
  const c = new Conn(await dial(port));
  const idAttr = () => { const v = Buffer.alloc(4); v.writeUInt32BE(id >>> 0); return attr(A.CONNECTION_ID, v); };
  const { key, auth } = await challenge(c, M.CONNECTION_BIND, () => [idAttr()], user);
  const res = await c.request(M.CONNECTION_BIND, () => [idAttr(), ...auth()], key);
  return code(res) ? code(res) : c;
}

// A TCP server on 127.0.0.1 for peers: resolves { port, sockets: [net.Socket], close() }; close()
// resolves once the listening socket is closed.
function peerServer() {
  return new Promise((resolve) => {
    const sockets = [];
    const srv = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); sockets.push(s); });
    srv.listen(0, '127.0.0.1', () => resolve({ port: srv.address().port, sockets,
      close() { for (const s of sockets) s.destroy(); return new Promise((done) => srv.close(done)); } }));
  });
}

// Resolves once the other side closed @s (its end seen: sockets here are half-open).
function socketClosed(s) {
  return new Promise((resolve) => {
    if (s.destroyed || s.readableEnded) return resolve();
    s.on('end', resolve);
    s.on('close', resolve);
  });
}

async function metric(r, name) {
  const text = await (await fetch(`${r.base}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

let relay = null;
let turnPort = 0;
async function server() {
  if (relay) return relay;
  // no --turn-bandwidth here: the 16 MiB case is about back-pressure (bandwidth has its own relay)
  relay = await startRelay({ tls: false, testClock: true, args: ['--turn-listen', '127.0.0.1:0',
    '--turn-secret-file', secretFile, '--turn-allow-peer', '127.0.0.1/32', '--turn-bandwidth', '0'] });
  await relay.waitLog(/turn listening on udp\+tcp/);
  turnPort = Number(/turn listening on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(relay.log)[1]);
  return relay;
}

test('Allocate with REQUESTED-TRANSPORT TCP over UDP: 400', async () => {
  await server();
  const sock = dgram.createSocket('udp4');
  const waiting = new Map();
  sock.on('message', (b) => { const m = parse(b); const w = m && waiting.get(m.tid.toString('hex')); if (w) w(m); });
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const udp = { request(type, attrs, key) {
    const { tid, buf } = message(type, attrs, key);
    const p = new Promise((resolve) => waiting.set(tid.toString('hex'), resolve));
    sock.send(buf, turnPort, '127.0.0.1');
    return withTimeout(p, 5000, 'a UDP answer');
  } };
  try {
    const user = cred('bk-udp');
    const { key, auth } = await challenge(udp, M.ALLOCATE, () => [transport(TCP)], user);
    eq(code(await udp.request(M.ALLOCATE, () => [transport(TCP), ...auth()], key)), 400, 'TCP relaying over UDP');
    eq(code(await udp.request(M.ALLOCATE, () => [transport(UDP), ...auth()], key)), 0, 'UDP relaying over UDP still allocates');
  } finally {
    sock.close();
  }
});

test('Connect: forbidden peers 403, no permission 403, twice 446, closed port 447, the cap 508', async () => {
  await server();
  const al = await allocation(turnPort, cred('bk-connect'));
  const peers = [];
  try {
    // the log line comes through the relay's stderr, which may trail the answer on the socket
    ok(await until(() => /relayed at tcp:127\.0\.0\.1:\d+/.test(relay.log), 5000, 'the log line').catch(() => false),
      'logged as a TCP allocation');
    for (const ip of ['127.0.0.2', '::ffff:127.0.0.2', '0.0.0.0']) {
      eq(code(await al.req(M.CONNECT, peerAttr(ip, 80))), 403, `Connect to ${ip}`);
    }
    const p = await peerServer();
    peers.push(p);
    eq(code(await al.req(M.CONNECT, peerAttr('127.0.0.1', p.port))), 403, 'Connect without a permission');
    eq(p.sockets.length, 0, 'nothing connected to the peer');
    await permit(al, '127.0.0.1');
    const first = await al.req(M.CONNECT, peerAttr('127.0.0.1', p.port));
    eq(code(first), 0, 'Connect with a permission');
    ok(first.attrs.get(A.CONNECTION_ID).length === 4, 'with a CONNECTION-ID');
    await until(() => p.sockets.length === 1, 5000, 'the peer accepted');
    eq(p.sockets[0].remotePort, al.relayed.port, 'from the relayed address');
    eq(code(await al.req(M.CONNECT, peerAttr('127.0.0.1', p.port))), 446, 'Connect to the same peer again');
    const closed = await peerServer();
    await closed.close();
    eq(code(await al.req(M.CONNECT, peerAttr('127.0.0.1', closed.port))), 447, 'Connect to a closed port');
    // 32 per allocation (TURN_TCP_CONNS_MAX): one is open; 31 more, then the next is refused
    for (let k = 0; k < 31; k++) {
      const q = await peerServer();
      peers.push(q);
      eq(code(await al.req(M.CONNECT, peerAttr('127.0.0.1', q.port))), 0, `Connect ${k + 2}`);
    }
    const over = await peerServer();
    peers.push(over);
    eq(code(await al.req(M.CONNECT, peerAttr('127.0.0.1', over.port))), 508, 'the 33rd Connect');
    eq(await metric(relay, 'relay_turn_tcp_connections'), 32, '32 connections in /metrics');
    eq(await metric(relay, 'relay_turn_refused_total{reason="connection_exists"}'), 1, '446 counted');
    eq(await metric(relay, 'relay_turn_refused_total{reason="connect_failed"}'), 1, '447 counted');
  } finally {
    al.c.sock.destroy();
    for (const p of peers) p.close();
  }
  await until(async () => await metric(relay, 'relay_turn_tcp_connections') === 0, 5000, 'connections closed with the allocation');
});

test('ConnectionBind: unknown id 400, another user 441; a bound connection relays 16 MiB each way whole, with back-pressure', async () => {
  await server();
  const user = cred('bk-data');
  const al = await allocation(turnPort, user);
  const p = await peerServer();
  try {
    eq(await bind(turnPort, user, 0x12345678), 400, 'ConnectionBind with an unknown id');
    await permit(al, '127.0.0.1');
    const res = await al.req(M.CONNECT, peerAttr('127.0.0.1', p.port));
    const id = res.attrs.get(A.CONNECTION_ID).readUInt32BE(0);
    eq(await bind(turnPort, cred('bk-other'), id), 441, 'ConnectionBind under another user');
    const data = await bind(turnPort, user, id);
    ok(data instanceof Conn, 'ConnectionBind under the allocation\'s user');
    eq(await bind(turnPort, user, id), 400, 'ConnectionBind of a bound id');
    await until(() => p.sockets.length === 1, 5000, 'the peer connected');
    const peer = p.sockets[0];
    // 16 MiB each way, more than the kernel's socket buffers hold, towards sides that do not
    // read: the relay must stop reading the senders (back-pressure), then lose nothing
    const up = crypto.randomBytes(16 << 20);
    const down = crypto.randomBytes(16 << 20);
    const got = [];
    peer.on('data', (d) => got.push(d));
    peer.pause();
    data.sock.pause();
    const pauses = await metric(relay, 'relay_turn_tcp_pauses_total');
    data.sock.write(up);
    peer.write(down);
    await until(async () => await metric(relay, 'relay_turn_tcp_pauses_total') >= pauses + 2, 20000,
      'the relay stopped reading both senders');
    const inFlight = await metric(relay, 'relay_turn_tcp_to_peer_bytes_total');
    ok(inFlight < up.length, `not everything was taken from the client (${inFlight} bytes)`);
    peer.resume();
    data.sock.resume();
    await until(() => Buffer.concat(got).length >= up.length, 40000, 'the peer got 16 MiB');
    await until(() => data.received().length >= down.length, 40000, 'the client got 16 MiB');
    ok(Buffer.concat(got).equals(up), 'client to peer: every byte, in order');
    ok(data.received().equals(down), 'peer to client: every byte, in order');
    ok(await metric(relay, 'relay_turn_tcp_to_peer_bytes_total') >= up.length, 'bytes to peers counted');
    ok(await metric(relay, 'relay_turn_tcp_from_peer_bytes_total') >= down.length, 'bytes from peers counted');

    // half-close: the client ends its side; the peer sees the end and may still answer
    data.sock.end();
    await until(() => peer.readableEnded, 5000, 'the peer saw the client\'s end');
    ok(!data.ended, 'the client\'s side towards it is still open');
    peer.end(Buffer.from('last words'));
    await withTimeout(data.closed, 5000, 'the data connection closed');
    eq(data.received().subarray(down.length).toString(), 'last words', 'the peer\'s last bytes arrived');
    await withTimeout(socketClosed(peer), 5000, 'the peer connection closed');
    await until(async () => await metric(relay, 'relay_turn_tcp_connections') === 0, 5000,
      'the relay closed both sides');
  } finally {
    al.c.sock.destroy();
    p.close();
  }
});

test('a peer connecting to the relayed address: refused without a permission, else ConnectionAttempt', async () => {
  await server();
  const user = cred('bk-passive');
  const al = await allocation(turnPort, user);
  try {
    const stranger = await dial(al.relayed.port);
    await withTimeout(socketClosed(stranger), 5000, 'a peer without a permission disconnected');
    eq(al.c.indications.length, 0, 'and not announced');
    await permit(al, '127.0.0.1');
    const peer = await dial(al.relayed.port);
    peer.on('error', () => {});
    peer.write('before the bind');
    await until(() => al.c.indications.length === 1, 5000, 'a ConnectionAttempt');
    const ind = al.c.indications[0];
    eq(ind.type, 0x001c, 'a ConnectionAttempt indication');
    eq(parseXorAddr(ind.attrs.get(A.XOR_PEER)).port, peer.localPort, 'with the peer\'s address');
    const data = await bind(turnPort, user, ind.attrs.get(A.CONNECTION_ID).readUInt32BE(0));
    ok(data instanceof Conn, 'bound');
    await until(() => data.received().toString() === 'before the bind', 5000, 'the peer\'s early bytes');
    data.sock.write('hello peer');
    const back = await withTimeout(new Promise((resolve) => peer.once('data', resolve)), 5000, 'bytes at the peer');
    eq(back.toString(), 'hello peer', 'the client\'s bytes at the peer');
    peer.destroy(); // a reset: both sides close
    await withTimeout(data.closed, 5000, 'the data connection closed with its peer');
  } finally {
    al.c.sock.destroy();
  }
});

// Before, a Send indication or ChannelData on a TCP allocation went out over UDP from an
// ephemeral port the kernel bound (outside --turn-relay-ports), and ChannelBind succeeded.
test('a TCP allocation sends no UDP: Send and ChannelData dropped and counted, ChannelBind 400', async () => {
  await server();
  const al = await allocation(turnPort, cred('bk-send'));
  const u = dgram.createSocket('udp4');
  const got = [];
  u.on('message', (m, rinfo) => got.push(rinfo.port));
  await new Promise((resolve) => u.bind(0, '127.0.0.1', resolve));
  const dropped = async () => await metric(relay, 'relay_turn_refused_total{reason="bad_request"}') +
    await metric(relay, 'relay_turn_refused_total{reason="no_permission"}');
  try {
    await permit(al, '127.0.0.1');
    const peer = peerAttr('127.0.0.1', u.address().port);
    let before = await dropped();
    al.c.sock.write(message(0x0016, (tid) => [...peer(tid), attr(0x0013, Buffer.from('send'))]).buf);
    await until(async () => await dropped() > before, 5000, 'the Send indication counted as dropped');
    const number = attr(0x000c, Buffer.from([0x40, 0x00, 0, 0]));
    eq(code(await al.req(M.CHANNEL_BIND, (tid) => [number, ...peer(tid)])), 400, 'ChannelBind on a TCP allocation');
    before = await dropped();
    const cd = Buffer.alloc(12);
    cd.writeUInt16BE(0x4000, 0);
    cd.writeUInt16BE(8, 2);
    cd.write('chandata', 4);
    al.c.sock.write(cd);
    await until(async () => await dropped() > before, 5000, 'the ChannelData counted as dropped');
    eq(got.length, 0, `no datagram reached the UDP peer (from ports ${got.join(',')})`);
  } finally {
    al.c.sock.destroy();
    u.close();
  }
});

// Data connections are never evicted: before, 128 allocations of 32 could take every one of
// TURN's 4096 TCP/TLS connections. Connections waiting for ConnectionBind count as well.
test('2048 TCP allocation connections in all (TURN_TCP_CONNS_TOTAL): the next Connect 508, a new client answered', async () => {
  const r = await startRelay({ tls: false, args: ['--turn-listen', '127.0.0.1:0', '--turn-secret-file', secretFile,
    '--turn-allow-peer', '127.0.0.1/32', '--turn-bandwidth', '0', '--turn-packet-rate', '0', '--access-rate', '0'] });
  const peers = [];
  const als = [];
  try {
    await r.waitLog(/turn listening on udp\+tcp/);
    const port = Number(/turn listening on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(r.log)[1]);
    for (let k = 0; k < 32; k++) peers.push(await peerServer());
    for (let k = 0; k < 64; k++) {
      const al = await allocation(port, cred(`bk-cap${k}`));
      als.push(al);
      await permit(al, '127.0.0.1');
      const codes = await Promise.all(peers.map((q) => al.req(M.CONNECT, peerAttr('127.0.0.1', q.port)).then(code)));
      ok(codes.every((c) => c === 0), `allocation ${k}: 32 Connects (${codes.filter((c) => c).join(',')})`);
    }
    eq(await metric(r, 'relay_turn_tcp_connections'), 2048, '2048 connections in /metrics');
    const extra = await allocation(port, cred('bk-cap-extra'));
    als.push(extra);
    await permit(extra, '127.0.0.1');
    eq(code(await extra.req(M.CONNECT, peerAttr('127.0.0.1', peers[0].port))), 508, 'the next Connect, in another allocation');
    await r.waitLog(/2048 TCP allocation connections in all \(TURN_TCP_CONNS_TOTAL\): refusing more/);
    const passive = await dial(extra.relayed.port);
    await withTimeout(socketClosed(passive), 5000, 'a peer connecting in is closed');
    eq(extra.c.indications.length, 0, 'and not announced');
    const fresh = new Conn(await dial(port));
    eq(code(await fresh.request(M.ALLOCATE, () => [transport(TCP)])), 401, 'a new TCP client is answered');
    fresh.sock.destroy();
  } finally {
    for (const al of als) al.c.sock.destroy();
    for (const q of peers) q.close();
  }
  await until(async () => await metric(r, 'relay_turn_tcp_connections') === 0, 10000, 'connections closed with their allocations');
  eq((await r.stop()).code, 0, 'relay exits cleanly');
});

test('denying the booking closes its TCP allocation and data connections', async () => {
  await server();
  const user = cred('bk-tcpdeny');
  const al = await allocation(turnPort, user);
  const p = await peerServer();
  try {
    await permit(al, '127.0.0.1');
    const id = (await al.req(M.CONNECT, peerAttr('127.0.0.1', p.port))).attrs.get(A.CONNECTION_ID).readUInt32BE(0);
    const data = await bind(turnPort, user, id);
    ok(data instanceof Conn, 'bound');
    await until(() => p.sockets.length === 1, 5000, 'the peer connected');
    const res = await fetch(`${relay.base}/bids/deny?bid=bk-tcpdeny&exp=${Math.floor(Date.now() / 1000) + 600}`,
      { method: 'POST', headers: { Authorization: relay.token({ topic: 'admin', scopes: ['relay:admin'] }) } });
    const answered = Date.now();
    eq(res.status, 204, 'deny answered');
    // timed from the deny's answer when each close is seen; waited for with a looser bound, so a
    // loaded machine that sees the close late fails on the figure, not on a timer of its own
    const at = (closed) => closed.then(() => Date.now());
    const times = await withTimeout(Promise.all([at(data.closed), at(socketClosed(p.sockets[0]))]), 10000,
      'the data and peer connections closed');
    const took = Math.max(...times) - answered;
    ok(took <= 1000, `the data and peer connections closed within a second of the deny (${took} ms)`);
    eq(await metric(relay, 'relay_turn_tcp_connections'), 0, 'no connection left');
  } finally {
    al.c.sock.destroy();
    p.close();
  }
});

test('--turn-bandwidth holds a TCP connection to its rate, losing nothing', async () => {
  const r = await startRelay({ tls: false, args: ['--turn-listen', '127.0.0.1:0', '--turn-secret-file', secretFile,
    '--turn-allow-peer', '127.0.0.1/32', '--turn-bandwidth', '256KiB'] });
  const p = await peerServer();
  let al = null;
  try {
    await r.waitLog(/turn listening on udp\+tcp/);
    const port = Number(/turn listening on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(r.log)[1]);
    const user = cred('bk-bandwidth');
    al = await allocation(port, user);
    await permit(al, '127.0.0.1');
    const id = (await al.req(M.CONNECT, peerAttr('127.0.0.1', p.port))).attrs.get(A.CONNECTION_ID).readUInt32BE(0);
    const data = await bind(port, user, id);
    await until(() => p.sockets.length === 1, 5000, 'the peer connected');
    const got = [];
    p.sockets[0].on('data', (d) => got.push(d));
    const up = crypto.randomBytes(1 << 20);
    const t0 = Date.now();
    data.sock.write(up);
    await until(() => Buffer.concat(got).length >= up.length, 20000, 'the whole MiB arrived');
    // 256 KiB a second, with at most a 64 KiB read past each hold: a MiB takes four holds' worth,
    // so more than two seconds however the seconds fall (a slower machine only takes longer)
    const took = Date.now() - t0;
    ok(took >= 2000, `the MiB took more than two seconds (${took} ms)`);
    ok(Buffer.concat(got).equals(up), 'every byte, in order');
    ok(await metric(r, 'relay_turn_tcp_pauses_total') > 0, 'holds counted');
  } finally {
    if (al) al.c.sock.destroy();
    p.close();
    await r.stop();
  }
});

test('--max-memory: queues stop near the budget while neither side reads, nothing is lost', async () => {
  const budget = 384 * 1024;
  const r = await startRelay({ tls: false, args: ['--turn-listen', '127.0.0.1:0', '--turn-secret-file', secretFile,
    '--turn-allow-peer', '127.0.0.1/32', '--turn-bandwidth', '0', '--max-message', '128KiB',
    '--max-memory', String(budget)] });
  const p = await peerServer();
  let al = null;
  try {
    await r.waitLog(/turn listening on udp\+tcp/);
    const port = Number(/turn listening on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(r.log)[1]);
    const user = cred('bk-memory');
    al = await allocation(port, user);
    await permit(al, '127.0.0.1');
    const id = (await al.req(M.CONNECT, peerAttr('127.0.0.1', p.port))).attrs.get(A.CONNECTION_ID).readUInt32BE(0);
    const data = await bind(port, user, id);
    await until(() => p.sockets.length === 1, 5000, 'the peer connected');
    const peer = p.sockets[0];
    const got = [];
    peer.on('data', (d) => got.push(d));
    peer.pause();
    data.sock.pause();
    const up = crypto.randomBytes(16 << 20);
    const down = crypto.randomBytes(16 << 20);
    data.sock.write(up);
    peer.write(down);
    await until(async () => await metric(r, 'relay_turn_tcp_pauses_total') >= 2, 20000, 'both senders held');
    let most = 0;
    for (let k = 0; k < 10; k++) { // sampled while nothing is read
      most = Math.max(most, await metric(r, 'relay_turn_stream_buffered_bytes'));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    console.log(`  # TURN's buffers held at most ${most} bytes (budget ${budget})`);
    // per-connection bounds alone would let the four queues reach 1.75 MiB; each side's room is
    // looked at before a read, for the buffer's growth: within the budget itself
    ok(most <= budget, `TURN's buffers stayed within the ${budget}-byte budget (at most ${most})`);
    eq(await metric(r, 'relay_turn_refused_total{reason="memory_budget"}'), 0, 'nothing dropped for the budget');
    peer.resume();
    data.sock.resume();
    await until(() => Buffer.concat(got).length >= up.length, 40000, 'the peer got 16 MiB');
    await until(() => data.received().length >= down.length, 40000, 'the client got 16 MiB');
    ok(Buffer.concat(got).equals(up) && data.received().equals(down), 'every byte, in order, both ways');
  } finally {
    if (al) al.c.sock.destroy();
    p.close();
    await r.stop();
  }
});

// A listener that never accepts, its queue full: a connection to it hangs in SYN-SENT.
async function hangingListener() {
  const proc = spawnTracked('python3', ['-c', 'import socket, time\n' +
    's = socket.socket()\ns.bind(("127.0.0.1", 0))\ns.listen(0)\n' +
    'print(s.getsockname()[1], flush=True)\ntime.sleep(120)\n']);
  const port = await withTimeout(new Promise((resolve) => proc.stdout.once('data', (d) => resolve(Number(String(d).trim())))),
    5000, 'the hanging listener');
  const fillers = [];
  for (let k = 0; k < 3; k++) {
    const f = net.connect(port, '127.0.0.1');
    f.on('error', () => {});
    fillers.push(f);
  }
  await until(() => fillers.some((f) => f.readyState === 'open'), 5000, 'its queue filled');
  return { port, close() { for (const f of fillers) f.destroy(); proc.kill(); } };
}

test('the test clock 31 s on: unbound connections closed, a hanging Connect 447, an expired credential ends it all', async () => {
  await server();
  const unboundUser = cred('bk-unbound');
  const al = await allocation(turnPort, unboundUser);
  const hangAl = await allocation(turnPort, cred('bk-hang'));
  const expiringUser = cred('bk-expiring', 25);
  const expiring = await allocation(turnPort, expiringUser);
  const marker = await allocation(turnPort, cred('bk-marker', 15)); // ends at the pass at +20 s
  const p = await peerServer();
  const p2 = await peerServer();
  const hang = await hangingListener();
  try {
    await permit(al, '127.0.0.1');
    await permit(hangAl, '127.0.0.1');
    await permit(expiring, '127.0.0.1');
    const id = (await al.req(M.CONNECT, peerAttr('127.0.0.1', p.port))).attrs.get(A.CONNECTION_ID).readUInt32BE(0);
    await until(() => p.sockets.length === 1, 5000, 'the peer connected');
    let hangAnswer = null;
    hangAl.req(M.CONNECT, peerAttr('127.0.0.1', hang.port)).then((m) => { hangAnswer = m; });
    const eid = (await expiring.req(M.CONNECT, peerAttr('127.0.0.1', p2.port))).attrs.get(A.CONNECTION_ID).readUInt32BE(0);
    const data = await bind(turnPort, expiringUser, eid);
    ok(data instanceof Conn, 'a connection bound under a credential with 25 s left');

    relay.advance(20000);
    // a timer pass at +20 s has run: it ended the marker (after its connection checks), and a
    // request answered since went through the TURN loop after that pass
    await relay.waitLog(/'bk-marker' from .* ended \(credential expired\)/, 5000);
    eq(code(await al.req(M.CREATE_PERMISSION, peerAttr('127.0.0.1', 9))), 0, 'the TURN loop answers after the pass');
    const open = (sock) => !sock.destroyed && !sock.readableEnded;
    ok(open(p.sockets[0]), 'the unbound connection is still open 20 s later');
    ok(hangAnswer === null, 'the hanging Connect is not answered 20 s later');
    ok(open(data.sock), 'the expiring credential\'s connection is still open');

    relay.advance(11000);
    await withTimeout(socketClosed(p.sockets[0]), 5000, 'the unbound connection closed past 30 s');
    eq(await bind(turnPort, unboundUser, id), 400, 'its id is unknown now');
    eq(await metric(relay, 'relay_turn_refused_total{reason="connection_unbound"}'), 1, 'counted');
    await until(() => hangAnswer !== null, 5000, 'the hanging Connect answered');
    eq(code(hangAnswer), 447, 'the hanging Connect: 447 past 30 s');
    await withTimeout(data.closed, 5000, 'the expired credential\'s data connection closed');
    await relay.waitLog(/'bk-expiring' from .* ended \(credential expired\)/, 5000);
  } finally {
    for (const a of [al, hangAl, expiring, marker]) a.c.sock.destroy();
    p.close();
    p2.close();
    hang.close();
    await relay.stop();
  }
});

run();
