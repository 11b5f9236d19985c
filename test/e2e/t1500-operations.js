// t1500: operating the relay. /status and the stats stream report every connection with exact
// traffic counts and never a token or secret; /metrics parses as Prometheus text and its
// counters follow the traffic; /healthz answers; --metrics-listen moves /metrics off the
// public listener.
'use strict';
const { test, ok, eq, run, startRelay, access, join, received, openWs, until } = require('./lib.js');

let r;
let metricsPort;
const N = 37;

// A small parser for the Prometheus text format (version 0.0.4): returns {name{labels}: value}
// and throws on a line that is neither a comment nor a sample.
function parseMetrics(text) {
  const out = {};
  const types = {};
  for (const line of text.split('\n')) {
    if (!line) continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') types[m[2]] = m[3];
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    if (!types[m[1]]) throw new Error(`sample without TYPE: ${line}`);
    out[m[1] + (m[2] || '')] = Number(m[4]);
  }
  return out;
}

async function getJson(url, token) {
  const res = await fetch(url, { headers: token ? { Authorization: token } : {} });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null };
}

const statsToken = (r) => r.token({ topic: 'stats', scopes: ['read', 'relay:stats'] });

test('start relay with a separate metrics listener', async () => {
  r = await startRelay({ args: ['--stats-every', '300ms', '--metrics-listen', '127.0.0.1:0'] });
  ok(r.port > 0, 'relay started');
  metricsPort = r.metricsPort;
  ok(metricsPort > 0 && metricsPort !== r.port, `metrics listener on its own bound port (${metricsPort})`);
});

