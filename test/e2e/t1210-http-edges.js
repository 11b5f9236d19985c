// t1210: HTTP edges of `relay serve` (issue 11): the deny list for booking ids of every length
// the tokens allow (127 bytes ok, 128 refused, any argument order, percent-encoding), ids and exp
// values a token cannot carry, request framing that could smuggle a request past a proxy (TE and
// CL together, conflicting or malformed lengths, a header that hides the next one), websocket
// upgrades with a version other than 13, and codes shown for the wrong topic. Raw sockets where
// the framing matters; every read is bounded.
'use strict';
const net = require('net');
const tls = require('tls');
const { test, ok, eq, run, startRelay, access, openWs, withTimeout, until } = require('./lib.js');

let r; // TLS
let p; // plain HTTP, as behind a TLS proxy (--insecure-http)
const exp = () => Math.floor(Date.now() / 1000) + 3600;
const admin = (x) => x.token({ topic: 'admin', scopes: ['relay:admin'] });

async function call(x, method, path, token) {
  const res = await fetch(`${x.base}${path}`, { method, headers: token ? { Authorization: token } : {} });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: res.status, body };
}

// Send @bytes on a fresh connection and read until the relay closes it. Resolves { responses:
// [{ status, headers, body }], closed, raw }. The relay closes every HTTP/1 connection after its
// one answer, so the close proves that nothing else will be answered (nothing is waited out);
// @ms only bounds a failing case (closed false, which every caller asserts against).
function raw(x, bytes, ms = 5000) {
  return withTimeout(new Promise((resolve, reject) => {
    const opts = { host: '127.0.0.1', port: x.port };
    const sock = x === p ? net.connect(opts) : tls.connect({ ...opts, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ responses: parseResponses(buf), closed, raw: buf.toString('latin1') });
    };
    const timer = setTimeout(() => finish(false), ms);
    sock.on(x === p ? 'connect' : 'secureConnect', () => sock.write(bytes));
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (e) => (e.code === 'ECONNRESET' ? finish(true) : reject(e)));
  }), ms + 2000, 'raw exchange');
}

// Responses one after the other, each framed by its Content-Length.
function parseResponses(buf) {
  const out = [];
  let s = buf.toString('latin1');
  for (;;) {
    const end = s.indexOf('\r\n\r\n');
    if (!s.startsWith('HTTP/') || end < 0) break;
    const lines = s.slice(0, end).split('\r\n');
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = Number(headers['content-length'] || 0);
    out.push({ status: Number(lines[0].split(' ')[1]), headers, body: s.slice(end + 4, end + 4 + len) });
    s = s.slice(end + 4 + len);
  }
  return out;
}

test('start relays (TLS, and plain HTTP as behind a proxy)', async () => {
  r = await startRelay({ args: ['--access-rate', '0'] });
  p = await startRelay({ tls: false, args: ['--access-rate', '0'] });
  ok(r.port > 0 && p.port > 0, 'started');
});

// ---- the deny list: booking ids of every length a token can carry ----

test('deny works for ids of every length up to 127 bytes, in either argument order', async () => {
  const fails = [];
  for (let n = 1; n <= 127; n += (n < 50 || n > 120 ? 1 : 7)) {
    const bid = `b${n}-`.padEnd(n, 'x').slice(0, n);
    const q = n % 2 ? `bid=${bid}&exp=${exp()}` : `exp=${exp()}&bid=${bid}`;
    const d = await call(r, 'POST', `/bids/deny?${q}`, admin(r));
    if (d.status !== 204) fails.push(`${n}: ${d.status} ${JSON.stringify(d.body)}`);
  }
  eq(fails, [], 'every length denied');
  const list = (await call(r, 'GET', '/bids/deny', admin(r))).body.booking_ids;
  ok(list.includes('b127-'.padEnd(127, 'x')), '127-byte id listed');
});

test('a cancelled 127-byte booking loses access and its live connection', async () => {
  const bid = 'z'.repeat(127);
  const ws = await openWs((await access(r, 'lab', r.token({ topic: 'lab', booking_id: bid }))).body.uri);
  const d = await call(r, 'POST', `/bids/deny?bid=${bid}&exp=${exp()}`, admin(r));
  eq(d.status, 204, 'deny answered 204');
  const c = await withTimeout(ws.closed, 2000, 'closed');
  eq(c.code, 1008, 'live connection closed');
  eq((await access(r, 'lab', r.token({ topic: 'lab', booking_id: bid }))).status, 403, 'access refused');
});

