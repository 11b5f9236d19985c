// t5000: `relay file`, the test and maintenance client, against a real relay: record, play
// (.play scripts with delays, conditions and filters), binary recordings byte for byte,
// interactive input, SIGHUP reopening, clear failures, `check`, and a bench smoke run whose
// counts must add up exactly.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { test, ok, eq, run, startRelay, join, received, spawnTracked, tmpdir, withTimeout, until, devCert, RELAY } = require('./lib.js');

let r;
let dir;

// Run relay file with ARGS; resolves {code, stdout, stderr} when it exits (bounded).
function relayFile(args, { stdin, ms = 20000 } = {}) {
  const p = spawnTracked(RELAY, ['file', ...args], { env: { PATH: process.env.PATH }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => { stdout += d; });
  p.stderr.on('data', (d) => { stderr += d; });
  if (stdin !== undefined) p.stdin.end(stdin);
  const done = new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr }))); // output all read
  p.done = withTimeout(done, ms, `relay file ${args.join(' ')}`);
  p.printed = (text) => withTimeout(new Promise((resolve) => {
    const check = () => { if (stdout.includes(text)) resolve(); };
    p.stdout.on('data', check);
    check();
  }), 10000, `relay file output ${text}`);
  p.logged = (re) => withTimeout(new Promise((resolve) => {
    const check = () => { if (re.test(stderr)) resolve(); };
    p.stderr.on('data', check);
    check();
  }), 10000, `relay file log ${re}`);
  return p;
}

const session = (topic) => `${r.base}/session/${topic}`;
const common = () => ['--secret-file', r.secretFile, '--insecure'];
// Resolve once @file exists and holds @text (bounded).
const recorded = (file, text) => until(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(text), 5000, `${text} recorded`);
// Recorded text lines without their timestamps.
const contents = (text) => text.split('\n').filter(Boolean).map((l) => l.replace(/^\[[0-9T:.Z-]+\] /, ''));

test('start relay', async () => {
  r = await startRelay({ args: ['--access-rate', '0'] });
  dir = tmpdir();
  ok(r.port > 0, 'relay started');
});

test('play to a recorder: the recording matches what was sent, in order', async () => {
  const rec = path.join(dir, 'rec.txt');
  const recorder = relayFile(['--session', session('play1'), ...common(), '--file', rec]);
  await recorder.logged(/connected/);
  const script = path.join(dir, 's1.play');
  fs.writeFileSync(script, ['#- a silent comment', '#+ an echoed comment', 'first', '[20ms] {"json": true}',
    '[]', '[10ms]', '  spaced message', '[0.01s]second to last', 'last'].join('\n') + '\n');
  const player = relayFile(['--session', session('play1'), ...common(), '--play', script, '--file', path.join(dir, 'p.txt')]);
  eq((await player.done).code, 0, 'player exit status');
  const node = await join(r, 'play1', { scopes: ['write'] });
  node.send('marker');
  await recorded(rec, 'marker');
  eq(contents(fs.readFileSync(rec, 'utf8')), ['first', '{"json": true}', '  spaced message', 'second to last', 'last', 'marker'],
    'recorded messages');
  eq(contents(fs.readFileSync(path.join(dir, 'p.txt'), 'utf8')), ['an echoed comment'], 'the echoed comment is in the player\'s recording');
  ok(/^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\] first$/m.test(fs.readFileSync(rec, 'utf8')), 'RFC 3339 timestamps');
  recorder.kill('SIGTERM');
  eq((await recorder.done).code, 0, 'recorder stops cleanly on SIGTERM');
  node.close();
});

test('a condition that is met sends at once; one that times out sends after its timeout', async () => {
  const responder = await join(r, 'cond', { scopes: ['read', 'write'] });
  responder.on('message', (d) => { if (d.toString() === 'ping') responder.send('pong 1'); });
  const script = path.join(dir, 'cond.play');
  fs.writeFileSync(script, ["ping", "<'^pong',1,5s> after pong", "<'^never',1,300ms> after timeout"].join('\n'));
  const t0 = Date.now();
  const player = relayFile(['--session', session('cond'), ...common(), '--play', script]);
  eq((await player.done).code, 0, 'exit status');
  const elapsed = Date.now() - t0;
  await received(responder, 3);
  eq(responder.inbox.map((m) => m.data.toString()), ['ping', 'after pong', 'after timeout'], 'sent in order');
  ok(elapsed >= 300, `the timed-out condition waited its 300 ms (${elapsed} ms in all)`);
  ok(elapsed < 5000, 'the met condition did not wait for its 5 s timeout');
  responder.close();
});