test('/status reports connections and exact traffic; no token or secret in it', async () => {
  const before = parseMetrics(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
  const rd1 = await join(r, 'lab', { scopes: ['read'], booking_id: 'bk-a', sub: 'student1' });
  const rd2 = await join(r, 'lab', { scopes: ['read'], booking_id: 'bk-a' });
  const wrTok = r.token({ topic: 'lab', scopes: ['write'], booking_id: 'bk-w' });
  const a = await access(r, 'lab', wrTok);
  const wr = await openWs(a.body.uri);
  for (let i = 0; i < N; i++) wr.send(Buffer.alloc(100 + i));
  await received(rd1, N);
  await received(rd2, N);
  const bytes = Array.from({ length: N }, (_, i) => 100 + i).reduce((x, y) => x + y, 0);
  const st = await getJson(`${r.base}/status`, statsToken(r));
  eq(st.status, 200, 'status answers');
  const lab = st.body.filter((x) => x.topic === 'lab');
  eq(lab.length, 3, 'three connections on lab');
  const writer = lab.find((x) => x.can_write);
  const readers = lab.filter((x) => !x.can_write);
  eq([writer.stats.rx.messages, writer.stats.rx.bytes], [N, bytes], 'writer: messages and bytes received from it');
  eq(readers.map((x) => [x.stats.tx.messages, x.stats.tx.bytes]), [[N, bytes], [N, bytes]], 'readers: delivered');
  eq(writer.booking_id, 'bk-w', 'booking_id');
  for (const f of ['can_read', 'can_write', 'connected', 'connected_at', 'expires_at', 'remote_addr', 'scopes', 'user_agent'])
    ok(f in writer, `practable field ${f}`);
  eq(writer.scopes, ['write'], 'scopes');
  eq(writer.remote_addr, '127.0.0.1', 'remote_addr');
  ok(writer.stats.rx.since_last_s >= 0, 'time since the last message');
  ok(!st.text.includes(wrTok) && !st.text.includes(wrTok.split('.')[2]), 'no token in the report');
  ok(!st.text.includes(r.secret), 'no secret in the report');
  const after = parseMetrics(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());
  eq(after.relay_messages_received_total - before.relay_messages_received_total, N, 'metrics: received moved by N');
  eq(after.relay_messages_delivered_total - before.relay_messages_delivered_total, 2 * N, 'metrics: delivered moved by 2N');
  eq(after.relay_bytes_delivered_total - before.relay_bytes_delivered_total, 2 * bytes, 'metrics: bytes');
  eq(after.relay_connections, 3, 'metrics: open connections');
  ok(after['relay_access_requests_total{status="200"}'] >= 3, 'metrics: access calls by status');
  ok(after['relay_code_redemptions_total{result="ok"}'] >= 3, 'metrics: redemptions');
  ok(after.process_resident_memory_bytes > 1e6, 'metrics: process RSS');
  for (const ws of [rd1, rd2, wr]) ws.close();
});

test('rates over the last seconds appear in the report', async () => {
  const rd = await join(r, 'rate', { scopes: ['read'] });
  const wr = await join(r, 'rate', { scopes: ['write'] });
  const timer = setInterval(() => wr.send('tick'), 10);
  try {
    await until(async () => {
      const st = await getJson(`${r.base}/status`, statsToken(r));
      const w = st.body.find((x) => x.topic === 'rate' && x.can_write);
      return w && w.stats.rx.fps > 10;
    }, 8000, 'writer rate above 10 msg/s');
    ok(true, 'writer rate reported');
  } finally {
    clearInterval(timer);
    rd.close();
    wr.close();
  }
});

test('/status refuses tokens without relay:stats', async () => {
  eq((await getJson(`${r.base}/status`)).status, 401, 'no token');
  eq((await getJson(`${r.base}/status`, r.token({ topic: 'stats', scopes: ['read'] }))).status, 401, 'read only');
  eq((await getJson(`${r.base}/status`, r.token({ topic: 'x', scopes: ['relay:admin'] }))).status, 200, 'admin may');
});

test('the stats topic streams the report; it needs relay:stats; writes are refused', async () => {
  const noScope = await access(r, 'stats', r.token({ topic: 'stats', scopes: ['read', 'write'] }));
  eq(noScope.status, 403, 'stats topic without relay:stats');
  const other = await join(r, 'watched', { scopes: ['read', 'write'] });
  const a = await access(r, 'stats', statsToken(r));
  eq(a.status, 200, 'access to the stats topic');
  const ws = await openWs(a.body.uri);
  await received(ws, 2, 5000);
  const report = JSON.parse(ws.inbox[1].data.toString());
  ok(Array.isArray(report), 'an array');
  ok(report.some((x) => x.topic === 'watched'), 'lists the other connection');
  ws.send('not allowed');
  const mine = () => ws.inbox.map((m) => JSON.parse(m.data.toString()).find((x) => x.topic === 'stats')).filter(Boolean);
  await until(() => mine().some((x) => x.stats.refused >= 1), 5000, 'a report counting the refused message');
  const me = mine().pop();
  ok(me.can_write === false, 'stats readers cannot write');
  eq(me.stats.refused, 1, 'the message it tried to write was refused and counted');
  ok(!other.inbox || !other.inbox.some((m) => m.data.toString() === 'not allowed'), 'and reached nobody');
  other.close();
  ws.close();
});

test('/metrics only on the metrics listener; /healthz on both', async () => {
  const pub = await getJson(`${r.base}/metrics`);
  eq(pub.status, 404, 'not on the public listener');
  const m = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  eq(m.status, 200, 'metrics listener');
  ok(/^text\/plain/.test(m.headers.get('content-type')), 'text/plain');
  ok(Object.keys(parseMetrics(await m.text())).length > 10, 'parses');
  eq((await getJson(`${r.base}/healthz`)).body, { status: 'ok' }, 'healthz public');
  eq((await getJson(`http://127.0.0.1:${metricsPort}/healthz`)).status, 200, 'healthz on metrics listener');
  eq((await getJson(`http://127.0.0.1:${metricsPort}/status`)).status, 404, 'nothing else there');
  const a = await access(r, 'm', r.token({ topic: 'm' }));
  const onMetrics = a.body.uri.replace(/^wss:\/\/127\.0\.0\.1:\d+/, `ws://127.0.0.1:${metricsPort}`);
  const e = await openWs(onMetrics).catch((x) => x);
  eq(e.status, 404, 'no websockets on the metrics listener');
});

test('without --metrics-listen, /metrics is on the main listener', async () => {
  const s = await startRelay();
  const res = await fetch(`${s.base}/metrics`);
  eq(res.status, 200, 'status');
  ok('relay_connections' in parseMetrics(await res.text()), 'parses');
  await s.stop();
});

test('stop', async () => {
  eq((await r.stop()).code, 0, 'exit status');
});

run();