test('a 128-byte id is refused, and so is an argument too long to read', async () => {
  const d = await call(r, 'POST', `/bids/deny?bid=${'y'.repeat(128)}&exp=${exp()}`, admin(r));
  eq(d.status, 400, '128 bytes: 400');
  ok(/127/.test(d.body.message), `reason names the limit (${d.body.message})`);
  eq((await call(r, 'POST', `/bids/deny?exp=${exp()}&bid=${'y'.repeat(128)}`, admin(r))).status, 400, 'either order');
  eq((await call(r, 'POST', `/bids/deny?bid=${'y'.repeat(2000)}&exp=${exp()}`, admin(r))).status, 400, '2000 bytes');
  eq((await call(r, 'POST', `/bids/deny?bid=a&bid=b&exp=${exp()}`, admin(r))).status, 400, 'bid given twice');
});

test('percent-encoded ids are decoded (127 bytes after decoding is the limit)', async () => {
  const bid = 'é/ &='.repeat(18) + 'é'; // 6*18 + 2 = 110 bytes of UTF-8
  const d = await call(r, 'POST', `/bids/deny?bid=${encodeURIComponent(bid)}&exp=${exp()}`, admin(r));
  eq(d.status, 204, 'encoded id denied');
  ok((await call(r, 'GET', '/bids/deny', admin(r))).body.booking_ids.includes(bid), 'listed decoded');
  eq((await access(r, 'lab', r.token({ topic: 'lab', booking_id: bid }))).status, 403, 'its token refused');
  const long = '%41'.repeat(127);
  eq((await call(r, 'POST', `/bids/deny?bid=${long}&exp=${exp()}`, admin(r))).status, 204, '127 encoded bytes');
  eq((await call(r, 'POST', `/bids/deny?bid=${long}%41&exp=${exp()}`, admin(r))).status, 400, '128 encoded bytes');
});

test('ids a token cannot carry (not UTF-8) and exp past year 9999 are refused, not half-applied', async () => {
  const bad = await call(r, 'POST', `/bids/deny?bid=ab%FFcd&exp=${exp()}`, admin(r));
  eq(bad.status, 400, 'id with byte 0xff: 400');
  ok(/UTF-8/.test(bad.body.message), `reason (${bad.body.message})`);
  eq((await call(r, 'POST', `/bids/deny?bid=%C0%AF&exp=${exp()}`, admin(r))).status, 400, 'overlong form: 400');
  const big = await call(r, 'POST', '/bids/deny?bid=bk-big&exp=9223372036854775808', admin(r));
  eq(big.status, 400, 'exp 2^63: 400');
  ok(!(await call(r, 'GET', '/bids/deny', admin(r))).body.booking_ids.includes('bk-big'), 'not denied');
  eq((await call(r, 'POST', '/bids/deny?bid=bk-big&exp=9223372036854775807', admin(r))).status, 400, 'exp 2^63-1 (past year 9999): 400');
  eq((await call(r, 'POST', '/bids/deny?bid=bk-max&exp=253402300799', admin(r))).status, 204, 'exp at the end of 9999: 204');
  ok((await call(r, 'GET', '/bids/deny', admin(r))).body.booking_ids.includes('bk-max'), 'listed');
  eq((await call(r, 'POST', `/bids/deny?bid=bk-sign&exp=%2B${exp()}`, admin(r))).status, 400, 'exp with a sign: 400');
});

// ---- framing: one request per HTTP/1 connection, nothing read past it ----

const HIDDEN = 'GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n'; // answered 404 if it were ever read

// The relay answered exactly once with @status, whole, and closed the connection.
function oneAnswer(res, status, what) {
  eq(res.responses.map((x) => x.status), [status], `${what}: one answer`);
  ok(res.closed, `${what}: connection closed after it`);
  const a = res.responses[0];
  if (!a) return;
  eq(a.headers.connection, 'close', `${what}: Connection: close`);
  let body = null;
  try { body = JSON.parse(a.body); } catch (_) { /* checked below */ }
  ok(body && typeof body === 'object', `${what}: whole JSON body (${a.body})`);
}

