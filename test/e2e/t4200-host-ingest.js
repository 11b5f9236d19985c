// t4200: `relay host --config FILE` with several streams and practable rules, against a real
// relay: streams from the file run side by side (a data bridge, the test pattern, a missing
// camera that is reported while the others keep flowing), the local ingest server takes
// ffmpeg's chunked MPEG-TS POST on /ts/NAME and local websockets on /ws/NAME (both ways), the
// REST API lists, adds and deletes rules without ever showing tokens, a rule with a bad token is
// refused clearly while the other rules flow, and malformed input gets clear errors.
'use strict';
const fs = require('fs');
const net = require('net');
const path = require('path');
const http = require('http');
const { execFile } = require('child_process');
const WebSocket = require('ws');
const { test, ok, eq, run, startRelay, join, received, withTimeout, until, tmpdir, relayHost, relaySync } = require('./lib.js');

let r;
let host;
let api; // http://127.0.0.1:PORT of the ingest server
let echo;
let goodToken;
const dir = tmpdir();

// One HTTP request to the ingest server: resolves { status, body (parsed when JSON), text }.
function call(method, p, body, headers = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.request(`${api}${p}`, { method, headers }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let parsed = text;
        try { parsed = JSON.parse(text); } catch (_) { /* not JSON */ }
        resolve({ status: res.statusCode, body: parsed, text, headers: res.headers });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
    req.end();
  }), 5000, `${method} ${p}`);
}

async function streamState(name) {
  const res = await call('GET', '/api/streams');
  return res.body.streams.find((s) => s.name === name);
}

// The ingest server's base URL, from the port @host logs it bound ("... listening on ADDR (port N)").
async function ingestApi(host) {
  await host.logged(/ingest server listening on \S+ \(port \d+\)/);
  return `http://127.0.0.1:${/ingest server listening on \S+ \(port (\d+)\)/.exec(host.err)[1]}`;
}

test('start relay, an echo device and relay host with a config file', async () => {
  r = await startRelay({ args: ['--access-rate', '0'] });
  echo = net.createServer((s) => s.pipe(s));
  await new Promise((res) => echo.listen(0, '127.0.0.1', res));
  const echoPort = echo.address().port;
  goodToken = r.token({ topic: 'ing-video', exp: Math.floor(Date.now() / 1000) + 3600 });
  const config = {
    listen: '127.0.0.1:0', // the ingest server logs the port the kernel chose
    secret_file: r.secretFile,
    insecure: true,
    backoff_min: '100ms',
    backoff_max: '200ms',
    streams: [
      { name: 'data', session: `${r.base}/session/cfg-data`, data: `tcp:127.0.0.1:${echoPort}` },
      { name: 'video', session: `${r.base}/session/cfg-video`, video: 'test', fps: 10 },
      { name: 'camera', session: `${r.base}/session/cfg-camera`, video: '/dev/video99' },
      { name: 'lavfi', session: `${r.base}/session/cfg-lavfi`, video: 'lavfi:testsrc2=size=640x480:rate=10', codec: 'h264' },
    ],
    rules: [
      { id: '0', stream: 'video', destination: `${r.base}/session/ing-video`, token: goodToken },
      { id: 'bad', stream: 'video', destination: `${r.base}/session/ing-bad`, token: 'not-a-token' },
    ],
  };
  const file = path.join(dir, 'host.json');
  fs.writeFileSync(file, JSON.stringify(config));
  host = relayHost(['--config', file]);
  api = await ingestApi(host);
  await host.logged(/ data: relay link up/);
  await host.logged(/ video: relay link up/);
  await host.logged(/ 0: relay link up/);
  ok(true, 'streams from the file and rules are up');
});

test('a data stream from the file bridges its device', async () => {
  await host.logged(/ data: device link up/);
  const user = await join(r, 'cfg-data', { scopes: ['read', 'write'] });
  user.send('ping from the browser');
  await received(user, 1);
  eq(user.inbox[0].data.toString(), 'ping from the browser', 'round trip through the config stream');
  user.close();
});

test('a missing camera is reported clearly; the other streams keep flowing', async () => {
  await host.logged(/ camera: video source down: .*\/dev\/video99/);
  await host.logged(/ camera: relay link up/); // its state is set before this line
  const cam = await streamState('camera');
  eq(cam.video, 'down', 'API shows the camera down');
  ok(/\/dev\/video99/.test(cam.last_error), `API names the camera: ${cam.last_error}`);
  eq(cam.relay, 'up', 'its relay link is up all the same');
  const viewer = await join(r, 'cfg-video', { scopes: ['read'] });
  await received(viewer, 5);
  ok(viewer.inbox.every((m) => m.isBinary && m.data[0] === 0x47), 'the test-pattern stream keeps sending MPEG-TS');
  viewer.close();
});

