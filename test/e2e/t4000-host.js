// t4000: `relay host` against a real relay: it dials out, bridges the topic to a local TCP
// device in both directions, streams the test pattern as MPEG-TS (one message of whole
// 188-byte packets per frame, starting at a keyframe), recovers by itself when the relay
// restarts, and refuses bad settings clearly.
'use strict';
const net = require('net');
const { test, ok, eq, run, startRelay, join, received, spawnTracked, freePort, withTimeout, relayHost, relaySync, RELAY } = require('./lib.js');

let r;
let echo;
let echoPort;

// The shared objects a process has mapped: the video plugin and libav are loaded only for video.
const mapped = (pid) => require('fs').readFileSync(`/proc/${pid}/maps`, 'utf8');
const LIBAV = /libav(codec|format|util)\.so|relay-video\.so/;

test('start relay and a TCP echo device', async () => {
  r = await startRelay({ args: ['--access-rate', '0'] });
  echoPort = await freePort();
  echo = net.createServer((s) => s.pipe(s));
  await new Promise((res) => echo.listen(echoPort, '127.0.0.1', res));
  ok(r.port > 0, 'started');
  ok(!LIBAV.test(mapped(r.proc.pid)), 'relay serve maps neither libav nor the video plugin');
});

test('data bridge: a browser-side client on the topic gets the device\'s echo', async () => {
  const host = relayHost(['--session', `${r.base}/session/dev`, '--secret-file', r.secretFile, '--insecure',
    '--data', `tcp:127.0.0.1:${echoPort}`]);
  await host.logged(/relay link up/);
  await host.logged(/device link up/);
  const user = await join(r, 'dev', { scopes: ['read', 'write'] });
  user.send('{"set":"mode","to":"stop"}');
  await received(user, 1);
  eq(user.inbox[0].data.toString(), '{"set":"mode","to":"stop"}', 'round trip through the device');
  ok(!LIBAV.test(mapped(host.pid)), 'a host without video maps neither libav nor the video plugin');
  user.close();
  host.kill('SIGTERM');
  eq(await withTimeout(host.done, 5000, 'host exit'), 0, 'exits 0 on SIGTERM');
});

test('tcp:localhost:PORT reaches a device on 127.0.0.1 only when ::1 sorts first (every address is tried)', async () => {
  // here localhost is 127.0.0.1 alone: run the host with a hosts file (bind-mounted in a user and
  // mount namespace of its own) where localhost is ::1 first, on which nothing listens (F10)
  const fs = require('fs');
  const hosts = require('path').join(require('os').tmpdir(), `relay-t4000-hosts-${process.pid}`);
  fs.writeFileSync(hosts, '::1 localhost\n127.0.0.1 localhost\n');
  const probe = require('child_process').spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c',
    `mount --bind ${hosts} /etc/hosts && getent ahosts localhost`]);
  const order = probe.stdout.toString().split('\n').filter((l) => /STREAM/.test(l)).map((l) => l.split(/\s+/)[0]);
  eq(order.join(' '), '::1 127.0.0.1', 'inside the namespace, localhost is ::1 first');
  const args = ['host', '--session', `${r.base}/session/lh`, '--secret-file', r.secretFile, '--insecure',
    '--data', `tcp:localhost:${echoPort}`];
  const host = spawnTracked('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c',
    `mount --bind ${hosts} /etc/hosts && exec "$0" "$@"`, RELAY, ...args], { env: { PATH: process.env.PATH } });
  let err = '';
  host.stderr.on('data', (d) => { err += d; });
  const done = new Promise((resolve) => host.on('close', (code) => resolve(code)));
  // both links: the device's connect no longer comes before the relay's join, in either order
  await withTimeout((async () => { while (!/device link (up|down)/.test(err) || !/relay link up/.test(err)) await new Promise((s) => setTimeout(s, 20)); })(), 10000, 'device link state');
  ok(/device link up/.test(err), `the device link came up (${err.trim().split('\n').pop()})`);
  const user = await join(r, 'lh', { scopes: ['read', 'write'] });
  user.send('via localhost');
  await received(user, 1);
  eq(user.inbox[0].data.toString(), 'via localhost', 'round trip through the device');
  user.close();
  host.kill('SIGTERM');
  eq(await withTimeout(done, 5000, 'host exit'), 0, 'exit status');
  fs.unlinkSync(hosts);
});