test('Transfer-Encoding with Content-Length: 400 and close (RFC 9112 section 6.3)', async () => {
  for (const x of [p, r]) {
    const res = await raw(x, 'POST /session/lab HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n' +
      `Content-Length: 4\r\n\r\n0\r\n\r\n${HIDDEN}`);
    oneAnswer(res, 400, `TE+CL over ${x === p ? 'plain HTTP' : 'TLS'}`);
    ok(/Transfer-Encoding/.test(res.raw), 'reason names Transfer-Encoding');
  }
  const big = await raw(p, 'POST /session/lab HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n' +
    `Content-Length: 4\r\n\r\n${'20000\r\n' + 'x'.repeat(0x20000) + '\r\n'}0\r\n\r\n${HIDDEN}`);
  oneAnswer(big, 400, 'TE+CL with 128 KiB of chunks unread');
});

test('Transfer-Encoding alone: 411 for a POST, 400 for a GET, and close', async () => {
  oneAnswer(await raw(p, `POST /session/lab HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${HIDDEN}`),
    411, 'chunked POST (it used to hang)');
  oneAnswer(await raw(p, `GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${HIDDEN}`),
    400, 'chunked GET');
});

test('two Content-Lengths, or a malformed one: 400 and close', async () => {
  oneAnswer(await raw(p, 'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n' +
    `abcd${HIDDEN}`), 400, 'conflicting lengths');
  oneAnswer(await raw(p, 'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n' +
    `abcd${HIDDEN}`), 400, 'repeated length');
  for (const v of ['+4', '4x', '-1', '0x4', '4, 4', '99999999999999999999']) {
    oneAnswer(await raw(p, `GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: ${v}\r\n\r\nabcd${HIDDEN}`),
      400, `Content-Length: ${v}`);
  }
});

test('an error before the body was read closes the connection', async () => {
  oneAnswer(await raw(p, `POST /session/lab HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n${HIDDEN}`),
    413, 'body too large, unread');
  oneAnswer(await raw(p, `POST /session/lab HTTP/1.1\r\nHost: x\r\nUser-Agent: ${'u'.repeat(40000)}\r\n` +
    `Content-Length: 40\r\n\r\n${HIDDEN}`), 431, 'headers too large, body unread');
});

test('a header that hides the next one from lws cannot smuggle a request', async () => {
  // lws 4.1 takes "X-A:" (the start of a known name) and the whole next line as one unknown
  // header, so it does not see this Content-Length; a proxy would send the body as a body.
  oneAnswer(await raw(p, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\nContent-Length: ${HIDDEN.length}\r\n\r\n${HIDDEN}`),
    200, 'prefix-named header before Content-Length');
  // obsolete line folding (RFC 9112 section 5.2) does the same to the line after the fold
  oneAnswer(await raw(p, `GET /healthz HTTP/1.1\r\nHost: x\r\nFoo: a\r\n b\r\nContent-Length: ${HIDDEN.length}\r\n\r\n${HIDDEN}`),
    200, 'folded line before Content-Length');
});

test('pipelined requests: the first is answered, then the connection closes', async () => {
  oneAnswer(await raw(p, `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n${HIDDEN}`), 200, 'plain HTTP');
  oneAnswer(await raw(r, `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n${HIDDEN}`), 200, 'TLS');
  oneAnswer(await raw(p, `GET /session/lab?code=${'A'.repeat(32)} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
    'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    `\r\n${HIDDEN}`), 401, 'refused upgrade');
  const f = await fetch(`${r.base}/healthz`);
  eq(f.status, 200, 'ordinary clients are fine with it');
  eq(f.headers.get('connection'), 'close', 'and are told');
});

// ---- connections without a request yet ----

test('/metrics counts the connections whose request head has not arrived', async () => {
  const pending = async (x) => {
    const m = /^relay_connections_pending (\d+)$/m.exec(await (await fetch(`${x.base}/metrics`)).text());
    return m ? Number(m[1]) : -1;
  };
  const opened = (x, n) => Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
    const s = x === p ? net.connect({ host: '127.0.0.1', port: x.port }) : tls.connect({ host: '127.0.0.1', port: x.port, rejectUnauthorized: false });
    s.on(x === p ? 'connect' : 'secureConnect', () => resolve(s));
    s.on('error', reject);
  })));
  for (const [x, n, what] of [[p, 5, 'plain'], [r, 3, 'TLS']]) {
    eq(await pending(x), 0, `${what}: none pending at first`);
    const socks = await opened(x, n);
    await until(async () => (await pending(x)) === n, 5000, `${what}: ${n} pending`);
    socks[0].write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'); // its head arrives: no longer pending
    await until(async () => (await pending(x)) === n - 1, 5000, `${what}: ${n - 1} pending after a request`);
    socks.forEach((s) => s.destroy());
    await until(async () => (await pending(x)) === 0, 5000, `${what}: none once they close`);
  }
  ok(true, 'counted up and down');
});

