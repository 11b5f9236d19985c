// t2012: two UDP allocations on one relay reach each other with no --turn-allow-peer: A's
// CreatePermission and Send to B's relayed address (127.0.0.1:PORT, loopback and the relay's
// own IP) arrive at B as a Data indication, B's ChannelData comes back to A, both ways with
// channels too. Once B's allocation is deleted (Refresh, lifetime 0) its address is nobody's:
// A's Send, ChannelData on the channel it bound while B lived, CreatePermission and ChannelBind
// to it are refused (counted as forbidden_peer, 403), and a socket another process binds on the
// freed port receives nothing. Before, a relayed address was refused as the relay's own (403 on
// the first CreatePermission). Permissions on the relay's own IP are per port: a third user's
// allocation E, whose relayed address has the same IP, and a local socket on 127.0.0.1 send to
// B's relayed address and B's client gets nothing (no_permission; before, both arrived as Data
// indications: B's permission for A was for the IP), while A's datagrams still arrive; and once
// B is gone, what a socket on its freed port sends to A does not arrive on the channel A bound
// to B (before: ChannelData on it). Also: CreatePermission ignores the port (RFC 8656 9), so
// port 0 is fine for a public peer (before: 403 "peer port 0"); ChannelBind to port 0 is 400 and
// a Send to it is dropped (bad_request). coturn's uclient does the same in t2012-turn-relay-to-relay.sh.
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');
const fs = require('fs');
const path = require('path');
const { test, ok, eq, run, until, withTimeout, tmpdir, startRelay } = require('./lib.js');
const { stun } = require('./turnclient.js');

const A = { ...stun.ATTR, CHANNEL_NUMBER: 0x000c };
const M = { ALLOCATE: 0x003, REFRESH: 0x004, CREATE_PERMISSION: 0x008, CHANNEL_BIND: 0x009, SEND: 0x016, DATA: 0x017 };
const SECRET = 't2012-' + crypto.randomBytes(8).toString('hex');

const xorPeer = (to) => (tid) => stun.attr(A.XOR_PEER, stun.xorAddr(to.address, to.port, tid));
const channelNumber = (n) => stun.attr(A.CHANNEL_NUMBER, Buffer.from([n >> 8, n & 255, 0, 0]));
const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v, 0); return b; };

// A UDP allocation on 127.0.0.1:@port: { relayed, got, req(type, attrs) -> error code (0: success),
// send(to, text), channel(number, text), close() }. got: what arrived, { how: 'data' (a Data
// indication, with from) or 'channel' (ChannelData, with number), text }.
async function allocation(port, name) {
  const s = dgram.createSocket('udp4');
  const waiting = new Map();
  const got = [];
  s.on('message', (b) => {
    if (b.length >= 4 && (b[0] & 0xc0) === 0x40) {
      got.push({ how: 'channel', number: b.readUInt16BE(0), text: b.subarray(4, 4 + b.readUInt16BE(2)).toString() });
      return;
    }
    const m = stun.parse(b);
    if (!m) return;
    if (m.type === M.DATA) {
      got.push({ how: 'data', from: stun.parseXorAddr(m.attrs.get(A.XOR_PEER), m.tid), text: m.attrs.get(A.DATA).toString() });
      return;
    }
    const w = waiting.get(m.tid.toString('hex'));
    if (w) w(m);
  });
  await new Promise((resolve) => s.bind(0, '127.0.0.1', resolve));
  const request = (type, attrs, key) => {
    const { tid, buf } = stun.message(type, attrs, { key });
    const p = new Promise((resolve) => waiting.set(tid.toString('hex'), resolve));
    s.send(buf, port, '127.0.0.1');
    return withTimeout(p, 5000, `an answer to 0x${type.toString(16)}`);
  };
  const username = `${Math.floor(Date.now() / 1000) + 600}:${name}`;
  const password = crypto.createHmac('sha1', SECRET).update(username).digest('base64');
  const rt = stun.attr(A.TRANSPORT, Buffer.from([17, 0, 0, 0]));
  const first = await request(M.ALLOCATE, [rt]);
  eq(stun.errorCode(first), 401, `${name}: challenged`);
  const { key, auth } = stun.longTerm(first, username, password);
  const ans = await request(M.ALLOCATE, [rt, ...auth()], key);
  eq(stun.errorCode(ans), 0, `${name}: allocated`);
  const withAuth = (attrs) => (tid) => [...attrs.map((a) => (typeof a === 'function' ? a(tid) : a)), ...auth()];
  return {
    relayed: stun.parseXorAddr(ans.attrs.get(A.XOR_RELAYED), ans.tid),
    got,
    req: async (type, attrs) => stun.errorCode(await request(type, withAuth(attrs), key)),
    send: (to, text) => s.send(stun.message(M.SEND, (tid) => [xorPeer(to)(tid), stun.attr(A.DATA, Buffer.from(text))]).buf, port, '127.0.0.1'),
    channel(number, text) {
      const data = Buffer.from(text);
      const h = Buffer.alloc(4);
      h.writeUInt16BE(number, 0);
      h.writeUInt16BE(data.length, 2);
      s.send(Buffer.concat([h, data]), port, '127.0.0.1');
    },
    close: () => s.close(),
  };
}