test('ws:// and wss:// devices: the handshake on the stream\'s loop, then frames both ways with their type', async () => {
  const { WebSocketServer } = require('ws');
  const https = require('https');
  const fs = require('fs');
  const c = require('./lib.js').devCert();
  const tlsServer = https.createServer({ cert: fs.readFileSync(c.cert), key: fs.readFileSync(c.key) });
  const plainPort = await freePort();
  const tlsPort = await freePort();
  const plain = new WebSocketServer({ host: '127.0.0.1', port: plainPort });
  const secure = new WebSocketServer({ server: tlsServer });
  await new Promise((res) => tlsServer.listen(tlsPort, '127.0.0.1', res));
  for (const wss of [plain, secure]) wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
  for (const [topic, url] of [['wsdev', `ws://127.0.0.1:${plainPort}/dev`], ['wssdev', `wss://127.0.0.1:${tlsPort}/dev`]]) {
    const host = relayHost(['--session', `${r.base}/session/${topic}`, '--secret-file', r.secretFile, '--insecure',
      '--data', url]);
    await host.logged(/relay link up/);
    await host.logged(/device link up/);
    const user = await join(r, topic, { scopes: ['read', 'write'] });
    user.send('as text');
    user.send(Buffer.from([1, 2, 3]));
    await received(user, 2);
    eq(user.inbox[0].data.toString(), 'as text', `${url}: a text message round trip`);
    eq(user.inbox[0].isBinary, false, `${url}: still text`);
    eq(user.inbox[1].isBinary, true, `${url}: still binary`);
    eq(Buffer.compare(Buffer.from(user.inbox[1].data), Buffer.from([1, 2, 3])), 0, `${url}: a binary message round trip`);
    user.close();
    host.kill('SIGTERM');
    eq(await withTimeout(host.done, 5000, 'host exit'), 0, 'exit status');
  }
  plain.close();
  secure.close();
  tlsServer.close();
});

test('exec: device: a child process\'s stdin and stdout; restarted when it exits', async () => {
  const host = relayHost(['--session', `${r.base}/session/exec`, '--secret-file', r.secretFile, '--insecure',
    '--data', 'exec:head -n 1', '--backoff-min', '100ms', '--backoff-max', '200ms']);
  await host.logged(/relay link up/);
  await host.logged(/device link up/);
  const user = await join(r, 'exec', { scopes: ['read', 'write'] });
  user.send('line one\n');
  await received(user, 1);
  eq(user.inbox[0].data.toString(), 'line one\n', 'the child answered');
  await host.logged(/device link down/); // head exits after one line
  await host.logged(/device link back up/);
  user.send('line two\n');
  await received(user, 2);
  eq(user.inbox[1].data.toString(), 'line two\n', 'a new child answers after the restart');
  user.close();
  host.kill('SIGTERM');
  eq(await withTimeout(host.done, 5000, 'host exit'), 0, 'exit status');
});

