// A minimal TURN client over UDP, TCP or TLS for tests (RFC 8656 with RFC 8489 long-term
// credentials): Allocate (answering the 401 with REALM and NONCE), CreatePermission, Send
// indications, and Data indications received. Enough to make an allocation relay bytes both
// ways; not a library. Its STUN codec (stun: build, sign and parse messages, XOR addresses)
// serves the tests that speak STUN themselves (t2030-turn-tcp.js, t2020-turn-idle.js), and
// turnMetrics() the ones that count TURN's work in /metrics (t2100, t2101).
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');
const net = require('net');
const tls = require('tls');
const zlib = require('zlib');

// ---- the STUN codec (RFC 8489), shared by the TURN tests that speak STUN themselves ----

const MAGIC = 0x2112a442;
const ATTR = { USERNAME: 0x0006, MI: 0x0008, ERROR: 0x0009, LIFETIME: 0x000d, XOR_PEER: 0x0012, DATA: 0x0013,
  REALM: 0x0014, NONCE: 0x0015, XOR_RELAYED: 0x0016, TRANSPORT: 0x0019, CONNECTION_ID: 0x002a, FINGERPRINT: 0x8028 };

// An attribute: type, length, @value padded to 4 bytes.
function attr(type, value) {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(value.length, 2);
  return Buffer.concat([h, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

// The 16 bytes of an IPv6 text address: "::" expanded, an IPv4 tail taken as two groups.
function ipv6Bytes(ip) {
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (m) {
    const b = m[2].split('.').map(Number);
    ip = `${m[1]}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, k) => out.writeUInt16BE(parseInt(g, 16), 2 * k));
  return out;
}

// What an IPv6 address is XORed with: the magic cookie, then the transaction id @tid.
function xorMask(tid) {
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(MAGIC, 0);
  tid.copy(mask, 4);
  return mask;
}

// The value of an XOR-*-ADDRESS for an IPv4 "a.b.c.d" or IPv6 text @ip (IPv6 needs the message's @tid).
function xorAddr(ip, port, tid) {
  const v6 = net.isIPv6(ip);
  const v = Buffer.alloc(v6 ? 20 : 8);
  v[1] = v6 ? 0x02 : 0x01;
  v.writeUInt16BE(port ^ (MAGIC >>> 16), 2);
  if (!v6) {
    v.writeUInt32BE((ip.split('.').reduce((a, b) => (a << 8) | Number(b), 0) ^ MAGIC) >>> 0, 4);
    return v;
  }
  const raw = ipv6Bytes(ip);
  const mask = xorMask(tid);
  for (let k = 0; k < 16; k++) v[4 + k] = raw[k] ^ mask[k];
  return v;
}

// { address, port } of an XOR-*-ADDRESS value @v (IPv6, needs @tid: eight hex groups, not shortened).
function parseXorAddr(v, tid) {
  const port = v.readUInt16BE(2) ^ (MAGIC >>> 16);
  if (v[1] === 0x02) {
    const mask = xorMask(tid);
    const groups = [];
    for (let k = 0; k < 16; k += 2) groups.push((((v[4 + k] ^ mask[k]) << 8) | (v[5 + k] ^ mask[k + 1])).toString(16));
    return { address: groups.join(':'), port };
  }
  const n = (v.readUInt32BE(4) ^ MAGIC) >>> 0;
  return { address: [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'), port };
}

// A message of @type with transaction id @tid and the attributes @attrs (Buffers from attr());
// with @opts.key MESSAGE-INTEGRITY after them, with @opts.fingerprint FINGERPRINT last, each
// computed with the header's length counting up to and including itself.
function encode(type, tid, attrs, opts = {}) {
  let body = Buffer.concat(attrs);
  const head = (len) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(type, 0);
    h.writeUInt16BE(len, 2);
    h.writeUInt32BE(MAGIC, 4);
    tid.copy(h, 8);
    return h;
  };
  if (opts.key) {
    const mac = crypto.createHmac('sha1', opts.key).update(Buffer.concat([head(body.length + 24), body])).digest();
    body = Buffer.concat([body, attr(ATTR.MI, mac)]);
  }
  if (opts.fingerprint) {
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE((zlib.crc32(Buffer.concat([head(body.length + 8), body])) ^ 0x5354554e) >>> 0);
    body = Buffer.concat([body, attr(ATTR.FINGERPRINT, crc)]);
  }
  return Buffer.concat([head(body.length), body]);
}

// encode() with a fresh transaction id: { tid, buf }. @attrs: the attributes, or a function of
// the tid returning them (an IPv6 XOR-PEER-ADDRESS depends on it).
function message(type, attrs, opts) {
  const tid = crypto.randomBytes(12);
  return { tid, buf: encode(type, tid, typeof attrs === 'function' ? attrs(tid) : attrs, opts) };
}

// { type, tid, attrs: Map(type -> Buffer, the first of each type) } of a STUN message @b, or
// null when it is not one (too short, no magic cookie).
function parse(b) {
  if (b.length < 20 || b.readUInt32BE(4) !== MAGIC) return null;
  const m = { type: b.readUInt16BE(0), tid: Buffer.from(b.subarray(8, 20)), attrs: new Map() };
  for (let i = 20; i + 4 <= b.length;) {
    const t = b.readUInt16BE(i);
    const len = b.readUInt16BE(i + 2);
    if (!m.attrs.has(t)) m.attrs.set(t, Buffer.from(b.subarray(i + 4, i + 4 + len)));
    i += 4 + len + ((4 - (len % 4)) % 4);
  }
  return m;
}

// The ERROR-CODE of a parsed message @m (class * 100 + number), or 0 for none.
function errorCode(m) {
  const e = m.attrs.get(ATTR.ERROR);
  return e ? (e[2] & 7) * 100 + e[3] : 0;
}

// Long-term credentials (RFC 8489 section 9.2) from the 401 @challenge: { key, auth() }, auth()
// the USERNAME, REALM and NONCE attributes each later request carries with MESSAGE-INTEGRITY.
function longTerm(challenge, username, password) {
  const realm = challenge.attrs.get(ATTR.REALM);
  const nonce = challenge.attrs.get(ATTR.NONCE);
  const key = crypto.createHash('md5').update(`${username}:${realm}:${password}`).digest();
  const auth = () => [attr(ATTR.USERNAME, Buffer.from(username)), attr(ATTR.REALM, realm), attr(ATTR.NONCE, nonce)];
  return { key, auth };
}

const stun = { MAGIC, ATTR, attr, xorAddr, parseXorAddr, encode, message, parse, errorCode, longTerm };

// ---- the TURN client ----

// The client's socket: a UDP one, or a TCP (TLS: @opts.tls) connection whose bytes are cut
// into STUN messages and ChannelData (RFC 8656 section 12.5: padded to 4 bytes).
// { send(buf), close(), sock }.
async function transport(host, port, opts, onMessage) {
  if (!opts.tcp && !opts.tls) {
    const sock = dgram.createSocket('udp4');
    sock.on('message', onMessage);
    await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
    return { sock, send: (b) => sock.send(b, port, host), close: () => sock.close() };
  }
  const sock = opts.tls ? tls.connect({ port, host, rejectUnauthorized: false }) : net.connect(port, host);
  await new Promise((resolve, reject) => {
    sock.once(opts.tls ? 'secureConnect' : 'connect', resolve);
    sock.once('error', reject);
  });
  sock.on('error', () => {});
  let held = Buffer.alloc(0);
  sock.on('data', (d) => {
    held = Buffer.concat([held, d]);
    for (;;) {
      if (held.length < 4) break;
      const channel = (held[0] & 0xc0) === 0x40;
      const len = channel ? 4 + held.readUInt16BE(2) + ((4 - (held.readUInt16BE(2) % 4)) % 4) : 20 + held.readUInt16BE(2);
      if (held.length < len) break;
      onMessage(held.subarray(0, len));
      held = held.subarray(len);
    }
  });
  return { sock, send: (b) => sock.write(b), close: () => sock.destroy() };
}

// Allocates on @host:@port as @username/@password (over TCP or TLS: @opts.tcp, @opts.tls); resolves
// { relayed, permit(ip, port), refresh(seconds), send(ip, port, data), received: [Buffer], sock, close() }.
async function allocate(host, port, username, password, ms = 5000, opts = {}) {
  const waiting = new Map();
  const received = [];
  const t = await transport(host, port, opts, (b) => {
    const m = parse(b);
    if (!m) return;
    if (m.type === 0x0017 && m.attrs.has(ATTR.DATA)) received.push(m.attrs.get(ATTR.DATA));
    const w = waiting.get(m.tid.toString('hex'));
    if (w) w(m);
  });
  const request = (type, attrs, key) => new Promise((resolve, reject) => {
    const { tid, buf } = message(type, attrs, { key });
    const id = tid.toString('hex');
    const timer = setTimeout(() => { waiting.delete(id); reject(new Error(`TURN request 0x${type.toString(16)}: no answer in ${ms} ms`)); }, ms);
    waiting.set(id, (m) => { clearTimeout(timer); waiting.delete(id); resolve(m); });
    t.send(buf);
  });
  const udp = attr(ATTR.TRANSPORT, Buffer.from([17, 0, 0, 0])); // relayed to peers over UDP
  const first = await request(0x0003, [udp]);
  if (first.type !== 0x0113 || !first.attrs.has(ATTR.NONCE)) throw new Error(`Allocate: expected a 401, got 0x${first.type.toString(16)}`);
  const { key, auth } = longTerm(first, username, password);
  const ok = await request(0x0003, [udp, ...auth()], key);
  if (ok.type !== 0x0103) {
    const e = ok.attrs.get(ATTR.ERROR);
    throw new Error(`Allocate refused: 0x${ok.type.toString(16)} ${e ? e.subarray(4).toString() : ''}`);
  }
  return {
    relayed: parseXorAddr(ok.attrs.get(ATTR.XOR_RELAYED), ok.tid),
    received,
    async permit(ip, peerPort) {
      const m = await request(0x0008, (tid) => [attr(ATTR.XOR_PEER, xorAddr(ip, peerPort, tid)), ...auth()], key);
      if (m.type !== 0x0108) throw new Error(`CreatePermission refused: 0x${m.type.toString(16)}`);
    },
    // Refresh with LIFETIME @seconds; resolves the answer's type (0x0104: success).
    async refresh(seconds) {
      const life = Buffer.alloc(4);
      life.writeUInt32BE(seconds, 0);
      return (await request(0x0004, [attr(ATTR.LIFETIME, life), ...auth()], key)).type;
    },
    sock: t.sock,
    send(ip, peerPort, data) {
      t.send(message(0x0016, (tid) => [attr(ATTR.XOR_PEER, xorAddr(ip, peerPort, tid)), attr(ATTR.DATA, data)]).buf);
    },
    close() { t.close(); },
  };
}

// The relay_turn_* counters of /metrics of @relay (lib.js startRelay), by name.
async function turnMetrics(relay) {
  const text = await (await fetch(`${relay.base}/metrics`)).text();
  const m = {};
  for (const l of text.split('\n')) {
    const x = /^(relay_turn_[a-z_]+) (\d+)$/.exec(l);
    if (x) m[x[1]] = Number(x[2]);
  }
  return m;
}

module.exports = { allocate, stun, turnMetrics };