test('filters choose what is recorded', async () => {
  const script = path.join(dir, 'filter.play');
  fs.writeFileSync(script, ['|+> ^keep', '|-> drop', '#+ filters set', '[10s]', '|reset>', '#+ reset done', '[10s]'].join('\n'));
  const rec = path.join(dir, 'filter.txt');
  const player = relayFile(['--session', session('filt'), ...common(), '--play', script, '--file', rec]);
  await recorded(rec, 'filters set');
  const w = await join(r, 'filt', { scopes: ['write'] });
  for (const m of ['keep 1', 'other', 'keep but drop', 'keep 2']) w.send(m);
  await recorded(rec, 'keep 2');
  player.kill('SIGTERM');
  eq((await player.done).code, 0, 'exit status');
  eq(contents(fs.readFileSync(rec, 'utf8')), ['filters set', 'keep 1', 'keep 2'], 'accept and deny');
  fs.writeFileSync(script, ['|+> ^keep', '|reset>', '#+ reset done', '[10s]'].join('\n'));
  fs.writeFileSync(rec, '');
  const again = relayFile(['--session', session('filt'), ...common(), '--play', script, '--file', rec]);
  await recorded(rec, 'reset done');
  w.send('anything after reset');
  await recorded(rec, 'anything after reset');
  again.kill('SIGTERM');
  await again.done;
  w.close();
});

test('binary mode records the raw bytes, byte for byte', async () => {
  const rec = path.join(dir, 'video.ts');
  const recorder = relayFile(['--session', session('bin'), ...common(), '--mode', 'binary', '--file', rec]);
  await recorder.logged(/connected/);
  const w = await join(r, 'bin', { scopes: ['write'] });
  const chunks = [0, 1, 100, 188 * 7, 65536, 3].map((n) => crypto.randomBytes(n));
  for (const c of chunks) w.send(c);
  const want = Buffer.concat(chunks);
  await until(() => fs.existsSync(rec) && fs.statSync(rec).size >= want.length, 5000, 'binary recorded');
  ok(fs.readFileSync(rec).equals(want), 'identical bytes');
  recorder.kill('SIGTERM');
  await recorder.done;
  w.close();
});

test('interactive: stdin lines are sent; text mode records binary as base64', async () => {
  const reader = await join(r, 'inter', { scopes: ['read', 'write'] });
  const client = relayFile(['--session', session('inter'), ...common(), '--interactive'], { ms: 10000 });
  await client.logged(/connected/);
  reader.send(Buffer.from([0, 1, 2, 255]));
  client.stdin.write('typed one\ntyped two\n');
  await received(reader, 2);
  eq(reader.inbox.map((m) => m.data.toString()), ['typed one', 'typed two'], 'lines sent');
  await client.printed('] AAEC/w==');
  client.stdin.end();
  const res = await client.done;
  eq(res.code, 0, 'end of input ends the session');
  ok(res.stdout.includes('] AAEC/w=='), 'binary message recorded as base64');
  reader.close();
});

test('SIGHUP reopens the recording; nothing is lost across the reopen', async () => {
  const rec = path.join(dir, 'rot.txt');
  const recorder = relayFile(['--session', session('rot'), ...common(), '--file', rec]);
  await recorder.logged(/connected/);
  const w = await join(r, 'rot', { scopes: ['write'] });
  for (let i = 0; i < 50; i++) w.send(`before ${i}`);
  await recorded(rec, 'before 49');
  fs.renameSync(rec, rec + '.1');
  recorder.kill('SIGHUP');
  // the reopen creates the file anew: messages sent after that must land in it (sent before,
  // they could be read ahead of the signal on the recorder's loop and go to the old file)
  await until(() => fs.existsSync(rec), 5000, 'the recording reopened after SIGHUP');
  for (let i = 0; i < 50; i++) w.send(`after ${i}`);
  await recorded(rec, 'after 49');
  const all = [...contents(fs.readFileSync(rec + '.1', 'utf8')), ...contents(fs.readFileSync(rec, 'utf8'))];
  eq(all.length, 100, 'every message in one file or the other');
  eq(all, [...Array.from({ length: 50 }, (_, i) => `before ${i}`), ...Array.from({ length: 50 }, (_, i) => `after ${i}`)], 'in order');
  recorder.kill('SIGTERM');
  await recorder.done;
  w.close();
});