test('a minted token is renewed on a second link before it expires, without a gap', async () => {
  // the device counts: every number must reach the reader, in order, across the renewal
  const counter = '(i=0; while :; do echo $i; i=$((i+1)); sleep 0.02; done) & while read l; do echo "cmd:$l"; done';
  const host = relayHost(['--session', `${r.base}/session/renew`, '--secret-file', r.secretFile, '--insecure',
    '--data', `exec:${counter}`, '--token-lifetime', '6s']);
  await host.logged(/relay link up/);
  const user = await join(r, 'renew', { scopes: ['read', 'write'] });
  let sent = 0; // commands keep going to the device across the renewal
  const sender = setInterval(() => user.send(`k${sent++}\n`), 25);
  await host.logged(/token renewed on a new link without a gap/, 8000);
  const text = () => user.inbox.map((m) => m.data.toString()).join('');
  const numbers = () => text().split('\n').filter((l) => /^[0-9]+$/.test(l)).map(Number);
  const lastNumber = () => { const n = numbers(); return n.length ? n[n.length - 1] : -1; };
  const atRenewal = lastNumber();
  await withTimeout((async () => { while (lastNumber() < atRenewal + 20) await new Promise((s) => setTimeout(s, 20)); })(), 5000, '20 more numbers');
  clearInterval(sender);
  await withTimeout((async () => { while (!text().includes(`cmd:k${sent - 1}\n`)) await new Promise((s) => setTimeout(s, 20)); })(), 5000, 'last command echoed');
  const echoed = text().split('\n').filter((l) => l.startsWith('cmd:k')).map((l) => Number(l.slice(5)));
  eq(echoed.length, sent, `every command reached the device once (${sent} sent across the renewal)`);
  ok(echoed.every((v, i) => v === i), 'in order, none lost or repeated');
  const nums = numbers();
  let gaps = 0;
  for (let i = 1; i < nums.length; i++) if (nums[i] !== nums[i - 1] + 1) gaps++;
  eq(gaps, 0, `every number arrived once and in order across the renewal (${nums[0]}..${nums[nums.length - 1]})`);
  ok(nums.length > 40, 'numbers from before and after the renewal');
  eq((host.err.match(/relay link up/g) || []).length, 1, 'the link never went down');
  ok(!/token expired/.test(host.err), 'renewed before the relay closed it for expiry');
  user.send('still bridged\n');
  await withTimeout((async () => { while (!text().includes('cmd:still bridged')) await new Promise((s) => setTimeout(s, 20)); })(), 5000, 'command reaches the device on the new link');
  ok(true, 'a command reaches the device through the renewed link');
  user.close();
  host.kill('SIGTERM');
  await withTimeout(host.done, 5000, 'host exit');
});

test('renewal: a message repeated on purpose reaches the device each time it is sent', async () => {
  // "stop" every 5 ms across the renewal: the handover drops only the new link's copies of what
  // the old link delivered, so the device must see exactly as many as were sent (F4)
  const host = relayHost(['--session', `${r.base}/session/repeat`, '--secret-file', r.secretFile, '--insecure',
    '--data', 'exec:while read l; do echo "cmd:$l"; done', '--token-lifetime', '6s']);
  await host.logged(/relay link up/);
  await host.logged(/device link up/);
  const user = await join(r, 'repeat', { scopes: ['read', 'write'] });
  const lines = () => user.inbox.map((m) => m.data.toString()).join('').split('\n');
  const until = (cond, ms, what) => withTimeout((async () => { while (!cond()) await new Promise((s) => setTimeout(s, 20)); })(), ms, what);
  let sent = 0;
  const sender = setInterval(() => { user.send('stop\n'); sent++; }, 5);
  await host.logged(/token renewed on a new link without a gap/, 8000);
  const atRenewal = sent;
  await until(() => sent > atRenewal + 100, 5000, '100 more sent after the renewal');
  clearInterval(sender);
  user.send('end\n');
  await until(() => lines().includes('cmd:end'), 5000, 'the end marker came back');
  const copies = lines().filter((l) => l === 'cmd:stop').length;
  // Known limit (docs/host.md): the count of messages only the old link got is taken over a
  // 2 ms settle window; a message whose two copies straddle its end is miscounted. Release
  // builds must be exact; a sanitizer build stretches the window's timing, so there one copy
  // more or less is reported but tolerated. Message ids from the relay would close this.
  const slow = /(asan|tsan)\/?$/.test(process.env.BUILD || '');
  if (slow && Math.abs(copies - sent) === 1) console.log(`  # sanitizer build: ${copies} copies for ${sent} sent (the settle window's known limit)`);
  ok(slow ? Math.abs(copies - sent) <= 1 : copies === sent,
    `every copy reached the device once (${copies} copies, ${sent} sent, ${atRenewal} before the renewal)`);
  eq((host.err.match(/relay link up/g) || []).length, 1, 'the link never went down');
  user.close();
  host.kill('SIGTERM');
  await withTimeout(host.done, 5000, 'host exit');
});

