// bench/turn-alloc.js: TURN allocations per second against a server on UDP, as a WebRTC client
// makes them (RFC 8656 section 7.2): an Allocate without credentials, the 401 with REALM and
// NONCE, the Allocate again with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY (RFC 8489 9.2).
// One UDP socket per allocation (an allocation is per 5-tuple), WINDOW of them at a time.
// turnutils_uclient is no use for this: it paces its own session setup (about 9/s here).
// usage: node bench/turn-alloc.js HOST PORT USERNAME PASSWORD COUNT [WINDOW]
// Prints one JSON line: {"allocations": N, "ok": N, "failed": N, "wall_s": S, "per_s": R}.
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');

const [host, port, username, password, count, window] = process.argv.slice(2);
const total = Number(count);
const win = Number(window || 32);
const MAGIC = 0x2112a442;

// Attribute TLV, padded to 4 bytes.
function attr(type, value) {
  const pad = (4 - (value.length % 4)) % 4;
  const b = Buffer.alloc(4 + value.length + pad);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(value.length, 2);
  value.copy(b, 4);
  return b;
}

// A request of @type with @attrs; with @key, MESSAGE-INTEGRITY over it (length covering it).
function message(type, txid, attrs, key) {
  const body = Buffer.concat(attrs);
  const head = Buffer.alloc(20);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(body.length + (key ? 24 : 0), 2);
  head.writeUInt32BE(MAGIC, 4);
  txid.copy(head, 8);
  const msg = Buffer.concat([head, body]);
  if (!key) return msg;
  const mi = crypto.createHmac('sha1', key).update(msg).digest();
  return Buffer.concat([msg, attr(0x0008, mi)]);
}

// { type, attrs: Map(type -> Buffer) } of a STUN message, or null.
function parse(buf) {
  if (buf.length < 20 || buf.readUInt32BE(4) !== MAGIC) return null;
  const attrs = new Map();
  for (let o = 20; o + 4 <= buf.length;) {
    const t = buf.readUInt16BE(o);
    const l = buf.readUInt16BE(o + 2);
    attrs.set(t, buf.subarray(o + 4, o + 4 + l));
    o += 4 + l + ((4 - (l % 4)) % 4);
  }
  return { type: buf.readUInt16BE(0), attrs };
}

const transport = attr(0x0019, Buffer.from([17, 0, 0, 0])); // REQUESTED-TRANSPORT: UDP

// Sockets stay open until the end: a closed one's port could come back to a later socket, and a
// server still holding an allocation for that 5-tuple answers 437.
const sockets = [];

// One allocation on its own socket; resolves true when the server allocated.
function allocate() {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sockets.push(sock);
    const done = (okay) => {
      clearTimeout(timer);
      sock.removeAllListeners('message');
      resolve(okay);
    };
    const timer = setTimeout(() => done(false), 5000);
    sock.on('error', () => done(false));
    sock.on('message', (buf) => {
      const m = parse(buf);
      if (!m) return;
      if (m.type === 0x0103) return done(true);
      const realm = m.attrs.get(0x0014);
      const nonce = m.attrs.get(0x0015);
      if (m.type !== 0x0113 || !realm || !nonce || sock.authed) return done(false);
      sock.authed = true;
      const key = crypto.createHash('md5').update(`${username}:${realm.toString()}:${password}`).digest();
      sock.send(message(0x0003, crypto.randomBytes(12), [attr(0x0006, Buffer.from(username)), attr(0x0014, realm),
        attr(0x0015, nonce), transport], key), Number(port), host);
    });
    sock.send(message(0x0003, crypto.randomBytes(12), [transport]), Number(port), host);
  });
}

(async () => {
  let next = 0;
  let good = 0;
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (next < total) {
      next++;
      if (await allocate()) good++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(win, total) }, worker));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const s of sockets) s.close();
  console.log(JSON.stringify({ allocations: total, ok: good, failed: total - good, wall_s: Number(wall.toFixed(3)),
    per_s: Number((good / wall).toFixed(1)) }));
})();