test('malformed scripts: file, line and column; a bad regex is reported before anything is sent', async () => {
  const listener = await join(r, 'bad', { scopes: ['read'] });
  const bad = path.join(dir, 'bad.play');
  fs.writeFileSync(bad, 'hello\n[10ms] ok\n<\'^x\',oops,1s> y\n');
  let res = await relayFile(['--session', session('bad'), ...common(), '--play', bad]).done;
  eq(res.code, 2, 'exit 2');
  ok(res.stderr.includes(`${bad}:3:7: expected`), `names file:line:column (${res.stderr.trim()})`);
  fs.writeFileSync(bad, 'hello\n|+> [unclosed\n');
  res = await relayFile(['--session', session('bad'), ...common(), '--play', bad]).done;
  eq(res.code, 2, 'bad regex: exit 2');
  ok(/bad\.play:2: bad regex/.test(res.stderr), `bad regex named (${res.stderr.trim()})`);
  fs.writeFileSync(bad, 'hello\n' + Array.from({ length: 65 }, (_, i) => `|+> m${i}\n`).join(''));
  res = await relayFile(['--session', session('bad'), ...common(), '--play', bad]).done;
  eq(res.code, 2, 'too many filters: exit 2');
  ok(/bad\.play:66: more than 64 accept filters without a reset/.test(res.stderr), `named (${res.stderr.trim()})`);
  const many = path.join(dir, 'many.play');
  fs.writeFileSync(many, Array.from({ length: 64 }, (_, i) => `|+> m${i}\n`).join('') + '|r>\n|+> again\n');
  res = await relayFile(['--session', session('many'), ...common(), '--play', many]).done;
  eq(res.code, 0, `64 filters, a reset and one more are fine (${res.stderr.trim().split('\n').pop()})`);
  const w = await join(r, 'bad', { scopes: ['write'] });
  w.send('probe');
  await received(listener, 1);
  eq(listener.inbox.map((m) => m.data.toString()), ['probe'], 'nothing was sent before the error');
  listener.close();
  w.close();
});

test('failures: unreachable, refused token, closed topic: one line and exit 1', async () => {
  let res = await relayFile(['--session', 'https://127.0.0.1:1/session/x', ...common(), '--once']).done;
  eq(res.code, 1, 'unreachable: exit 1');
  eq(res.stderr.trim().split('\n').length, 1, `one line (${res.stderr.trim()})`);
  ok(/cannot connect/.test(res.stderr), 'says it cannot connect');
  fs.writeFileSync(path.join(dir, 'badtoken'), 'not.a.token');
  res = await relayFile(['--session', session('x'), '--token-file', path.join(dir, 'badtoken'), '--insecure']).done;
  eq(res.code, 1, 'refused token: exit 1 even without --once');
  ok(/HTTP 401/.test(res.stderr), `says 401 (${res.stderr.trim()})`);
  const client = relayFile(['--session', session('closing'), ...common(), '--once']);
  await client.logged(/connected/);
  const admin = r.token({ topic: 'a', scopes: ['relay:admin'] });
  const d = await fetch(`${r.base}/bids/deny?bid=relay-file&exp=${Math.floor(Date.now() / 1000) + 60}`,
    { method: 'POST', headers: { Authorization: admin } });
  eq(d.status, 204, 'deny');
  res = await client.done;
  eq(res.code, 1, 'closed topic: exit 1');
  ok(/closed by the relay: 1008 booking cancelled/.test(res.stderr), `says why (${res.stderr.trim()})`);
  await fetch(`${r.base}/bids/allow?bid=relay-file&exp=${Math.floor(Date.now() / 1000) + 60}`,
    { method: 'POST', headers: { Authorization: admin } });
});

test('usage errors exit 2', async () => {
  eq((await relayFile(['--secret-file', r.secretFile]).done).code, 2, 'no session');
  eq((await relayFile(['--session', session('x'), '--mode', 'morse']).done).code, 2, 'bad mode');
  eq((await relayFile(['--session', session('x'), '--play', path.join(dir, 'missing.play')]).done).code, 2, 'missing script');
});

test('check: access, redeem and a round trip with timings; exit code says pass or fail', async () => {
  let res = await relayFile(['check', '--session', session('probe'), ...common()]).done;
  eq(res.code, 0, `pass (${res.stdout.trim()})`);
  ok(/^ok access\+connect [0-9.]+ ms, second connection [0-9.]+ ms, round trip [0-9.]+ ms$/m.test(res.stdout), 'timings');
  fs.writeFileSync(path.join(dir, 'readonly'), r.token({ topic: 'probe', scopes: ['read'] }));
  res = await relayFile(['check', '--session', session('probe'), '--token-file', path.join(dir, 'readonly'), '--insecure', '--timeout', '1s']).done;
  eq(res.code, 1, 'a read-only token fails the round trip');
  ok(/^FAIL /m.test(res.stdout), `says FAIL (${res.stdout.trim()})`);
});