test('a captured source (lavfi, a camera stand-in) goes out as H.264 Annex-B', async () => {
  await host.logged(/ lavfi: video source up/);
  const viewer = await join(r, 'cfg-lavfi', { scopes: ['read'] });
  await received(viewer, 5);
  const startCode = (b) => b.length > 4 && b[0] === 0 && b[1] === 0 && (b[2] === 1 || (b[2] === 0 && b[3] === 1));
  ok(viewer.inbox.every((m) => m.isBinary && startCode(m.data)), 'every message is an Annex-B access unit');
  const key = (m) => m.data.includes(Buffer.from([0, 0, 1, 0x67])) && m.data.includes(Buffer.from([0, 0, 1, 0x65]));
  await until(() => viewer.inbox.some(key), 8000, 'a keyframe (SPS + IDR) within the GOP');
  ok(true, 'keyframes carry SPS and IDR in-band');
  viewer.close();
});

test('a rule with a bad token is refused clearly; the other rule flows', async () => {
  await host.logged(/ bad: .*401.*giving up on this stream/);
  const bad = await streamState('bad');
  eq(bad.relay, 'refused', 'API shows the rule refused');
  ok(bad.last_error.length > 0, `with the reason: ${bad.last_error}`);
  eq((await streamState('0')).relay, 'up', 'the good rule is up');
  eq(host.exitCode, null, 'the host keeps running');
});

test('POST /ts/video from ffmpeg (chunked MPEG-TS) reaches the rule\'s topic', async () => {
  const viewer = await join(r, 'ing-video', { scopes: ['read'] });
  const ff = execFile('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-frames:v', '25', '-c:v', 'mpeg1video', '-f', 'mpegts', `${api}/ts/video`]);
  const code = await withTimeout(new Promise((res) => ff.on('exit', res)), 20000, 'ffmpeg');
  eq(code, 0, 'ffmpeg posted the stream and got an answer');
  await received(viewer, 1);
  const all = Buffer.concat(viewer.inbox.map((m) => m.data));
  ok(all.length >= 188 && all[0] === 0x47, `MPEG-TS arrived (${all.length} bytes in ${viewer.inbox.length} messages)`);
  viewer.close();
});

test('POST /ts/NAME with a length: the bytes arrive exactly', async () => {
  const viewer = await join(r, 'ing-video', { scopes: ['read'] });
  const body = Buffer.alloc(100000);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
  const res = await call('POST', '/ts/video', body, { 'Content-Type': 'video/MP2T', 'Content-Length': body.length });
  eq(res.status, 204, 'answered when the body ended');
  eq(res.headers['content-length'], undefined, 'a 204 carries no content headers');
  await until(() => viewer.inbox.reduce((n, m) => n + m.data.length, 0) >= body.length, 5000, 'all bytes');
  ok(Buffer.concat(viewer.inbox.map((m) => m.data)).equals(body), 'byte-exact, in order');
  viewer.close();
});

test('/ws/NAME: a local websocket feeds the topic and hears what the relay says', async () => {
  const user = await join(r, 'ing-video', { scopes: ['read', 'write'] });
  const local = new WebSocket(`${api.replace('http', 'ws')}/ws/video`);
  local.inbox = [];
  local.on('message', (d, isBinary) => local.inbox.push({ data: d.toString(), isBinary }));
  await withTimeout(new Promise((res, rej) => { local.on('open', res); local.on('error', rej); }), 5000, 'local ws open');
  local.send('{"status":"ready"}');
  await received(user, 1);
  eq(user.inbox[0].data.toString(), '{"status":"ready"}', 'local message reached the topic');
  eq(user.inbox[0].isBinary, false, 'as text');
  user.send('{"set":"speed","to":2}');
  await until(() => local.inbox.length >= 1, 5000, 'command to the local websocket');
  eq(local.inbox[0].data, '{"set":"speed","to":2}', 'the relay\'s message reached the local websocket');
  local.close();
  user.close();
});

