// t2011: the relay's own addresses stay closed to TURN peers when --turn-allow-peer opens the
// network they are in. On loopback every 127.x address is this machine's: TURN listens on
// 127.0.0.2, HTTP on 127.0.0.1, /metrics on 127.0.0.3, and --turn-allow-peer 127.0.0.0/8 opens
// the lot. A UDP allocation's CreatePermission to the HTTP and metrics listeners is 403, and so
// is one to the relay's own IP on any other port: to a UDP service the test binds on 127.0.0.1
// (a resolver or SNMP on the relay's host; before, allowed: only the listening ports and the
// relay port range were refused to UDP allocations); a TCP allocation's CreatePermission and
// Connect to the HTTP listener's IP, on any port, are 403; another 127.x address (127.0.0.4,
// not the relay's) is allowed both ways. CreatePermission ignores the port (RFC 8656 9): port 0
// to 127.0.0.4 is fine, to the relay's own IP 403; ChannelBind to port 0 is 400 (before: bound).
// And 0.0.0.0 (which Linux delivers to this host) is always the relay's own: with
// --turn-allow-peer 0.0.0.0/0, CreatePermission (UDP and TCP) and Connect to it are 403; before,
// they were allowed and Connect reached the relay's own HTTP listener. STUN via turnclient.js's
// codec. Relayed addresses of live allocations (the one exception) are t2012's; here only that
// a --turn-external-ip (127.0.0.2) that is another address of this machine than the listener's
// (127.0.0.1) is not one: 403, and a UDP service on it at the relay port gets nothing (before:
// allowed, and the service got the datagram).
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');
const fs = require('fs');
const net = require('net');
const path = require('path');
const { test, ok, eq, run, until, withTimeout, tmpdir, startRelay } = require('./lib.js');
const { stun } = require('./turnclient.js');

const A = stun.ATTR;
const M = { ALLOCATE: 0x003, CREATE_PERMISSION: 0x008, CHANNEL_BIND: 0x009, CONNECT: 0x00a, SEND: 0x016 };
const SECRET = 't2011-' + crypto.randomBytes(8).toString('hex');

// An XOR-PEER-ADDRESS attribute for IPv4 @ip:@port.
function xorPeer(ip, port) {
  return stun.attr(A.XOR_PEER, stun.xorAddr(ip, port));
}

// A STUN client over UDP or TCP to @port on @host: { request(type, attrs, key), close() }.
async function client(host, port, tcp) {
  const waiting = new Map();
  const answer = (b) => { const m = stun.parse(b); const w = m && waiting.get(m.tid.toString('hex')); if (w) w(m); };
  let send;
  let close;
  if (tcp) {
    const s = net.connect(port, host);
    await withTimeout(new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject); }), 5000, 'TCP connect');
    s.on('error', () => {});
    let held = Buffer.alloc(0);
    s.on('data', (d) => {
      held = Buffer.concat([held, d]);
      while (held.length >= 20 && held.length >= 20 + held.readUInt16BE(2)) {
        const len = 20 + held.readUInt16BE(2);
        answer(held.subarray(0, len));
        held = held.subarray(len);
      }
    });
    send = (b) => s.write(b);
    close = () => s.destroy();
  } else {
    const s = dgram.createSocket('udp4');
    s.on('message', answer);
    await new Promise((resolve) => s.bind(0, '127.0.0.1', resolve));
    send = (b) => s.send(b, port, host);
    close = () => s.close();
  }
  return {
    send,
    request(type, attrs, key) {
      const { tid, buf } = stun.message(type, attrs, { key });
      const p = new Promise((resolve) => waiting.set(tid.toString('hex'), resolve));
      send(buf);
      return withTimeout(p, 5000, `an answer to 0x${type.toString(16)}`);
    },
    close,
  };
}

// An allocation relaying over UDP (17) or TCP (6, over a TCP connection): { req(type, attrs) }.
async function allocation(host, port, transport) {
  const c = await client(host, port, transport === 6);
  const username = `${Math.floor(Date.now() / 1000) + 600}:own-${transport}`;
  const password = crypto.createHmac('sha1', SECRET).update(username).digest('base64');
  const rt = stun.attr(A.TRANSPORT, Buffer.from([transport, 0, 0, 0]));
  const first = await c.request(M.ALLOCATE, [rt]);
  eq(stun.errorCode(first), 401, 'challenged');
  const { key, auth } = stun.longTerm(first, username, password);
  const ans = await c.request(M.ALLOCATE, [rt, ...auth()], key);
  eq(stun.errorCode(ans), 0, `allocated (transport ${transport})`);
  return {
    relayed: stun.parseXorAddr(ans.attrs.get(A.XOR_RELAYED), ans.tid),
    req: async (type, attrs) => stun.errorCode(await c.request(type, [...attrs, ...auth()], key)),
    send: (ip, port, text) => c.send(stun.message(M.SEND, [xorPeer(ip, port), stun.attr(A.DATA, Buffer.from(text))]).buf),
    close: c.close,
  };
}