test('--ca-file: the relay\'s self-signed certificate is trusted with it; without it, a clear refusal', async () => {
  const probe = (...extra) => relayFile(['check', '--session', session('trust'), '--secret-file', r.secretFile, ...extra]).done;
  let res = await probe('--ca-file', devCert().cert);
  eq(res.code, 0, `trusted with --ca-file (${res.stdout.trim()})`);
  res = await probe('--ca-file', devCert().cert, '--session', `https://localhost:${r.port}/session/trust`, '--audience', r.base);
  eq(res.code, 0, `by name too: the certificate names localhost (${res.stdout.trim()})`);
  res = await probe();
  eq(res.code, 1, 'refused against the system CAs');
  ok(/certificate not trusted: self[- ]signed certificate.*--ca-file/.test(res.stdout), `says why (${res.stdout.trim()})`);
  const other = path.join(dir, 'other.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', path.join(dir, 'other.key'),
    '-out', other], { stdio: 'ignore' });
  res = await relayFile(['--session', session('trust'), '--secret-file', r.secretFile, '--ca-file', other, '--once']).done;
  eq(res.code, 1, 'another certificate in --ca-file: refused');
  ok(/certificate not trusted/.test(res.stderr), `says why (${res.stderr.trim()})`);
  res = await relayFile(['--session', session('trust'), '--secret-file', r.secretFile, '--ca-file', path.join(dir, 'missing.pem')]).done;
  eq(res.code, 2, 'an unreadable --ca-file is a settings error');
  ok(/cannot load CA file/.test(res.stderr), `says so (${res.stderr.trim()})`);
  const b = await relayFile(['bench', '--session', session('trustbench'), '--secret-file', r.secretFile, '--ca-file', devCert().cert,
    '--readers', '1', '--writers', '1', '--rate', '50', '--duration', '200ms', '--size', '100', '--json'], { ms: 30000 }).done;
  eq(b.code, 0, `bench with --ca-file (${b.stderr.trim().split('\n').pop()})`);
});

test('bench smoke run: sent x readers = delivered + drops, no errors', async () => {
  const res = await relayFile(['bench', '--session', session('benchsmoke'), ...common(), '--readers', '3', '--writers', '2',
    '--rate', '200', '--duration', '1s', '--size', '100', '--json'], { ms: 30000 }).done;
  eq(res.code, 0, `exit status (${res.stderr.trim().split('\n').pop()})`);
  const s = JSON.parse(res.stdout);
  eq(s.sent * 3, s.delivered + s.drops, `accounting: ${s.sent} x 3 = ${s.delivered} + ${s.drops}`);
  eq(s.drops, 0, 'at 200 msg/s on loopback every message reaches every reader');
  eq(s.delivered, s.sent * 3, 'delivered = sent x readers');
  ok(s.sent >= 2 * 150, `about 2 x 200 msg/s for 1 s (${s.sent})`);
  eq(s.errors, 0, 'no errors');
  ok(s.p50_us > 0, 'latency measured');
});

test('reconnects by itself after the relay restarts, logging once each way', async () => {
  const rec = path.join(dir, 'reconnect.txt');
  const recorder = relayFile(['--session', session('re'), ...common(), '--file', rec, '--backoff-min', '100ms',
    '--backoff-max', '500ms']);
  await recorder.logged(/connected/);
  const port = r.port;
  const stateDir = r.stateDir;
  const secret = r.secret;
  await r.stop();
  await recorder.logged(/reconnecting|retrying/);
  r = await startRelay({ port, stateDir, secret, args: ['--access-rate', '0'] });
  await recorder.logged(/reconnected/);
  const w = await join(r, 're', { scopes: ['write'] });
  w.send('after the restart');
  await recorded(rec, 'after the restart');
  recorder.kill('SIGTERM');
  const res = await recorder.done;
  eq(res.code, 0, 'exit status');
  const lost = res.stderr.split('\n').filter((l) => /reconnecting|retrying/.test(l)).length;
  eq(lost, 1, "the loss is logged once, not once per attempt");
  w.close();
});

test('stop', async () => {
  eq((await r.stop()).code, 0, 'exit status');
});

run({ perTestMs: 40000 });
