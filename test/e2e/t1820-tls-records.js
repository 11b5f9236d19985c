// t1820: several TLS records arriving in one TCP segment must all be served. lws 4.1.6 asks OpenSSL
// for more only while SSL_pending() is non-zero, which counts the rest of the record being read and
// not whole records already pulled off the socket; with OpenSSL's read-ahead on (one read() per
// TLS record fewer), the later records sat in OpenSSL's buffer with nothing to wake the connection
// (docs/measured-notes.md). Here a request head split in three records, and then websocket
// messages in several records, each go out in one write and must all arrive.
'use strict';
const net = require('net');
const tls = require('tls');
const { Duplex } = require('stream');
const { test, ok, run, until, withTimeout, startRelay, access, join, received } = require('./lib.js');

// A stream under the TLS socket that holds what TLS writes until flush(), so that records made by
// separate writes leave in one TCP write. Until hold is set, it passes writes through.
class Batcher extends Duplex {
  constructor(sock) {
    super();
    this.sock = sock;
    this.held = [];
    this.hold = false;
    sock.on('data', (d) => this.push(d));
    sock.on('end', () => this.push(null));
  }
  _read() {}
  _write(chunk, enc, cb) {
    if (this.hold) this.held.push(chunk);
    else this.sock.write(chunk);
    cb();
  }
  _final(cb) {
    this.sock.end();
    cb();
  }
  flush() {
    this.sock.write(Buffer.concat(this.held));
    this.held = [];
  }
}

function writeRecord(s, text) {
  return new Promise((resolve, reject) => s.write(text, (err) => (err ? reject(err) : resolve())));
}

test('records that arrive together are all read: a head in three records', async () => {
  const r = await startRelay({ args: ['--access-rate', '0'] });
  const raw = net.connect(r.port, '127.0.0.1');
  await new Promise((resolve, reject) => raw.once('connect', resolve).once('error', reject));
  const b = new Batcher(raw);
  const s = tls.connect({ socket: b, servername: 'localhost', rejectUnauthorized: false });
  try {
    await withTimeout(new Promise((resolve, reject) => s.once('secureConnect', resolve).once('error', reject)), 5000, 'TLS handshake');
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    b.hold = true;
    // each awaited write is one SSL_write, so one TLS record
    await writeRecord(s, 'GET /healthz HTTP/1.1\r\n');
    await writeRecord(s, 'Host: 127.0.0.1\r\n');
    await writeRecord(s, 'User-Agent: t1820\r\n\r\n');
    ok(b.held.length >= 3, `three records held for one write (${b.held.length})`);
    b.flush();
    const answered = () => /^HTTP\/1\.1 200 .*\{"status":"ok"\}$/s.test(got);
    await until(answered, 5000, 'the answer').catch(() => {});
    ok(answered(), `the request whose head came in three records at once was answered (got ${JSON.stringify(got.slice(0, 40))})`);
  } finally {
    s.destroy();
    raw.destroy();
    await r.stop();
  }
});

function sendRecord(ws, text) {
  return new Promise((resolve, reject) => ws.send(text, (err) => (err ? reject(err) : resolve())));
}

test('records that arrive together are all read: websocket messages after a pause', async () => {
  const r = await startRelay({ args: ['--access-rate', '0'] });
  const WebSocket = require('ws');
  let b = null;
  let writer = null;
  try {
    const reader = await join(r, 'rec', { scopes: ['read'] });
    const a = await access(r, 'rec', r.token({ topic: 'rec', scopes: ['read', 'write'] }));
    ok(a.status === 200, `writer's access (${a.status})`);
    writer = await new Promise((resolve, reject) => {
      const ws = new WebSocket(a.body.uri, {
        rejectUnauthorized: false,
        createConnection: (opts) => {
          b = new Batcher(net.connect(r.port, '127.0.0.1'));
          return tls.connect({ ...opts, socket: b, servername: 'localhost' });
        },
      });
      ws.on('open', () => resolve(ws));
      ws.on('error', reject);
    });
    // Three rounds, each a writer that paused and then sent several messages at once: with
    // nothing more to come, a message left in OpenSSL's buffer would never be read.
    for (let round = 0; round < 3; round++) {
      b.hold = true;
      for (let i = 0; i < 4; i++) await sendRecord(writer, `round ${round} message ${i}`);
      b.hold = false;
      b.flush();
      const want = 4 * (round + 1);
      await received(reader, want, 5000).catch(() => {});
      ok(reader.inbox.length === want, `round ${round + 1}: ${reader.inbox.length} of ${want} messages arrived`);
    }
    reader.close();
  } finally {
    if (writer) writer.terminate();
    await r.stop();
  }
});

run();