test('serial device (a pty pair); a port that disappears is reported once, the link stays', async () => {
  const dev = spawnTracked('/usr/bin/python3', [require('path').join(__dirname, 'pty-echo.py')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const ttyPath = await withTimeout(new Promise((resolve) => {
    let out = '';
    dev.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
  }), 5000, 'pty path');
  const apiPort = await freePort();
  const host = relayHost(['--session', `${r.base}/session/tty`, '--secret-file', r.secretFile, '--insecure',
    '--data', `serial:${ttyPath}:115200:8E1`, '--backoff-min', '100ms', '--backoff-max', '200ms',
    '--listen', `127.0.0.1:${apiPort}`]);
  await host.logged(/relay link up/);
  await host.logged(/device link up/);
  const user = await join(r, 'tty', { scopes: ['read', 'write'] });
  user.send('*IDN?\n');
  await received(user, 1);
  eq(user.inbox.map((m) => m.data.toString()).join(''), '*IDN?\n', 'round trip through the serial port');
  dev.kill('SIGKILL'); // the port disappears
  await host.logged(/device link down/);
  const attempts = async () => (await (await fetch(`http://127.0.0.1:${apiPort}/api/streams`)).json()).streams[0].failed_attempts;
  await withTimeout((async () => { while (await attempts() < 4) await new Promise((s) => setTimeout(s, 50)); })(),
    5000, 'the port reopened and failed again, several times');
  eq(host.err.split('\n').filter((l) => /device link down/.test(l)).length, 1, 'reported once, not per retry');
  ok(!/relay link down/.test(host.err), 'the relay link stays up');
  user.close();
  host.kill('SIGTERM');
  eq(await withTimeout(host.done, 5000, 'host exit'), 0, 'exit status');
});

test('video: the test pattern arrives as MPEG-TS, one message per frame, keyframe first', async () => {
  const viewer = await join(r, 'cam', { scopes: ['read'] });
  const host = relayHost(['--session', `${r.base}/session/cam`, '--secret-file', r.secretFile, '--insecure',
    '--video', 'test', '--fps', '25', '--gop', '10']);
  await received(viewer, 20, 10000);
  const msgs = viewer.inbox.slice(0, 20).map((m) => m.data);
  ok(msgs.every((b) => b.length > 0 && b.length % 188 === 0), 'whole 188-byte packets');
  ok(msgs.every((b) => { for (let i = 0; i < b.length; i += 188) if (b[i] !== 0x47) return false; return true; }),
    'every packet starts with the sync byte');
  // The first message carries a keyframe: its video PES holds an MPEG-1 sequence header (00 00 01 B3).
  ok(msgs[0].includes(Buffer.from([0, 0, 1, 0xb3])), 'starts with a sequence header (keyframe)');
  ok(/relay-video\.so/.test(mapped(host.pid)), 'the video plugin is loaded (found beside the binary)');
  host.kill('SIGTERM');
  await withTimeout(host.done, 5000, 'host exit');
  viewer.close();
});

test('video without its plugin: the stream says why and still bridges its data', async () => {
  const missing = '/nonexistent/relay-video.so';
  const host = spawnTracked(RELAY, ['host', '--session', `${r.base}/session/noplug`, '--secret-file', r.secretFile,
    '--insecure', '--video', 'test', '--data', `tcp:127.0.0.1:${echoPort}`],
  { env: { PATH: process.env.PATH, RELAY_VIDEO_PLUGIN: missing } });
  let err = '';
  host.stderr.on('data', (d) => { err += d; });
  const done = new Promise((resolve) => host.on('close', (code) => resolve(code)));
  await withTimeout((async () => { while (!/device link up/.test(err) || !/relay link up/.test(err)) await new Promise((s) => setTimeout(s, 20)); })(), 10000, 'links up');
  ok(err.includes(`no video: cannot load the video plugin (RELAY_VIDEO_PLUGIN): ${missing}: No such file or directory`),
    'the log names the path and the reason');
  ok(/video unavailable, the stream runs without it/.test(err), 'the stream goes on without video');
  const user = await join(r, 'noplug', { scopes: ['read', 'write'] });
  user.send('data without video');
  await received(user, 1);
  eq(user.inbox[0].data.toString(), 'data without video', 'round trip through the device');
  user.close();
  host.kill('SIGTERM');
  eq(await withTimeout(done, 5000, 'host exit'), 0, 'exits 0 on SIGTERM');
});

test('recovers by itself when the relay restarts', async () => {
  const host = relayHost(['--session', `${r.base}/session/dev2`, '--secret-file', r.secretFile, '--insecure',
    '--data', `tcp:127.0.0.1:${echoPort}`, '--backoff-min', '100ms', '--backoff-max', '500ms']);
  await host.logged(/relay link up/);
  const { port, stateDir, secret } = r;
  await r.stop();
  await host.logged(/relay link down/);
  r = await startRelay({ port, stateDir, secret, args: ['--access-rate', '0'] });
  await host.logged(/relay link back up/);
  const user = await join(r, 'dev2', { scopes: ['read', 'write'] });
  user.send('after restart');
  await received(user, 1);
  eq(user.inbox[0].data.toString(), 'after restart', 'the bridge works again');
  eq(host.err.split('\n').filter((l) => /relay link down/.test(l)).length, 1, 'the loss is logged once');
  user.close();
  host.kill('SIGTERM');
  await withTimeout(host.done, 5000, 'host exit');
});

test('a device that stops reading: the write gives up after --timeout; stop is prompt; the exec group goes', async () => {
  // unique to this run: another test run on the machine must not be counted (pgrep is global)
  const marker = `sleep 102.${process.pid}`;
  // "sleep; cat": sh forks sleep (which never reads) and would leave it behind if only sh were killed
  const host = relayHost(['--session', `${r.base}/session/stuck`, '--secret-file', r.secretFile, '--insecure',
    '--data', `exec:${marker}; cat`, '--timeout', '1s']);
  await host.logged(/relay link up/); // a message sent before the link joined is not delivered
  await host.logged(/device link up/);
  const user = await join(r, 'stuck', { scopes: ['read', 'write'] });
  const chunk = Buffer.alloc(16384, 0x61);
  for (let i = 0; i < 40; i++) user.send(chunk); // 640 KiB: far more than a pipe holds
  await host.logged(/device link down: the device stopped reading/, 10000);
  ok(true, 'reported, not hung');
  user.close();
  const t0 = Date.now();
  host.kill('SIGTERM');
  eq(await withTimeout(host.done, 5000, 'host exit'), 0, 'exit status');
  ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
  // SIGKILL went to the device's group; its last process may take a moment to be gone
  const left = () => require('child_process').spawnSync('pgrep', ['-f', marker]).stdout.toString().trim();
  const deadline = Date.now() + 2000;
  while (left() !== '' && Date.now() < deadline) await new Promise((s) => setTimeout(s, 20));
  eq(left(), '', 'no process of the exec: device is left behind');
});

test('a device that stops reading does not hold the stream: what it says keeps flowing meanwhile (F9)', async () => {
  // the device counts and never reads its stdin: writes to it wait in a buffer, and until
  // --timeout gives up on it the loop still forwards every number (the old loop blocked in the
  // write for --timeout, and nothing moved)
  const host = relayHost(['--session', `${r.base}/session/deaf`, '--secret-file', r.secretFile, '--insecure',
    '--data', 'exec:i=0; while :; do echo $i; i=$((i+1)); sleep 0.02; done', '--timeout', '3s']);
  await host.logged(/relay link up/);
  await host.logged(/device link up/);
  const user = await join(r, 'deaf', { scopes: ['read', 'write'] });
  const numbers = () => user.inbox.map((m) => m.data.toString()).join('').split('\n').filter((l) => /^[0-9]+$/.test(l)).length;
  await received(user, 5);
  const chunk = Buffer.alloc(16384, 0x61);
  for (let i = 0; i < 40; i++) user.send(chunk); // 640 KiB: far more than a pipe holds
  const before = numbers();
  await host.logged(/device link down: the device stopped reading/, 10000);
  const during = numbers() - before;
  ok(during > 30, `numbers kept arriving while the device did not read (${during} in --timeout)`);
  ok(!/relay link down/.test(host.err), 'the relay link stayed up');
  user.close();
  host.kill('SIGTERM');
  eq(await withTimeout(host.done, 5000, 'host exit'), 0, 'exit status');
});

test('bad settings and refused tokens: clear errors and exit codes', async () => {
  let h = relayHost(['--session', `${r.base}/session/x`, '--secret-file', r.secretFile]);
  eq(await withTimeout(h.done, 5000, 'exit'), 2, 'nothing to do: exit 2');
  h = relayHost(['--session', `${r.base}/session/x`, '--secret-file', r.secretFile, '--data', 'serial']);
  eq(await withTimeout(h.done, 5000, 'exit'), 2, 'bad --data: exit 2');
  ok(/tcp:HOST:PORT/.test(h.err), 'says what --data takes');
  for (const spec of ['serial:/dev/ttyS0:12345', 'serial:/dev/ttyS0:115200x', 'serial:/dev/ttyS0:115200:9N1',
    'serial:/dev/ttyS0:115200:8X1', 'serial:/dev/ttyS0:8N1', 'tcp:127.0.0.1:0', 'tcp:127.0.0.1:80x']) {
    const res = relaySync(['host', '--check', '--session', `${r.base}/session/x`, '--secret-file', r.secretFile, '--data', spec]);
    eq(res.status, 2, `--data ${spec}: exit 2`);
    ok(/data must be/.test(res.stderr), `says what --data takes (${res.stderr.trim()})`);
  }
  eq(relaySync(['host', '--check', '--session', `${r.base}/session/x`, '--secret-file', r.secretFile, '--data', 'serial:/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0:9600:7E2']).status,
    0, 'a by-path serial port with colons, a speed and a framing');
  h = relayHost(['--session', `${r.base}/session/x`, '--insecure', '--data', `tcp:127.0.0.1:${echoPort}`]);
  eq(await withTimeout(h.done, 5000, 'exit'), 2, 'no token at all: exit 2 (a settings problem)');
  ok(/no token/.test(h.err), `says so (${h.err.trim().split('\n').pop()})`);
  const fs = require('fs');
  const bad = require('path').join(require('os').tmpdir(), `relay-bad-token-${process.pid}`);
  fs.writeFileSync(bad, 'not.a.token');
  h = relayHost(['--session', `${r.base}/session/x`, '--token-file', bad, '--insecure', '--data', `tcp:127.0.0.1:${echoPort}`]);
  eq(await withTimeout(h.done, 10000, 'exit'), 1, 'refused token: exit 1');
  ok(/HTTP 401/.test(h.err), `one clear line (${h.err.trim().split('\n').pop()})`);
  fs.unlinkSync(bad);
});

test('log settings: JSON lines to a file, reopened on SIGHUP (logrotate); bad ones exit 2', async () => {
  const fs = require('fs');
  const dir = fs.mkdtempSync(require('path').join(require('os').tmpdir(), 'relay-host-log-'));
  const file = `${dir}/host.log`;
  const bad = relayHost(['--session', `${r.base}/session/logs`, '--secret-file', r.secretFile, '--insecure',
    '--data', `tcp:127.0.0.1:${echoPort}`, '--log-level', 'loud']);
  eq(await withTimeout(bad.done, 5000, 'exit'), 2, 'bad --log-level: exit 2');
  ok(/log_level/.test(bad.err), `says which setting (${bad.err.trim().split('\n').pop()})`);
  const host = relayHost(['--session', `${r.base}/session/logs`, '--secret-file', r.secretFile, '--insecure',
    '--data', `tcp:127.0.0.1:${echoPort}`, '--log-file', file, '--log-format', 'json']);
  const inFile = (f, re) => fs.existsSync(f) && re.test(fs.readFileSync(f, 'utf8'));
  const until = (cond, what) => withTimeout((async () => { while (!cond()) await new Promise((s) => setTimeout(s, 20)); })(), 5000, what);
  await until(() => inFile(file, /relay link up/), 'relay link up, in the file');
  const first = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  ok(first.every((l) => l.level && l.msg !== undefined), `JSON lines with level and msg (${Object.keys(first[0])})`);
  fs.renameSync(file, `${file}.1`);
  host.kill('SIGHUP');
  host.kill('SIGTERM');
  eq(await withTimeout(host.done, 5000, 'host exit'), 0, 'SIGHUP did not end the host; SIGTERM did, with 0');
  ok(inFile(file, /stopping/), 'lines after SIGHUP went to a new file');
  ok(!inFile(`${file}.1`, /stopping/), 'and not to the rotated one');
  fs.rmSync(dir, { recursive: true });
});

test('stop', async () => {
  echo.close();
  eq((await r.stop()).code, 0, 'relay exit status');
});

run({ perTestMs: 40000 });
