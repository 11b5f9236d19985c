// t1310: websocket limits a peer cannot talk its way past. A frame header announcing more than
// --max-message is closed with 1009 at its first bytes. The frames are written by hand (RFC
// 6455 section 5) on a raw socket: the ws package will not send what these tests need.
'use strict';
const crypto = require('crypto');
const net = require('net');
const { test, ok, eq, run, startRelay, access, join, received, withTimeout } = require('./lib.js');

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
        if (op === 8) sock.gotClose({ code: p.length >= 2 ? p.readUInt16BE(0) : 1005, reason: p.subarray(2).toString() });
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

// ---- protocol edges ----

let r;

test('start relay (plain HTTP, --max-message 64KiB)', async () => {
  r = await startRelay({ tls: false, args: ['--access-rate', '0', '--max-message', '64KiB'] });
  ok(r.port > 0, 'relay started');
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

run();
