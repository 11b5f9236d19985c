// A minimal TURN client over UDP, TCP or TLS for tests (RFC 8656 with RFC 8489 long-term
// credentials): Allocate (answering the 401 with REALM and NONCE), CreatePermission, Send
// indications, and Data indications received. Enough to make an allocation relay bytes both
// ways; not a library.
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');
const net = require('net');
const tls = require('tls');

const MAGIC = 0x2112a442;
const ATTR = { USERNAME: 0x0006, MI: 0x0008, ERROR: 0x0009, REALM: 0x0014, NONCE: 0x0015,
  XOR_PEER: 0x0012, DATA: 0x0013, XOR_RELAYED: 0x0016, TRANSPORT: 0x0019 };

function attr(type, value) {
  const pad = (4 - (value.length % 4)) % 4;
  const h = Buffer.alloc(4);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(value.length, 2);
  return Buffer.concat([h, value, Buffer.alloc(pad)]);
}

function xorAddr(ip, port) {
  const v = Buffer.alloc(8);
  v[1] = 0x01;
  v.writeUInt16BE(port ^ (MAGIC >>> 16), 2);
  v.writeUInt32BE((ip.split('.').reduce((a, b) => (a << 8) | Number(b), 0) ^ MAGIC) >>> 0, 4);
  return v;
}

function parseXorAddr(v) {
  const port = v.readUInt16BE(2) ^ (MAGIC >>> 16);
  const n = (v.readUInt32BE(4) ^ MAGIC) >>> 0;
  return { address: [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'), port };
}

// A message of @type with @attrs; with @key, MESSAGE-INTEGRITY over it (length counting the MI).
function message(type, attrs, key) {
  const tid = crypto.randomBytes(12);
  let body = Buffer.concat(attrs);
  const head = (len) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(type, 0);
    h.writeUInt16BE(len, 2);
    h.writeUInt32BE(MAGIC, 4);
    tid.copy(h, 8);
    return h;
  };
  if (key) {
    const mac = crypto.createHmac('sha1', key).update(Buffer.concat([head(body.length + 24), body])).digest();
    body = Buffer.concat([body, attr(ATTR.MI, mac)]);
  }
  return { tid, buf: Buffer.concat([head(body.length), body]) };
}

function parse(b) {
  if (b.length < 20 || b.readUInt32BE(4) !== MAGIC) return null;
  const m = { type: b.readUInt16BE(0), tid: b.subarray(8, 20), attrs: new Map() };
  for (let i = 20; i + 4 <= b.length;) {
    const t = b.readUInt16BE(i);
    const len = b.readUInt16BE(i + 2);
    m.attrs.set(t, b.subarray(i + 4, i + 4 + len));
    i += 4 + len + ((4 - (len % 4)) % 4);
  }
  return m;
}

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
    if (m.type === 0x0017 && m.attrs.has(ATTR.DATA)) received.push(Buffer.from(m.attrs.get(ATTR.DATA)));
    const w = waiting.get(m.tid.toString('hex'));
    if (w) w(m);
  });
  const request = (type, attrs, key) => new Promise((resolve, reject) => {
    const { tid, buf } = message(type, attrs, key);
    const id = tid.toString('hex');
    const timer = setTimeout(() => { waiting.delete(id); reject(new Error(`TURN request 0x${type.toString(16)}: no answer in ${ms} ms`)); }, ms);
    waiting.set(id, (m) => { clearTimeout(timer); waiting.delete(id); resolve(m); });
    t.send(buf);
  });
  const udp = attr(ATTR.TRANSPORT, Buffer.from([17, 0, 0, 0])); // relayed to peers over UDP
  const first = await request(0x0003, [udp]);
  if (first.type !== 0x0113 || !first.attrs.has(ATTR.NONCE)) throw new Error(`Allocate: expected a 401, got 0x${first.type.toString(16)}`);
  const realm = first.attrs.get(ATTR.REALM);
  const nonce = first.attrs.get(ATTR.NONCE);
  const key = crypto.createHash('md5').update(`${username}:${realm.toString()}:${password}`).digest();
  const auth = () => [attr(ATTR.USERNAME, Buffer.from(username)), attr(ATTR.REALM, realm), attr(ATTR.NONCE, nonce)];
  const ok = await request(0x0003, [udp, ...auth()], key);
  if (ok.type !== 0x0103) {
    const e = ok.attrs.get(ATTR.ERROR);
    throw new Error(`Allocate refused: 0x${ok.type.toString(16)} ${e ? e.subarray(4).toString() : ''}`);
  }
  return {
    relayed: parseXorAddr(ok.attrs.get(ATTR.XOR_RELAYED)),
    received,
    async permit(ip, peerPort) {
      const m = await request(0x0008, [attr(ATTR.XOR_PEER, xorAddr(ip, peerPort)), ...auth()], key);
      if (m.type !== 0x0108) throw new Error(`CreatePermission refused: 0x${m.type.toString(16)}`);
    },
    // Refresh with LIFETIME @seconds; resolves the answer's type (0x0104: success).
    async refresh(seconds) {
      const life = Buffer.alloc(4);
      life.writeUInt32BE(seconds, 0);
      return (await request(0x0004, [attr(0x000d, life), ...auth()], key)).type;
    },
    sock: t.sock,
    send(ip, peerPort, data) {
      t.send(message(0x0016, [attr(ATTR.XOR_PEER, xorAddr(ip, peerPort)), attr(ATTR.DATA, data)]).buf);
    },
    close() { t.close(); },
  };
}

module.exports = { allocate };