// relay_turn_refused_total{reason=@reason} in /metrics.
async function refused(reason) {
  const text = await (await fetch(`${r.base}/metrics`)).text();
  const m = new RegExp(`^relay_turn_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

const arrived = (al, how, text) => until(() => al.got.find((g) => g.how === how && g.text === text), 5000, `${how} '${text}'`);

let r;
let turnPort;
let a;
let b;
let c;

test('start: TURN on 127.0.0.1, no --turn-allow-peer', async () => {
  const secretFile = path.join(tmpdir(), 'turn-secret');
  fs.writeFileSync(secretFile, `${SECRET}\n`);
  r = await startRelay({ tls: false, args: ['--turn-listen', '127.0.0.1:0', '--turn-secret-file', secretFile, '--access-rate', '0'] });
  await r.waitLog(/turn listening on udp\+tcp 127\.0\.0\.1:\d+/);
  turnPort = Number(/turn listening on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(r.log)[1]);
});

test('A and B reach each other at their relayed addresses, with Send and with channels', async () => {
  a = await allocation(turnPort, 'bk-a');
  b = await allocation(turnPort, 'bk-b');
  c = await allocation(turnPort, 'bk-c');
  eq(a.relayed.address, '127.0.0.1', 'relayed on the relay\'s own loopback IP');
  eq(await a.req(M.CREATE_PERMISSION, [xorPeer(b.relayed)]), 0, 'A: CreatePermission for B\'s relayed address');
  eq(await b.req(M.CREATE_PERMISSION, [xorPeer(a.relayed)]), 0, 'B: CreatePermission for A\'s relayed address');
  a.send(b.relayed, 'a-send');
  const d = await arrived(b, 'data', 'a-send');
  eq(`${d.from.address}:${d.from.port}`, `${a.relayed.address}:${a.relayed.port}`, 'B got a Data indication from A\'s relayed address');
  eq(await b.req(M.CHANNEL_BIND, [channelNumber(0x4000), xorPeer(a.relayed)]), 0, 'B: ChannelBind to A\'s relayed address');
  b.channel(0x4000, 'b-channel');
  ok(await arrived(a, 'data', 'b-channel'), 'A got B\'s ChannelData as a Data indication');
  eq(await a.req(M.CHANNEL_BIND, [channelNumber(0x4001), xorPeer(b.relayed)]), 0, 'A: ChannelBind to B\'s relayed address');
  b.send(a.relayed, 'b-send');
  eq((await arrived(a, 'channel', 'b-send')).number, 0x4001, 'A got B\'s Send on its channel');
  a.channel(0x4001, 'a-channel');
  eq((await arrived(b, 'channel', 'a-channel')).number, 0x4000, 'B got A\'s ChannelData on its channel');
  eq(await a.req(M.CREATE_PERMISSION, [xorPeer({ address: '127.0.0.1', port: turnPort })]), 403,
    'the relay\'s own IP on a port no allocation holds (the TURN port): 403');
});

test('another user\'s allocation E, and a local socket, on the relay\'s IP do not get into B', async () => {
  // B's permission and channel name A's relayed address: E's relayed address has the same IP
  // (every user's does) and a port CreatePermission answers reveal; before, B's permission was
  // for the IP and E's datagrams reached B's client (the review's r7-scan.js)
  const e = await allocation(turnPort, 'bk-e');
  try {
    const before = await refused('no_permission');
    eq(await e.req(M.CREATE_PERMISSION, [xorPeer(b.relayed)]), 0, 'E: CreatePermission for B\'s relayed address (live: allowed)');
    e.send(b.relayed, 'e-inject');
    const local = dgram.createSocket('udp4');
    await new Promise((resolve) => local.bind(0, '127.0.0.1', resolve));
    try {
      await new Promise((resolve) => local.send('local-inject', b.relayed.port, '127.0.0.1', resolve));
    } finally {
      local.close();
    }
    a.send(b.relayed, 'a-after'); // behind them: A's datagrams still get in
    await arrived(b, 'channel', 'a-after'); // on B's channel to A
    await until(async () => (await refused('no_permission')) >= before + 2, 5000, 'E\'s and the local socket\'s datagrams counted as no_permission')
      .catch((err) => { throw new Error(`${err.message}; B's client got: ${JSON.stringify(b.got.filter((g) => /inject/.test(g.text)))}`); });
    eq(b.got.filter((g) => /inject/.test(g.text)).length, 0, 'nothing from E or the local socket reached B\'s client');
  } finally {
    e.close();
  }
});