test('/ws/NAME: a malformed message closes that local websocket (1007, 1002), not the relay link', async () => {
  const open = async () => {
    const ws = new WebSocket(`${api.replace('http', 'ws')}/ws/video`);
    ws.closed = new Promise((res) => ws.on('close', (code) => res(code)));
    await withTimeout(new Promise((res, rej) => { ws.on('open', res); ws.on('error', rej); }), 5000, 'local ws open');
    return ws;
  };
  let ws = await open();
  ws.send(Buffer.from([0xce]), { binary: false }); // text that is not UTF-8
  eq(await withTimeout(ws.closed, 5000, 'close'), 1007, 'invalid UTF-8: 1007');
  ws = await open();
  ws._socket.write(Buffer.from([0x80, 0x81, 1, 2, 3, 4, 0x61 ^ 1])); // a continuation with nothing open
  eq(await withTimeout(ws.closed, 5000, 'close'), 1002, 'a lone continuation: 1002');
  eq((await streamState('0')).relay, 'up', 'the rule\'s relay link stays up');
});

test('REST API: list, add, use and delete rules; tokens never shown', async () => {
  let res = await call('GET', '/api/rules');
  eq(res.status, 200, 'GET /api/rules');
  eq(res.body.rules.map((x) => x.id).sort().join(','), '0,bad', 'both rules listed');
  ok(!res.text.includes(goodToken) && !res.text.includes('token'), 'no token in the listing');
  res = await call('GET', '/api/destinations/all');
  eq(res.body.rules.length, 2, 'practable\'s GET /api/destinations/all');
  const token = r.token({ topic: 'ing-2', exp: Math.floor(Date.now() / 1000) + 3600 });
  res = await call('POST', '/api/destinations', { id: '2', stream: 'data2', destination: `${r.base}/session/ing-2`, token },
    { 'Content-Type': 'application/json' });
  eq(res.status, 201, 'POST /api/destinations adds a rule');
  eq(res.body.id, '2', 'and answers with it');
  ok(!res.text.includes(token), 'without its token');
  await host.logged(/ 2: relay link up/);
  const viewer = await join(r, 'ing-2', { scopes: ['read'] });
  res = await call('POST', '/ts/data2', 'hello', { 'Content-Length': 5 });
  eq(res.status, 204, 'posted to the new feed');
  await received(viewer, 1);
  eq(viewer.inbox[0].data.toString(), 'hello', 'the new rule forwards its feed');
  // The stream thread counts a message after its write returns, which can be after the
  // viewer already has it: wait for the count, then check it is exact.
  await until(async () => (await streamState('2')).messages_out >= 1, 5000, 'API counts the message');
  const s2 = await streamState('2');
  eq(s2.messages_out, 1, 'API counts the message');
  eq(s2.bytes_out, 5, 'and its bytes');
  res = await call('DELETE', '/api/destinations/2');
  eq(res.status, 204, 'DELETE removes it');
  res = await call('GET', '/api/rules');
  ok(!res.body.rules.some((x) => x.id === '2'), 'gone from the list');
  ok(!(await call('GET', '/api/streams')).body.streams.some((x) => x.name === '2'), 'and its stream stopped');
  viewer.close();
  eq((await call('DELETE', '/api/rules/nope')).status, 404, 'unknown id: 404');
  res = await call('POST', '/api/rules', { id: '0', stream: 'video', destination: 'not a url', token: 'x' });
  eq(res.status, 400, 'replacing a rule with a bad one: 400');
  res = await call('GET', '/api/rules');
  ok(res.body.rules.some((x) => x.id === '0' && x.destination.endsWith('/session/ing-video')), 'the old rule stays');
});