// ---- websocket versions (RFC 6455 section 4.4) ----

function upgrade(x, uri, version) {
  const u = new URL(uri);
  const v = version === undefined ? '' : `Sec-WebSocket-Version: ${version}\r\n`;
  return raw(x, `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\n${v}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
}

test('an upgrade with a version other than 13 gets 426 and Sec-WebSocket-Version: 13', async () => {
  for (const x of [r, p]) {
    const a = await access(x, 'lab', x.token({ topic: 'lab' }));
    for (const v of ['8', '12', '14', '13, 8', 'x', undefined]) {
      const res = await upgrade(x, a.body.uri, v);
      eq(res.responses.map((y) => y.status), [426], `version ${v}: 426`);
      ok(res.closed, `version ${v}: connection closed after it`);
      eq(res.responses[0] && res.responses[0].headers['sec-websocket-version'], '13', `version ${v}: names 13`);
    }
    const ws = await openWs(a.body.uri); // the code was not used up by the refusals
    eq(ws.readyState, 1, 'version 13 with the same code: open');
    ws.close();
  }
});

test('over HTTP/2 (RFC 8441): a close frame with the reason (its 200 has gone), code kept', async () => {
  const h2 = require('http2');
  const a = await access(r, 'lab', r.token({ topic: 'lab' }));
  const u = new URL(a.body.uri);
  const c = h2.connect(r.base, { rejectUnauthorized: false });
  c.on('error', () => {});
  // Resolves { status, frame } with the first websocket frame the relay sends, if any.
  const connect = (version) => withTimeout(new Promise((resolve) => {
    const req = c.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': u.pathname + u.search,
      ':scheme': 'https', ':authority': u.host, 'sec-websocket-version': version }, { endStream: false });
    const got = { status: 0, frame: null };
    let buf = Buffer.alloc(0);
    req.on('response', (h) => {
      got.status = h[':status'];
      if (version === '13') resolve(got);
    });
    req.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + (buf[1] & 127)) {
        got.frame = buf;
        resolve(got);
      }
    });
    req.on('error', () => resolve(got));
    req.on('close', () => resolve(got));
  }), 5000, `h2 CONNECT version ${version}`);
  const bad = await connect('8');
  const f = bad.frame;
  eq(f && [f[0] & 15, f.readUInt16BE(2), f.subarray(4).toString()], [8, 1008, 'Sec-WebSocket-Version must be 13'],
    'h2 version 8: closed 1008 with the reason');
  const good = await connect('13');
  eq(good.status, 200, 'h2 version 13 with the same code: 200');
  c.close();
});

// ---- codes are shown once ----

test('a code shown for the wrong topic is used up', async () => {
  const a = await access(r, 'alpha', r.token({ topic: 'alpha' }));
  const wrong = await openWs(a.body.uri.replace('/session/alpha', '/session/beta')).catch((e) => e);
  eq(wrong.status, 403, 'wrong topic: 403');
  const again = await openWs(a.body.uri).catch((e) => e);
  eq(again.status, 401, 'then its own topic: 401 (used up)');
  const m = await (await fetch(`${r.base}/metrics`)).text();
  ok(/other_topic"} [1-9]/.test(m), "counted in /metrics as other_topic");
});

test('stop', async () => {
  eq((await r.stop()).code, 0, 'TLS relay exit status');
  eq((await p.stop()).code, 0, 'plain relay exit status');
});

run();