// relay_turn_refused_total{reason=@reason} in /metrics.
async function refused(reason) {
  const text = await (await fetch(`${r.base}/metrics`)).text();
  const m = new RegExp(`^relay_turn_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

let r;
let turnPort;

// --turn-allow-peer given twice: both CIDRs hold (before, the last flag replaced the first and
// every 127.x peer below was refused).
test('start: TURN on 127.0.0.2, HTTP on 127.0.0.1, metrics on 127.0.0.3, 127.0.0.0/8 allowed', async () => {
  const secretFile = path.join(tmpdir(), 'turn-secret');
  fs.writeFileSync(secretFile, `${SECRET}\n`);
  r = await startRelay({ tls: false, args: ['--turn-listen', '127.0.0.2:0', '--turn-secret-file', secretFile,
    '--turn-allow-peer', '127.0.0.0/8', '--metrics-listen', '127.0.0.3:0', '--access-rate', '0',
    '--turn-allow-peer', '192.0.2.0/24'] });
  await r.waitLog(/turn listening on udp\+tcp 127\.0\.0\.2:\d+/);
  turnPort = Number(/turn listening on udp\+tcp 127\.0\.0\.2:(\d+)/.exec(r.log)[1]);
  ok(r.metricsPort > 0, `metrics on 127.0.0.3:${r.metricsPort}`);
});

test('UDP allocation: the relay\'s own IPs are refused on every port, other 127.x peers allowed', async () => {
  const al = await allocation('127.0.0.2', turnPort, 17);
  const service = dgram.createSocket('udp4'); // a UDP service on the relay's host
  await new Promise((resolve) => service.bind(0, '127.0.0.1', resolve));
  try {
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.1', r.port)]), 403, 'the HTTP listener 127.0.0.1');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.3', r.metricsPort)]), 403, 'the metrics listener 127.0.0.3');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.1', turnPort)]), 403, 'TURN\'s port on the HTTP listener\'s IP');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.2', turnPort)]), 403, 'the TURN listener itself');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.4', r.port)]), 0, 'another 127.x address: allowed');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.1', service.address().port)]), 403,
      'a UDP service on the relay\'s IP 127.0.0.1');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.1', 9)]), 403, 'the relay\'s IP on a port nothing listens on');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.4', 0)]), 0, 'CreatePermission ignores the port: 127.0.0.4:0');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.1', 0)]), 403, 'the relay\'s own IP with port 0');
    eq(await al.req(M.CHANNEL_BIND, [stun.attr(0x000c, Buffer.from([0x40, 0, 0, 0])), xorPeer('127.0.0.4', 0)]), 400,
      'ChannelBind to 127.0.0.4:0: 400');
  } finally {
    al.close();
    service.close();
  }
});

test('TCP allocation: the HTTP listener\'s IP on any port is refused, other 127.x peers allowed', async () => {
  const peer = net.createServer((s) => s.on('error', () => {}));
  await new Promise((resolve) => peer.listen(0, '127.0.0.4', resolve));
  const al = await allocation('127.0.0.2', turnPort, 6);
  try {
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.1', 9)]), 403, 'CreatePermission for 127.0.0.1');
    eq(await al.req(M.CONNECT, [xorPeer('127.0.0.1', peer.address().port)]), 403, 'Connect to 127.0.0.1, a port it does not listen on');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.4', 9)]), 0, 'CreatePermission for 127.0.0.4');
    eq(await al.req(M.CONNECT, [xorPeer('127.0.0.4', peer.address().port)]), 0, 'Connect to a peer on 127.0.0.4');
  } finally {
    al.close();
    peer.close();
  }
});

test('stop', async () => {
  const e = await r.stop();
  eq(e.code, 0, 'relay exits cleanly');
});

// 0.0.0.0 reaches this host (Linux delivers it locally): it is always the relay's own, even
// when --turn-allow-peer 0.0.0.0/0 opens every IPv4 peer.
test('start: TURN and HTTP on 127.0.0.1, 0.0.0.0/0 allowed', async () => {
  const secretFile = path.join(tmpdir(), 'turn-secret');
  fs.writeFileSync(secretFile, `${SECRET}\n`);
  r = await startRelay({ tls: false, args: ['--turn-listen', '127.0.0.1:0', '--turn-secret-file', secretFile,
    '--turn-allow-peer', '0.0.0.0/0', '--access-rate', '0'] });
  await r.waitLog(/turn listening on udp\+tcp 127\.0\.0\.1:\d+/);
  turnPort = Number(/turn listening on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(r.log)[1]);
});

test('0.0.0.0 is the relay\'s own: refused for UDP and TCP allocations', async () => {
  const udp = await allocation('127.0.0.1', turnPort, 17);
  try {
    eq(await udp.req(M.CREATE_PERMISSION, [xorPeer('0.0.0.0', r.port)]), 403, 'UDP: 0.0.0.0 on the HTTP port');
    eq(await udp.req(M.CREATE_PERMISSION, [xorPeer('0.0.0.0', turnPort)]), 403, 'UDP: 0.0.0.0 on the TURN port');
    eq(await udp.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.4', r.port)]), 0, 'UDP: another 127.x address: allowed');
  } finally {
    udp.close();
  }
  const tcp = await allocation('127.0.0.1', turnPort, 6);
  try {
    eq(await tcp.req(M.CREATE_PERMISSION, [xorPeer('0.0.0.0', 9)]), 403, 'TCP: CreatePermission for 0.0.0.0');
    eq(await tcp.req(M.CONNECT, [xorPeer('0.0.0.0', r.port)]), 403, 'TCP: Connect to 0.0.0.0 on the HTTP port');
    eq(await tcp.req(M.CONNECT, [xorPeer('0.1.2.3', r.port)]), 403, 'TCP: Connect to 0.1.2.3 (0.0.0.0/8)');
  } finally {
    tcp.close();
  }
});

test('stop (0.0.0.0/0)', async () => {
  const e = await r.stop();
  eq(e.code, 0, 'relay exits cleanly');
});

// --turn-external-ip another address of this machine than the listener's IP (127.0.0.2 beside
// 127.0.0.1: loopback's whole network is this machine's): relayed sockets are bound on
// 127.0.0.1, so a datagram to 127.0.0.2:PORT reaches whatever holds that port there, here a UDP
// service the test binds on the one relay port. The announced IP is not a live relayed address
// (warned at start): CreatePermission to it is 403 and a Send to it is dropped. Before, it was
// live, and the service got the datagram (the review's F1, r2-extip.js).
let service;
const serviceGot = [];
test('start: TURN on 127.0.0.1 announcing 127.0.0.2, a UDP service on 127.0.0.2 at the one relay port', async () => {
  service = dgram.createSocket('udp4');
  service.on('message', (m) => serviceGot.push(m.toString()));
  await new Promise((resolve) => service.bind(0, '127.0.0.2', resolve));
  const port = service.address().port;
  const secretFile = path.join(tmpdir(), 'turn-secret');
  fs.writeFileSync(secretFile, `${SECRET}\n`);
  r = await startRelay({ tls: false, args: ['--turn-listen', '127.0.0.1:0', '--turn-external-ip', '127.0.0.2',
    '--turn-relay-ports', `${port}-${port}`, '--turn-secret-file', secretFile, '--turn-allow-peer', '127.0.0.3/32',
    '--access-rate', '0'] });
  await r.waitLog(/turn listening on udp\+tcp 127\.0\.0\.1:\d+/);
  turnPort = Number(/turn listening on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(r.log)[1]);
  ok(/--turn-external-ip 127\.0\.0\.2\S* is an address of this machine/.test(r.log), 'warned at start');
});

test('the announced IP is not live: CreatePermission 403, Send dropped, nothing reaches the service', async () => {
  const port = service.address().port;
  const peer = dgram.createSocket('udp4'); // an allowed peer, for a marker behind the Send
  const peerGot = [];
  peer.on('message', (m) => peerGot.push(m.toString()));
  await new Promise((resolve) => peer.bind(0, '127.0.0.3', resolve));
  const al = await allocation('127.0.0.1', turnPort, 17);
  try {
    eq(`${al.relayed.address}:${al.relayed.port}`, `127.0.0.2:${port}`, 'relayed at the announced IP, on the one relay port');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.2', port)]), 403, 'CreatePermission to the announced relayed address');
    eq(await al.req(M.CREATE_PERMISSION, [xorPeer('127.0.0.3', peer.address().port)]), 0, 'CreatePermission to 127.0.0.3 (allowed)');
    const before = await refused('forbidden_peer');
    al.send('127.0.0.2', port, 'to-service');
    al.send('127.0.0.3', peer.address().port, 'marker');
    await until(() => peerGot.includes('marker'), 5000, 'the marker at the allowed peer');
    await until(async () => (await refused('forbidden_peer')) > before, 5000, 'the Send counted as forbidden_peer');
    eq(serviceGot.length, 0, 'nothing reached the service on 127.0.0.2');
  } finally {
    al.close();
    peer.close();
  }
});

test('stop (external IP)', async () => {
  service.close();
  const e = await r.stop();
  eq(e.code, 0, 'relay exits cleanly');
});

run();