test('B deleted: its relayed address is refused to A, and a socket on the freed port gets nothing', async () => {
  const before = await refused('forbidden_peer');
  eq(await b.req(M.REFRESH, [stun.attr(A.LIFETIME, u32(0))]), 0, 'B: Refresh with lifetime 0');
  // another process takes the freed port (the relay closed it before answering)
  const squatter = dgram.createSocket('udp4');
  const squatted = [];
  squatter.on('message', (m) => squatted.push(m.toString()));
  await new Promise((resolve, reject) => { squatter.once('error', reject); squatter.bind(b.relayed.port, '127.0.0.1', resolve); });
  try {
    a.send(b.relayed, 'late-send');
    a.channel(0x4001, 'late-channel');
    await until(async () => (await refused('forbidden_peer')) >= before + 2, 5000, 'the Send and the ChannelData counted as forbidden_peer');
    // a marker to C behind them: sent in order on loopback, so what went to the squatter is there
    eq(await a.req(M.CREATE_PERMISSION, [xorPeer(c.relayed)]), 0, 'A: CreatePermission for C');
    eq(await c.req(M.CREATE_PERMISSION, [xorPeer(a.relayed)]), 0, 'C: CreatePermission for A');
    a.send(c.relayed, 'marker');
    await arrived(c, 'data', 'marker');
    eq(squatted.length, 0, 'nothing reached the freed port');
    // the other way: A's permission and channel 0x4001 named B's old address; what the
    // squatter sends from it is nobody's relayed address (before: ChannelData on 0x4001)
    const dropped = await refused('no_permission');
    squatter.send('squat', a.relayed.port, '127.0.0.1');
    await until(async () => (await refused('no_permission')) > dropped, 5000, 'the squatter\'s datagram counted as no_permission')
      .catch((err) => { throw new Error(`${err.message}; A's client got: ${JSON.stringify(a.got.filter((g) => g.text === 'squat'))}`); });
    eq(a.got.filter((g) => g.text === 'squat').length, 0, 'nothing from the freed port reached A\'s client');
    eq(await a.req(M.CREATE_PERMISSION, [xorPeer(b.relayed)]), 403, 'A: CreatePermission for B\'s old address: 403');
    eq(await a.req(M.CHANNEL_BIND, [channelNumber(0x4002), xorPeer(b.relayed)]), 403, 'A: ChannelBind to it: 403');
  } finally {
    squatter.close();
  }
});

test('port 0: CreatePermission ignores it, ChannelBind 400, Send dropped', async () => {
  eq(await a.req(M.CREATE_PERMISSION, [xorPeer({ address: '192.0.2.1', port: 0 })]), 0, 'CreatePermission 192.0.2.1:0');
  eq(await a.req(M.CHANNEL_BIND, [channelNumber(0x4003), xorPeer({ address: '192.0.2.1', port: 0 })]), 400, 'ChannelBind 192.0.2.1:0: 400');
  const before = await refused('bad_request');
  a.send({ address: '192.0.2.1', port: 0 }, 'to-port-0');
  await until(async () => (await refused('bad_request')) > before, 5000, 'the Send to port 0 counted as bad_request');
  eq(await a.req(M.CREATE_PERMISSION, [xorPeer({ address: '127.0.0.1', port: 0 })]), 403, 'the relay\'s own IP with port 0: 403');
});

test('stop', async () => {
  for (const al of [a, b, c]) if (al) al.close();
  const e = await r.stop();
  eq(e.code, 0, 'relay exits cleanly');
});

run();
