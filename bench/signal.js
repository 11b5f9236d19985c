// Signaling benchmark (make bench): one relay serve (plain ws, --signal-rate 0), PEERS peers in
// one realm (default 1,000), paired; each peer keeps WINDOW 1 KiB "message" frames in flight to
// its partner, which answers each arrival with a new one. Reports delivered messages per second
// and the one-way latency (sender's send to addressee's receive, same clock) p50/p99, the
// median of BENCH_REPEAT runs (default 3) of BENCH_SECONDS (default 5) each, and the relay's CPU
// seconds. The load generator is one node process: at this rate it is the likelier bottleneck,
// so the server's CPU share is reported beside the rate.
// usage: node bench/signal.js RELAY_BINARY [PEERS] [WINDOW]
'use strict';
const { spawn } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'test', 'node_modules', 'ws'));

const relay = path.resolve(process.argv[2] || 'build/release/relay');
const PEERS = Number(process.argv[3] || 1000);
const WINDOW = Number(process.argv[4] || 4);
const REPEAT = Number(process.env.BENCH_REPEAT || 3);
const SECONDS = Number(process.env.BENCH_SECONDS || 5);
const REALM = 'bench';
const PAD = 'x'.repeat(1024 - 96); // the frame the addressee gets is about 1 KiB

const b64u = (x) => Buffer.from(x).toString('base64url');
function token(secret, aud, sub) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { topic: REALM, prefix: 'signal', sub, scopes: ['read', 'write'], booking_id: 'bench',
    aud, iat: now - 1, nbf: now - 1, exp: now + 3600 };
  const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  return `${input}.${b64u(crypto.createHmac('sha256', secret).update(input).digest())}`;
}

function startRelay(dir, secret) {
  fs.writeFileSync(path.join(dir, 'secret'), secret);
  const p = spawn(relay, ['serve', '--listen', '127.0.0.1:0', '--audience', 'http://127.0.0.1:0', '--insecure-http',
    '--secret-file', path.join(dir, 'secret'), '--state-dir', path.join(dir, 'state'), '--access-rate', '0',
    '--signal-rate', '0', '--log-level', 'notice'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    p.stderr.on('data', (d) => {
      log += d;
      const m = /relay listening on \w+:\/\/\S*:(\d+) /.exec(log);
      if (m) resolve({ p, port: Number(m[1]) });
    });
    p.on('exit', (c) => reject(new Error(`relay exited ${c}: ${log}`)));
  });
}

function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
}

async function connect(base, secret, aud, id) {
  const res = await fetch(`${base}/signal/${REALM}`, { method: 'POST', headers: { Authorization: token(secret, aud, id) } });
  if (res.status !== 200) throw new Error(`access ${id}: ${res.status}`);
  const { uri } = await res.json();
  const ws = new WebSocket(uri, { perMessageDeflate: false });
  ws.joins = 0;
  await new Promise((resolve, reject) => {
    ws.once('message', () => resolve()); // the welcome
    ws.once('error', reject);
  });
  return ws;
}

async function once() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-bench-signal-'));
  const secret = crypto.randomBytes(32).toString('hex');
  const { p, port } = await startRelay(dir, secret);
  const base = `http://127.0.0.1:${port}`;
  const aud = 'http://127.0.0.1:0'.replace(':0', `:${port}`);
  try {
    const peers = [];
    for (let i = 0; i < PEERS; i += 50) {
      const batch = [];
      for (let k = i; k < Math.min(PEERS, i + 50); k++) batch.push(connect(base, secret, aud, `p${k}`));
      peers.push(...await Promise.all(batch));
    }
    let joins = 0;
    let measuring = false;
    let delivered = 0;
    const lat = [];
    const frame = (to) => JSON.stringify({ to, type: 'message', data: { t: performance.now(), pad: PAD } });
    peers.forEach((ws, i) => {
      const partner = `p${i ^ 1}`;
      ws.on('message', (d) => {
        const m = JSON.parse(d);
        if (m.type === 'join') { joins++; return; }
        if (m.type !== 'message') return;
        if (measuring) {
          delivered++;
          lat.push(performance.now() - m.data.t);
        }
        if (!ws.stopped) ws.send(frame(partner));
      });
    });
    const wantJoins = (PEERS * (PEERS - 1)) / 2;
    const t0 = Date.now();
    while (joins < wantJoins && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 50));
    peers.forEach((ws, i) => { for (let w = 0; w < WINDOW; w++) ws.send(frame(`p${i ^ 1}`)); });
    await new Promise((r) => setTimeout(r, 1000)); // warm up
    const cpu0 = cpuSeconds(p.pid);
    measuring = true;
    const start = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    measuring = false;
    const secs = (performance.now() - start) / 1000;
    const cpu = cpuSeconds(p.pid) - cpu0;
    peers.forEach((ws) => { ws.stopped = true; ws.terminate(); });
    lat.sort((a, b) => a - b);
    const q = (f) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(f * lat.length))] * 1000 : NaN);
    return { msgs_per_s: delivered / secs, p50_us: q(0.5), p99_us: q(0.99), server_cpu_per_s: cpu / secs };
  } finally {
    p.kill('SIGTERM');
    await new Promise((r) => p.on('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  const runs = [];
  for (let i = 0; i < REPEAT; i++) runs.push(await once());
  const med = (f) => {
    const s = runs.map(f).sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  fs.mkdirSync('build/bench', { recursive: true });
  fs.writeFileSync('build/bench/signal.jsonl', runs.map((r) => JSON.stringify({ peers: PEERS, window: WINDOW, ...r })).join('\n') + '\n');
  console.log(`| signaling: ${PEERS} peers, 1 realm, pairs, 1 KiB, window ${WINDOW} | runs | delivered msg/s | p50 µs | p99 µs | server CPU (cores) |`);
  console.log('| --- | --- | --- | --- | --- | --- |');
  console.log(`| ws | ${runs.length} | ${med((r) => r.msgs_per_s).toFixed(0)} | ${med((r) => r.p50_us).toFixed(0)} | ` +
    `${med((r) => r.p99_us).toFixed(0)} | ${med((r) => r.server_cpu_per_s).toFixed(2)} |`);
})().catch((e) => {
  console.error(`bench signal: ${e.stack || e}`);
  process.exit(1);
});
