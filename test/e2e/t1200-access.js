// t1200: the access API of `relay serve` over HTTPS: a token POSTed to /session/{topic} gives a
// one-time websocket uri; every refusal has its HTTP status and a JSON {code, message}.
'use strict';
const http = require('http');
const https = require('https');
const net = require('net');
const { test, ok, eq, run, startRelay, access, openWs, withTimeout } = require('./lib.js');

let r;

// A raw HTTP/1.1 request over TLS, for what fetch will not send (no Content-Length, huge headers).
function raw(r, head, body = '') {
  return new Promise((resolve, reject) => {
    const tls = require('tls');
    const s = tls.connect({ host: '127.0.0.1', port: r.port, rejectUnauthorized: false }, () => {
      s.write(head + body);
    });
    let data = '';
    s.on('data', (d) => {
      data += d;
      const m = /^HTTP\/1\.[01] (\d+)/.exec(data);
      const len = /content-length: (\d+)/i.exec(data);
      const split = data.indexOf('\r\n\r\n');
      if (m && len && split >= 0 && data.length >= split + 4 + Number(len[1])) {
        s.destroy();
        resolve({ status: Number(m[1]), text: data });
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve({ status: 0, text: data }));
  });
}

test('start relay', async () => {
  r = await startRelay({ args: ['--access-rate', '0'] });
  ok(r.port > 0, 'relay started');
});

test('access gives a one-time wss uri on the public base', async () => {
  const a = await access(r, 'alpha', r.token({ topic: 'alpha' }));
  eq(a.status, 200, 'status');
  ok(/^wss:\/\/127\.0\.0\.1:\d+\/session\/alpha\?code=[A-Za-z0-9_-]{32}$/.test(a.body.uri), `uri ${a.body.uri}`);
  eq(a.headers.get('access-control-allow-origin'), '*', 'CORS header on the answer');
  const ws = await openWs(a.body.uri);
  ok(ws.readyState === 1, 'code redeems');
  ws.close();
  const again = await openWs(a.body.uri).catch((e) => e);
  eq(again.status, 401, 'a used code is refused with 401 before the upgrade');
  ok(/code/.test(again.body), `reason: ${again.body}`);
});

test('Bearer prefix accepted', async () => {
  const a = await access(r, 'alpha', 'Bearer ' + r.token({ topic: 'alpha' }));
  eq(a.status, 200, 'status');
});

test('401: missing, invalid, expired, wrong audience, wrong secret', async () => {
  const cases = [
    [undefined, /missing/],
    ['not-a-token', /segments/],
    [r.token({ topic: 'alpha', exp: Math.floor(Date.now() / 1000) - 60 }), /expired/],
    [r.token({ topic: 'alpha', aud: 'https://elsewhere.example' }), /audience/],
    [require('./lib.js').makeToken('other-secret', { topic: 'alpha', aud: r.base }), /signature/],
    [r.token({ topic: 'alpha', exp: undefined }), /exp/],
  ];
  for (const [tok, re] of cases) {
    const a = await access(r, 'alpha', tok);
    eq(a.status, 401, `status for ${re}`);
    eq(a.body.code, 'unauthorized', 'JSON code');
    ok(re.test(a.body.message), `message ${a.body.message} matches ${re}`);
  }
});

test('403: other topic, other prefix, no read/write scope, no booking id', async () => {
  const cases = [
    [{ topic: 'beta' }, /topic/],
    [{ topic: 'alpha', prefix: 'shell' }, /prefix/],
    [{ topic: 'alpha', scopes: ['relay:stats'] }, /scope/],
    [{ topic: 'alpha', booking_id: undefined }, /booking_id/],
  ];
  for (const [over, re] of cases) {
    const a = await access(r, 'alpha', r.token(over));
    eq(a.status, 403, `status for ${re}`);
    ok(re.test(a.body.message), `message ${a.body.message} matches ${re}`);
  }
});

test('400 bad topic, 404 unknown path, 405 wrong method, 426 GET without upgrade', async () => {
  eq((await access(r, 'bad%20topic', r.token({ topic: 'bad topic' }))).status, 400, 'bad topic');
  eq((await access(r, 'x'.repeat(200), r.token({ topic: 'x'.repeat(200) }))).status, 400, 'long topic');
  const nf = await fetch(`${r.base}/nowhere`);
  eq(nf.status, 404, 'unknown path');
  eq((await nf.json()).code, 'not_found', 'JSON error body');
  eq((await fetch(`${r.base}/session/alpha`, { method: 'PUT', body: '' })).status, 405, 'PUT');
  eq((await fetch(`${r.base}/session/alpha`)).status, 426, 'GET without upgrade');
});

test('CORS preflight', async () => {
  const res = await fetch(`${r.base}/session/alpha`, { method: 'OPTIONS', headers: {
    Origin: 'https://lab.example', 'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'authorization' } });
  eq(res.status, 204, 'status');
  eq(res.headers.get('access-control-allow-origin'), '*', 'allow-origin');
  ok(/authorization/i.test(res.headers.get('access-control-allow-headers')), 'allow-headers');
  ok(/POST/.test(res.headers.get('access-control-allow-methods')), 'allow-methods');
});

test('411 without Content-Length, 413 for a large body, 431 for large headers, never a hang', async () => {
  const tok = r.token({ topic: 'alpha' });
  const chunked = await raw(r, `POST /session/alpha HTTP/1.1\r\nHost: x\r\nAuthorization: ${tok}\r\n` +
    'Transfer-Encoding: chunked\r\n\r\n', '0\r\n\r\n');
  eq(chunked.status, 411, 'chunked POST');
  const big = await raw(r, `POST /session/alpha HTTP/1.1\r\nHost: x\r\nAuthorization: ${tok}\r\n` +
    'Content-Length: 5000\r\n\r\n', 'x'.repeat(5000));
  eq(big.status, 413, 'large body');
  const small = await raw(r, `POST /session/alpha HTTP/1.1\r\nHost: x\r\nAuthorization: ${tok}\r\n` +
    'Content-Length: 2\r\n\r\n', '{}');
  eq(small.status, 200, 'small body tolerated');
  // A large header within max_header (default 32 KiB) is read and answered...
  const large = await raw(r, `POST /session/alpha HTTP/1.1\r\nHost: x\r\nCookie: ${'y'.repeat(20000)}\r\n` +
    'Content-Length: 0\r\n\r\n');
  eq(large.status, 401, 'large headers answered');
  // ...past it, 431 with the JSON error, on the access call and on a websocket upgrade...
  const over = await raw(r, `POST /session/alpha HTTP/1.1\r\nHost: x\r\nCookie: ${'y'.repeat(40000)}\r\n` +
    'Content-Length: 0\r\n\r\n');
  eq(over.status, 431, 'headers past max_header: 431');
  eq(JSON.parse(over.text.slice(over.text.indexOf('\r\n\r\n') + 4)).code, 'headers_too_large', 'error code');
  const up = await raw(r, 'GET /session/alpha?code=x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n' +
    'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    `Authorization: ${'y'.repeat(40000)}\r\n\r\n`);
  eq(up.status, 431, 'an upgrade with headers past max_header: 431');
  // ...and a head past the 64 KiB lws 4.1 can hold is closed at once (it cannot answer): never a hang.
  const huge = await raw(r, `POST /session/alpha HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(70000)}\r\n` +
    'Content-Length: 0\r\n\r\n');
  eq(huge.status, 0, 'a head over 64 KiB: connection closed');
  await r.waitLog(/a request head over 65535 bytes: connection closed/);
  const longTok = await access(r, 'alpha', 'x'.repeat(9000));
  eq(longTok.status, 401, 'oversized token');
});

test('codes are bound to their topic', async () => {
  const a = await access(r, 'alpha', r.token({ topic: 'alpha' }));
  const other = await openWs(a.body.uri.replace('/session/alpha', '/session/beta')).catch((e) => e);
  eq(other.status, 403, 'code for alpha refused on beta');
  const used = await openWs(a.body.uri).catch((e) => e);
  eq(used.status, 401, 'and used up: shown once (docs/api.md), not valid for alpha any more');
  const none = await openWs(a.body.uri.replace(/code=.*/, 'code=')).catch((e) => e);
  eq(none.status, 401, 'empty code');
  const guess = await openWs(a.body.uri.replace(/code=.*/, 'code=' + 'A'.repeat(32))).catch((e) => e);
  eq(guess.status, 401, 'guessed code');
  const wrongPath = await openWs(`wss://127.0.0.1:${r.port}/other/alpha?code=x`).catch((e) => e);
  eq(wrongPath.status, 404, 'websocket on an unknown path');
});

test('expired code refused', async () => {
  const s = await startRelay({ args: ['--code-ttl', '1s'], testClock: true });
  const a = await access(s, 'gamma', s.token({ topic: 'gamma' }));
  s.advance(1200); // the relay's clock, past the code's lifetime
  const e = await openWs(a.body.uri).catch((x) => x);
  eq(e.status, 401, 'expired code');
  await s.stop();
});

test('a code does not outlive its token; only websocket upgrades are served', async () => {
  const s = await startRelay({ args: ['--skew', '0'], testClock: true });
  const exp = Math.floor(Date.now() / 1000) + 1;
  const a = await access(s, 'short', s.token({ topic: 'short', exp }));
  eq(a.status, 200, 'access while valid');
  s.advance(3000); // the relay's clock, past the token's exp (the code's 30 s are not over)
  const e = await openWs(a.body.uri).catch((x) => x);
  eq(e.status, 401, 'the code of an expired token is refused');
  ok(/expired/.test(e.body), `reason (${e.body})`);
  const b = await access(s, 'h2c', s.token({ topic: 'h2c' }));
  const code = b.body.uri.split('code=')[1];
  const res = await new Promise((resolve, reject) => {
    const tls = require('tls');
    const sock = tls.connect({ host: '127.0.0.1', port: s.port, rejectUnauthorized: false }, () => {
      sock.write(`GET /session/h2c?code=${code} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`);
    });
    let data = '';
    sock.on('data', (d) => { data += d; if (/\r\n\r\n/.test(data)) { sock.destroy(); resolve(data); } });
    sock.on('error', reject);
    sock.on('close', () => resolve(data));
  });
  ok(!/^HTTP\/1\.1 101/.test(res), `no switch to another protocol (${res.split('\r\n')[0]})`);
  await s.stop();
});

test('429 when a client exceeds the access rate; other clients unaffected', async () => {
  const s = await startRelay({ args: ['--access-rate', '1', '--access-burst', '3'] });
  const tok = s.token({ topic: 'delta' });
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await access(s, 'delta', tok)).status);
  eq(statuses.slice(0, 3), [200, 200, 200], 'burst allowed');
  ok(statuses.slice(3).includes(429), `then 429 (${statuses})`);
  const a = await access(s, 'delta', tok).catch(() => null);
  ok(a && (a.status === 429 || a.status === 200), 'still answering');
  await s.stop();
});

test('behind a proxy (--trust-forwarded-for) each client has its own rate limit', async () => {
  const s = await startRelay({ args: ['--access-rate', '1', '--access-burst', '2', '--trust-forwarded-for'] });
  const tok = s.token({ topic: 'px' });
  const call = (xff) => fetch(`${s.base}/session/px`, { method: 'POST', headers: { Authorization: tok, 'X-Forwarded-For': xff } })
    .then((res) => res.status);
  const first = [await call('127.0.0.2'), await call('127.0.0.2'), await call('127.0.0.2')];
  eq(first, [200, 200, 429], 'one client through the proxy is limited');
  eq(await call('127.0.0.3'), 200, 'another client through the same proxy is not');
  eq(await call('127.0.0.3, 127.0.0.2'), 429, 'the proxy-appended (last) entry counts, not a forged first one');
  await s.stop();
});

// An HTTP/2 POST on a session of its own; resolves { status, body }. After a large header
// block lws 4.1 ends the session with GOAWAY, whatever the answer: hence one session each.
function h2post(base, headers) {
  const client = require('http2').connect(base, { rejectUnauthorized: false });
  client.on('error', () => {});
  return withTimeout(new Promise((resolve, reject) => {
    const req = client.request({ ':method': 'POST', 'content-length': '0', ...headers });
    let body = '';
    let status = 0;
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', (d) => { body += d; });
    req.on('end', () => { client.close(); resolve({ status, body }); });
    req.on('error', reject);
    req.end();
  }), 5000, 'HTTP/2 POST');
}

test('HTTP/2 access call', async () => {
  const h2 = require('http2');
  const res = await h2post(r.base, { ':path': '/session/alpha', authorization: r.token({ topic: 'alpha' }) });
  eq(res.status, 200, 'h2 status');
  ok(/"uri":"wss:/.test(res.body), `h2 body ${res.body}`);
  // Headers over max_header: 431 on the access call...
  const big = await h2post(r.base, { ':path': '/session/alpha', authorization: r.token({ topic: 'alpha' }),
    cookie: 'y'.repeat(40000) });
  eq(big.status, 431, 'h2: headers past max_header: 431');
  // ...and on a websocket inside HTTP/2 (RFC 8441), answered before the relay sees it: a close frame.
  const a = await access(r, 'alpha', r.token({ topic: 'alpha' }));
  const u = new URL(a.body.uri);
  const c3 = h2.connect(r.base, { rejectUnauthorized: false });
  c3.on('error', () => {});
  const closeFrame = await withTimeout(new Promise((resolve, reject) => {
    const req = c3.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': u.pathname + u.search,
      ':scheme': 'https', ':authority': u.host, 'sec-websocket-version': '13', cookie: 'y'.repeat(40000) }, { endStream: false });
    let got = Buffer.alloc(0);
    req.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 2 && got.length >= 2 + (got[1] & 127)) resolve(got);
    });
    req.on('error', reject);
  }), 5000, 'h2 websocket close frame');
  eq([closeFrame[0] & 15, closeFrame.readUInt16BE(2), closeFrame.subarray(4).toString()],
    [8, 1008, 'request headers too large (see --max-header)'], 'h2 websocket with headers past max_header: closed 1008');
  c3.close();
});

test('clean shutdown on SIGTERM', async () => {
  const e = await r.stop();
  eq(e.code, 0, 'exit status');
});

run();