test('bad API and ingest input: clear errors, the server keeps serving', async () => {
  let res = await call('POST', '/api/rules', '{not json', { 'Content-Type': 'application/json' });
  eq(res.status, 400, 'malformed JSON: 400');
  eq(res.body.code, 'bad-json', 'with a code');
  res = await call('POST', '/api/rules', { id: 'x', stream: 'v' }, { 'Content-Type': 'application/json' });
  eq(res.status, 400, 'missing fields: 400');
  ok(/destination/.test(res.body.message), `naming them: ${res.body.message}`);
  res = await call('POST', '/api/rules', { id: 'x', stream: 'v', destination: 'not a url', token: 'x' });
  eq(res.status, 400, 'bad destination: 400');
  eq((await call('GET', '/nope')).status, 404, 'unknown path: 404');
  eq((await call('GET', '/api/nope')).status, 404, 'unknown API path: 404');
  eq((await call('PUT', '/api/streams')).status, 405, 'wrong method: 405');
  eq((await call('POST', '/ts/bad%20name', 'x', { 'Content-Length': 1 })).status, 400, 'bad feed name: 400');
  eq((await call('GET', '/ts/video')).status, 405, '/ts/ without a body: 405');
  eq((await call('GET', '/ws/video')).status, 400, '/ws/ without an upgrade: 400');
  const big = 'x'.repeat(20000);
  eq((await call('GET', '/api/rules', undefined, { 'X-Big': big })).status, 431, 'oversized head: 431');
  const raw = await new Promise((resolve) => {
    const s = net.connect(Number(api.split(':')[2]), '127.0.0.1', () => s.write('GARBAGE\r\n\r\n'));
    let got = '';
    s.on('data', (d) => { got += d; });
    s.on('close', () => resolve(got));
  });
  ok(/^HTTP\/1.1 400/.test(raw), 'garbage: 400 and close');
  const chunkedBad = await new Promise((resolve) => {
    const s = net.connect(Number(api.split(':')[2]), '127.0.0.1', () =>
      s.write('POST /ts/video HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'));
    let got = '';
    s.on('data', (d) => { got += d; });
    s.on('close', () => resolve(got));
  });
  ok(/^HTTP\/1.1 400/.test(chunkedBad), 'malformed chunk size: 400');
  eq((await call('GET', '/api/streams')).status, 200, 'still serving');
});

test('bad config files: exit 2 with the reason', async () => {
  const bad = (obj) => {
    const f = path.join(dir, `bad-${Math.random()}.json`);
    fs.writeFileSync(f, JSON.stringify(obj));
    return relaySync(['host', '--config', f]);
  };
  let res = bad({ streams: [{ session: `${r.base}/session/x`, video: 'test', colour: 'red' }] });
  eq(res.status, 2, 'unknown key in a stream: exit 2');
  ok(/streams\[0\]: unknown key 'colour'/.test(res.stderr), `names it: ${res.stderr.trim()}`);
  res = bad({ rules: { id: 1 } });
  eq(res.status, 2, 'rules not an array: exit 2');
  ok(/"rules" must be an array/.test(res.stderr), res.stderr.trim());
  res = bad({ listen: 'none', rules: [{ id: '1', stream: 'v' }] });
  eq(res.status, 2, 'incomplete rule: exit 2');
  ok(/rules\[0\]: a rule needs/.test(res.stderr), res.stderr.trim());
  res = bad({ streams: [{ session: `${r.base}/session/x` }] });
  eq(res.status, 2, 'a stream with nothing to carry: exit 2');
  ok(/nothing to carry/.test(res.stderr), res.stderr.trim());
});

test('without a config file, a refused rule from the API does not end the host', async () => {
  const solo = relayHost(['--listen', '127.0.0.1:0', '--insecure']);
  const saved = api;
  api = await ingestApi(solo);
  try {
    const res = await call('POST', '/api/rules', { id: 'b', stream: 'x', destination: `${r.base}/session/solo`, token: 'not-a-token' });
    eq(res.status, 201, 'the rule is taken');
    await solo.logged(/ b: .*giving up/);
    eq((await call('GET', '/api/streams')).status, 200, 'the host keeps serving');
    eq(solo.exitCode, null, 'and keeps running');
  } finally {
    api = saved;
  }
  solo.kill('SIGTERM');
  eq(await withTimeout(solo.done, 5000, 'exit'), 0, 'exit status');
});

test('--check: the shipped example config is good; a bad one is named', async () => {
  const example = path.join(__dirname, '../../configs/host.example.json');
  let res = relaySync(['host', '--check', '--config', example]);
  eq(res.status, 0, `configs/host.example.json checks out: ${res.stderr.trim()}`);
  ok(/settings good: 5 streams and rules/.test(res.stdout), res.stdout.trim());
  res = relaySync(['host', '--check', '--session', `${r.base}/session/x`, '--data', 'carrier-pigeon:1']);
  eq(res.status, 2, 'a bad device: exit 2');
  ok(/data must be/.test(res.stderr), res.stderr.trim());
});

test('stop: SIGTERM closes every stream and exits 0', async () => {
  host.kill('SIGTERM');
  const code = await withTimeout(host.done, 8000, 'host exit');
  eq(code, 0, 'exit status');
  if (code !== 0) console.log(host.err.split('\n').slice(-40).join('\n'));
  ok(/ video: stopping/.test(host.err), 'streams stopped');
  echo.close();
  await r.stop();
});

run({ perTestMs: 40000 });
