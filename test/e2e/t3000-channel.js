// t3000: private channels (/connect/{host}, issue 14). node `ws` plays both the lab PC's agent
// (a control connection with scope host, then one websocket per channel it is told to open)
// and its clients (scope client). Pairing, byte-exact relay both ways (binary, text,
// fragmented, large), isolation of concurrent channels, close propagation with the same code,
// the refusals (409, 503, wrong tokens), the host's deadline (1013), deny, lossless flow
// control with bounded relay memory, and one run over wss.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const { test, ok, eq, run, startRelay, openWs, until, withTimeout } = require('./lib.js');

const HOST = 'lab1';
const BASE_ARGS = ['--access-rate', '0', '--channel-timeout', '2s'];

// POST /connect/@host; resolves { status, body }.
async function connectAccess(r, host, token, query = '') {
  const res = await fetch(`${r.base}/connect/${host}${query}`, { method: 'POST', headers: { Authorization: token } });
  const text = await res.text();
  let body = text;
  try { body = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: res.status, body };
}

const hostToken = (r, host = HOST, over = {}) =>
  r.token({ topic: host, prefix: 'connect', scopes: ['host'], booking_id: 'host-bk', sub: 'agent', ...over });
const clientToken = (r, host = HOST, over = {}) =>
  r.token({ topic: host, prefix: 'connect', scopes: ['client'], booking_id: 'client-bk', sub: 'alice', ...over });

// The agent's control connection: resolves the websocket; .connects collects connect messages.
async function startHost(r, host = HOST, over = {}) {
  const a = await connectAccess(r, host, hostToken(r, host, over));
  if (a.status !== 200) throw new Error(`host access: ${a.status} ${JSON.stringify(a.body)}`);
  const ctl = await openWs(a.body.uri);
  ctl.connects = () => ctl.inbox.filter((m) => !m.isBinary).map((m) => JSON.parse(m.data.toString()));
  return ctl;
}

async function openClient(r, host = HOST, over = {}) {
  const a = await connectAccess(r, host, clientToken(r, host, over));
  if (a.status !== 200) throw new Error(`client access: ${a.status} ${JSON.stringify(a.body)}`);
  return openWs(a.body.uri);
}

// A client and the host's end of its channel: the agent opens the uri it was sent.
async function pair(r, ctl, host = HOST, over = {}) {
  const seen = ctl.inbox.length;
  const client = await openClient(r, host, over);
  await until(() => ctl.inbox.length > seen, 5000, 'connect message');
  const msg = JSON.parse(ctl.inbox[seen].data.toString());
  const end = await openWs(msg.uri);
  return { client, end, msg };
}

// Every byte @ws receives, concatenated, and its messages with their type.
function collect(ws) {
  const c = { bytes: 0, chunks: [], msgs: [] };
  ws.on('message', (data, isBinary) => {
    const b = Buffer.from(data);
    c.bytes += b.length;
    c.chunks.push(b);
    c.msgs.push({ isBinary, len: b.length });
  });
  c.all = () => Buffer.concat(c.chunks);
  return c;
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

let r;

test('start relay', async () => {
  r = await startRelay({ tls: false, args: BASE_ARGS });
  ok(r.port > 0, 'relay started');
});

test('pairing: connect message, then binary and text relayed both ways, types and boundaries kept', async () => {
  const ctl = await startHost(r);
  const { client, end, msg } = await pair(r, ctl);
  eq(msg.type, 'connect', 'message type');
  ok(msg.uri.startsWith(`ws://127.0.0.1:${r.port}/connect/${HOST}?code=`), `uri ${msg.uri}`);
  eq(msg.client, 'client-bk', 'client named by its booking id');
  ok(typeof msg.channel === 'string' && msg.channel.length > 0, 'channel id');
  const atEnd = collect(end);
  const atClient = collect(client);
  client.send(Buffer.from([0, 1, 2, 255]));
  client.send('hello host');
  end.send(Buffer.from('from host'));
  end.send('text back');
  await until(() => atEnd.msgs.length === 2 && atClient.msgs.length === 2, 5000, 'four messages');
  eq(atEnd.chunks[0], Buffer.from([0, 1, 2, 255]), 'binary to host');
  eq([atEnd.msgs[0].isBinary, atEnd.msgs[1].isBinary], [true, false], 'types to host');
  eq(atEnd.chunks[1].toString(), 'hello host', 'text to host');
  eq(atClient.chunks[0].toString(), 'from host', 'binary to client');
  eq([atClient.msgs[0].isBinary, atClient.msgs[1].isBinary], [true, false], 'types to client');
  eq(atClient.chunks[1].toString(), 'text back', 'text to client');
  eq(ctl.inbox.length, 1, 'the control connection saw no data');
  client.close(4001, 'bye');
  const c = await withTimeout(end.closed, 3000, 'host end closed');
  eq(c.code, 4001, 'host end closed with the client\'s code');
  ctl.close();
});

test('large and fragmented messages, byte-exact both ways', async () => {
  const ctl = await startHost(r);
  const { client, end } = await pair(r, ctl);
  const atEnd = collect(end);
  const atClient = collect(client);
  const big = crypto.randomBytes(8 * 1024 * 1024 + 3); // past --max-message (4 MiB): not reassembled
  client.send(big);
  // one message in three fragments (RFC 6455 section 5.4)
  const parts = [crypto.randomBytes(1000), crypto.randomBytes(70000), crypto.randomBytes(5)];
  end.send(parts[0], { binary: true, fin: false });
  end.send(parts[1], { binary: true, fin: false });
  end.send(parts[2], { binary: true, fin: true });
  end.send('é'.repeat(10), { fin: false });
  end.send('ü'.repeat(10), { fin: true });
  await until(() => atEnd.bytes === big.length && atClient.msgs.length === 2, 15000, 'large message');
  eq(sha(atEnd.all()), sha(big), 'large message byte-exact');
  eq(atEnd.msgs.length, 1, 'one message');
  eq(sha(atClient.chunks[0]), sha(Buffer.concat(parts)), 'fragmented message whole');
  eq([atClient.msgs[1].isBinary, atClient.chunks[1].toString()], [false, 'é'.repeat(10) + 'ü'.repeat(10)], 'fragmented text whole');
  end.close(4002);
  eq((await withTimeout(client.closed, 3000, 'client closed')).code, 4002, 'client closed with the host end\'s code');
  ctl.close();
});

test('10 concurrent channels to one host stay isolated', async () => {
  const ctl = await startHost(r);
  const a = await fetch(`${r.base}/session/${HOST}`, { method: 'POST', headers: { Authorization: r.token({ topic: HOST }) } });
  const member = await openWs((await a.json()).uri); // a topic of the host's name sees nothing
  const chans = [];
  for (let i = 0; i < 10; i++) chans.push(await pair(r, ctl, HOST, { booking_id: `bk-${i}` }));
  const got = chans.map((c) => ({ end: collect(c.end), client: collect(c.client) }));
  const sent = chans.map((c, i) => {
    const up = crypto.randomBytes(100000 + i);
    const down = crypto.randomBytes(50000 + i);
    c.client.send(up);
    c.end.send(down);
    return { up, down };
  });
  await until(() => got.every((g, i) => g.end.bytes === sent[i].up.length && g.client.bytes === sent[i].down.length), 10000, 'all bytes');
  for (let i = 0; i < 10; i++) {
    eq(sha(got[i].end.all()), sha(sent[i].up), `channel ${i}: the host end got its own client's bytes`);
    eq(sha(got[i].client.all()), sha(sent[i].down), `channel ${i}: the client got its own host end's bytes`);
  }
  eq(new Set(chans.map((c) => c.msg.channel)).size, 10, 'ten channel ids');
  eq(member.inbox.length, 0, 'the session topic of the same name saw nothing');
  member.close();
  eq(chans.map((c) => c.msg.client), chans.map((_, i) => `bk-${i}`), 'each connect names its client');
  chans.forEach((c) => c.client.close());
  await Promise.all(chans.map((c) => withTimeout(c.end.closed, 3000, 'ends closed')));
  ctl.close();
});

test('refusals: 409 second host, 503 host offline, wrong tokens 403', async () => {
  const offline = await connectAccess(r, 'nobody', clientToken(r, 'nobody'));
  eq([offline.status, offline.body.code], [503, 'host-offline'], 'client while the host is offline');
  const ctl = await startHost(r);
  const second = await connectAccess(r, HOST, hostToken(r));
  eq([second.status, second.body.code], [409, 'host-connected'], 'second host at the access call');
  const other = await connectAccess(r, HOST, clientToken(r, 'lab2'));
  eq(other.status, 403, 'client token for another host');
  const session = await connectAccess(r, HOST, r.token({ topic: HOST, prefix: 'session', scopes: ['client'] }));
  eq(session.status, 403, 'session-prefix token');
  const asHost = await connectAccess(r, HOST, clientToken(r), '?role=host');
  eq(asHost.status, 403, 'client token on the host side');
  const asClient = await connectAccess(r, HOST, hostToken(r), '?role=client');
  eq(asClient.status, 403, 'host token as a client');
  const neither = await connectAccess(r, HOST, r.token({ topic: HOST, prefix: 'connect', scopes: ['read', 'write'] }));
  eq(neither.status, 403, 'token with neither scope');
  ctl.close();
  await withTimeout(ctl.closed, 3000, 'control closed');
});

test('second host refused at redemption while the first lives', async () => {
  const a1 = await connectAccess(r, 'lab3', hostToken(r, 'lab3'));
  const a2 = await connectAccess(r, 'lab3', hostToken(r, 'lab3'));
  eq([a1.status, a2.status], [200, 200], 'two codes while no host is connected');
  const ctl = await openWs(a1.body.uri);
  const e = await openWs(a2.body.uri).catch((x) => x);
  eq(e.status, 409, 'the second control connection is refused');
  ctl.close();
});

test('a host that does not answer: the client is closed with 1013', async () => {
  const ctl = await startHost(r);
  const t0 = Date.now();
  const client = await openClient(r);
  await until(() => ctl.inbox.length === 1, 3000, 'connect message');
  const c = await withTimeout(client.closed, 5000, 'client closed');
  eq(c.code, 1013, 'closed with 1013');
  ok(Date.now() - t0 >= 1900, `after the --channel-timeout (${Date.now() - t0} ms)`);
  const late = await openWs(JSON.parse(ctl.inbox[0].data.toString()).uri).catch((x) => x);
  eq(late.status, 410, 'the host end opened too late is refused');
  ctl.close();
});

test('a host that reconnects is asked again for the channels still waiting', async () => {
  const ctl = await startHost(r, 'lab-re');
  const client = await openClient(r, 'lab-re');
  await until(() => ctl.inbox.length === 1, 3000, 'first connect message');
  ctl.close(); // gone before answering
  await withTimeout(ctl.closed, 3000, 'control closed');
  const ctl2 = await startHost(r, 'lab-re');
  await until(() => ctl2.inbox.length === 1, 3000, 'connect message again');
  const msg = JSON.parse(ctl2.inbox[0].data.toString());
  const end = await openWs(msg.uri);
  const got = collect(end);
  client.send('still here');
  await until(() => got.msgs.length === 1, 3000, 'relayed');
  eq(got.chunks[0].toString(), 'still here', 'paired after the reconnection');
  client.close(4005);
  eq((await withTimeout(end.closed, 3000, 'end closed')).code, 4005, 'close passed on');
  ctl2.close();
});

test('the channel uri is one-time, and a client code cannot open the host end', async () => {
  const ctl = await startHost(r);
  const { client, end, msg } = await pair(r, ctl);
  const again = await openWs(msg.uri).catch((x) => x);
  eq(again.status, 401, 'the connect uri used twice');
  const a = await connectAccess(r, HOST, clientToken(r));
  const sess = await openWs(a.body.uri.replace('/connect/', '/session/')).catch((x) => x);
  eq(sess.status, 403, 'a connect code at /session/');
  client.close();
  await withTimeout(end.closed, 3000, 'end closed');
  ctl.close();
});

test('what a client sends before the host end opens waits for it', async () => {
  const ctl = await startHost(r);
  const seen = ctl.inbox.length;
  const client = await openClient(r);
  const early = crypto.randomBytes(300000);
  client.send(early);
  client.send('and text');
  await until(() => ctl.inbox.length > seen, 5000, 'connect message');
  const end = await openWs(JSON.parse(ctl.inbox[seen].data.toString()).uri);
  const got = collect(end);
  await until(() => got.msgs.length === 2, 5000, 'early messages');
  eq(sha(got.chunks[0]), sha(early), 'early binary message');
  eq(got.chunks[1].toString(), 'and text', 'early text message');
  client.close(1000);
  eq((await withTimeout(end.closed, 3000, 'end closed')).code, 1000, 'normal close passed on');
  ctl.close();
});

test('an end that vanishes without a close frame: the other gets 1001; a close without a code: 1000', async () => {
  const ctl = await startHost(r);
  const a = await pair(r, ctl);
  a.client._socket.destroy(); // no close frame
  eq((await withTimeout(a.end.closed, 3000, 'end closed')).code, 1001, 'vanished client: 1001 for the host end');
  const b = await pair(r, ctl);
  b.end.close(); // a close frame without a code (1005 at the relay)
  eq((await withTimeout(b.client.closed, 3000, 'client closed')).code, 1000, 'close without a code: 1000');
  ctl.close();
});

test('deny of the client\'s booking closes its channel, both ends, within a second', async () => {
  const ctl = await startHost(r);
  const victim = await pair(r, ctl, HOST, { booking_id: 'bk-deny' });
  const bystander = await pair(r, ctl, HOST, { booking_id: 'bk-stay' });
  const t0 = Date.now();
  const admin = r.token({ topic: 'admin', scopes: ['relay:admin'] });
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const d = await fetch(`${r.base}/bids/deny?bid=bk-deny&exp=${exp}`, { method: 'POST', headers: { Authorization: admin } });
  eq(d.status, 204, 'deny');
  const [c, e] = await withTimeout(Promise.all([victim.client.closed, victim.end.closed]), 1000, 'closed within 1 s');
  eq([c.code, c.reason], [1008, 'booking cancelled'], 'client closed');
  eq([e.code, e.reason], [1008, 'booking cancelled'], 'host end closed with the same code');
  ok(Date.now() - t0 < 1000, `within a second (${Date.now() - t0} ms)`);
  eq([bystander.client.readyState, bystander.end.readyState, ctl.readyState], [1, 1, 1], 'other channel and the control connection stay');
  const again = await connectAccess(r, HOST, clientToken(r, HOST, { booking_id: 'bk-deny' }));
  eq(again.status, 403, 'denied booking refused at access');
  bystander.client.close();
  ctl.close();
});

test('the client\'s token expiring closes its channel, both ends', async () => {
  const rc = await startRelay({ tls: false, args: BASE_ARGS, testClock: true });
  const ctl = await startHost(rc);
  const exp = Math.floor(Date.now() / 1000) + 60;
  const { client, end } = await pair(rc, ctl, HOST, { exp });
  rc.advance(120000); // the relay's clock past the client's exp, not the host's (600 s)
  const [c, e] = await withTimeout(Promise.all([client.closed, end.closed]), 3000, 'closed');
  eq([c.code, c.reason], [1008, 'token expired'], 'client closed');
  eq([e.code, e.reason], [1008, 'token expired'], 'host end closed with the same code');
  eq(ctl.readyState, 1, 'the control connection stays');
  ctl.close();
  await rc.stop();
});

test('/status lists channels per host with bytes each way; /metrics counts them', async () => {
  const ctl = await startHost(r, 'lab-s');
  const { client, end } = await pair(r, ctl, 'lab-s');
  const got = collect(end);
  const back = collect(client);
  client.send(Buffer.alloc(1000));
  end.send(Buffer.alloc(300));
  await until(() => got.bytes === 1000 && back.bytes === 300, 5000, 'bytes through');
  const stats = r.token({ topic: 'stats', scopes: ['relay:stats'] });
  const st = await (await fetch(`${r.base}/status`, { headers: { Authorization: stats } })).json();
  const mine = st.filter((e) => e.topic === 'lab-s');
  const role = (x) => mine.find((e) => e.role === x);
  ok(role('host') && role('client') && role('channel-host'), `control, client and host end listed: ${JSON.stringify(mine)}`);
  eq([role('client').stats.rx.bytes, role('client').stats.tx.bytes], [1000, 300], 'client: bytes each way');
  eq([role('channel-host').stats.rx.bytes, role('channel-host').stats.tx.bytes], [300, 1000], 'host end: bytes each way');
  eq(role('client').channel, role('channel-host').channel, 'same channel');
  eq(role('host').channels, 1, 'the host has one channel');
  const m = await (await fetch(`${r.base}/metrics`)).text();
  ok(/^relay_channels 1$/m.test(m), 'relay_channels gauge');
  ok(/^relay_channel_hosts [1-9]/m.test(m), 'hosts gauge');
  ok(/^relay_channels_total\{state="paired"\} [1-9]/m.test(m), 'paired counter');
  ok(/^relay_channel_bytes_total\{to="host"\} [1-9]/m.test(m), 'bytes counter');
  client.close();
  await withTimeout(end.closed, 3000, 'end closed');
  ctl.close();
});

// Resident memory of @pid in bytes.
function rss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

test('lossless flow: a paused reader makes 64 MiB wait, not drop; relay memory stays bounded', async () => {
  const ctl = await startHost(r);
  const { client, end } = await pair(r, ctl);
  const got = collect(end);
  end._socket.pause(); // the host end reads nothing until resumed
  const before = rss(r.proc.pid);
  const hash = crypto.createHash('sha256');
  const total = 64 * 1024 * 1024;
  const block = crypto.randomBytes(1024 * 1024);
  for (let i = 0; i < total / block.length; i++) {
    const b = Buffer.from(block);
    b.writeUInt32BE(i, 0);
    hash.update(b);
    client.send(b);
  }
  const paused = await r.waitLog(/pausing reading/, 5000).then(() => true, () => false);
  ok(paused, 'the relay stopped reading from the writer');
  let peak = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < 1500) { // the writer keeps pushing; the relay must not take it in
    peak = Math.max(peak, rss(r.proc.pid));
    await new Promise((res) => setTimeout(res, 100));
  }
  console.log(`  # paused: relay RSS +${((peak - before) / 1048576).toFixed(1)} MiB, writer holds ${client.bufferedAmount} bytes`);
  ok(client.bufferedAmount > 32 * 1024 * 1024, `the writer holds what the relay did not read (${client.bufferedAmount} bytes)`);
  ok(peak - before < 24 * 1024 * 1024, `relay RSS grew ${((peak - before) / 1048576).toFixed(1)} MiB while paused`);
  end._socket.resume();
  await until(() => got.bytes >= total, 20000, 'all bytes');
  eq(got.bytes, total, 'every byte arrived');
  eq(sha(got.all()), hash.digest('hex'), 'byte-exact, in order');
  eq(got.msgs.length, total / block.length, 'message boundaries kept');
  client.close();
  await withTimeout(end.closed, 3000, 'end closed');
  ctl.close();
});

test('lossless flow the other way: a paused client holds back the host end', async () => {
  const ctl = await startHost(r);
  const { client, end } = await pair(r, ctl);
  const got = collect(client);
  client._socket.pause();
  const hash = crypto.createHash('sha256');
  const total = 32 * 1024 * 1024; // kernel buffers on the way take several MiB of it
  for (let i = 0; i < total / 65536; i++) {
    const b = crypto.randomBytes(65536);
    hash.update(b);
    end.send(b);
  }
  // wait until the host end stops draining: without flow control it would drain to 0
  let last = -1;
  let same = 0;
  await until(() => { same = end.bufferedAmount === last ? same + 1 : 0; last = end.bufferedAmount; return same >= 5; }, 8000, 'steady').catch(() => {});
  ok(end.bufferedAmount > 16 * 1024 * 1024, `the host end holds what the relay did not read (${end.bufferedAmount} bytes)`);
  client._socket.resume();
  await until(() => got.bytes >= total, 20000, 'all bytes');
  eq(sha(got.all()), hash.digest('hex'), 'byte-exact, in order');
  end.close(4004);
  eq((await withTimeout(client.closed, 3000, 'client closed')).code, 4004, 'close passed on');
  ctl.close();
});

test('the memory budget pauses channels too: queues stay within --max-memory, nothing lost', async () => {
  const rm = await startRelay({ tls: false, args: [...BASE_ARGS, '--max-memory', '2MiB', '--max-message', '1MiB', '--channel-queue', '64MiB'] });
  const ctl = await startHost(rm);
  const { client, end } = await pair(rm, ctl);
  const got = collect(end);
  end._socket.pause();
  const block = crypto.randomBytes(256 * 1024);
  const total = 32 * 1024 * 1024;
  for (let i = 0; i < total / block.length; i++) client.send(block);
  const queued = async () => Number(/^relay_channel_queued_bytes (\d+)$/m.exec(await (await fetch(`${rm.base}/metrics`)).text())[1]);
  await rm.waitLog(/pausing reading/, 5000);
  let most = 0;
  for (let i = 0; i < 10; i++) {
    most = Math.max(most, await queued());
    await new Promise((res) => setTimeout(res, 50));
  }
  console.log(`  # budget 2 MiB, channel queue 64 MiB: at most ${most} bytes queued while paused`);
  ok(most > 0 && most <= 3 * 1024 * 1024, `queued within the budget and one read (${most} bytes)`);
  end._socket.resume();
  await until(() => got.bytes >= total, 20000, 'all bytes');
  eq(got.bytes, total, 'every byte arrived');
  client.close();
  await withTimeout(end.closed, 3000, 'end closed');
  eq(await queued(), 0, 'nothing queued once closed');
  ctl.close();
  await rm.stop();
});

const metric = async (rr, name) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await fetch(`${rr.base}/metrics`)).text())[1]);

test('hostile: the host end vanishes mid-transfer while the client is paused', async () => {
  const ctl = await startHost(r, 'lab-v');
  const { client, end } = await pair(r, ctl, 'lab-v');
  const got = collect(client);
  client._socket.pause();
  const sent = [];
  for (let i = 0; i < 512; i++) { // 32 MiB: past the queue, the kernel buffers and the pause
    const b = crypto.randomBytes(65536);
    sent.push(b);
    end.send(b);
  }
  let last = -1;
  let same = 0;
  await until(() => { same = end.bufferedAmount === last ? same + 1 : 0; last = end.bufferedAmount; return same >= 5; }, 8000, 'steady').catch(() => {});
  ok(end.bufferedAmount > 0, `the relay stopped reading the host end (${end.bufferedAmount} bytes held)`);
  end._socket.destroy(); // no close frame, with the relay holding a queue for the client
  await new Promise((res) => setTimeout(res, 300));
  client._socket.resume();
  const c = await withTimeout(client.closed, 15000, 'client closed');
  eq(c.code, 1001, 'the client is closed with 1001 once it has what was queued');
  const all = Buffer.concat(sent);
  ok(got.bytes > 0 && got.bytes <= all.length, `${got.bytes} bytes arrived`);
  eq(sha(got.all()), sha(all.subarray(0, got.bytes)), 'what arrived is the start of what was sent, in order');
  await until(async () => (await metric(r, 'relay_channels')) === 0, 3000, 'channel freed');
  eq(await metric(r, 'relay_channel_queued_bytes'), 0, 'nothing left queued');
  ctl.close();
});

test('hostile: the client closes while the host end is paused behind it', async () => {
  const ctl = await startHost(r, 'lab-w');
  const { client, end } = await pair(r, ctl, 'lab-w');
  end._socket.pause();
  for (let i = 0; i < 128; i++) client.send(crypto.randomBytes(65536));
  await r.waitLog(/pausing reading/, 5000).catch(() => {});
  client.close(4010, 'done');
  await new Promise((res) => setTimeout(res, 200));
  end._socket.resume();
  const c = await withTimeout(end.closed, 15000, 'host end closed');
  eq(c.code, 4010, 'the host end gets the client\'s code after its queue');
  await until(async () => (await metric(r, 'relay_channels')) === 0, 3000, 'channel freed');
  ctl.close();
});

test('hostile: 300 clients for a host that reads but never answers', async () => {
  const ctl = await startHost(r, 'lab-x');
  const t0 = Date.now();
  const clients = [];
  for (let i = 0; i < 300; i += 20) // in steps: --max-pending-per-address counts unanswered requests
    clients.push(...await Promise.all(Array.from({ length: 20 }, () => openClient(r, 'lab-x'))));
  const codes = await withTimeout(Promise.all(clients.map((c) => c.closed)), 20000, 'every client closed');
  ok(codes.every((c) => c.code === 1013), `every client got 1013 (${[...new Set(codes.map((c) => c.code))]})`);
  ok(Date.now() - t0 >= 1900, 'not before --channel-timeout');
  await until(async () => (await metric(r, 'relay_channels')) === 0, 3000, 'no channel left');
  eq(ctl.readyState, 1, 'the control connection stays open');
  // the relay still pairs a new client of the same host: nothing is exhausted
  const { client, end, msg } = await pair(r, ctl, 'lab-x');
  ok(msg.uri.includes('/connect/lab-x?code='), 'a fresh connect message');
  const got = collect(end);
  client.send('still here');
  await until(() => got.bytes === 10, 3000, 'relayed');
  client.close();
  await withTimeout(end.closed, 3000, 'end closed');
  ctl.close();
});

// A client's channel websocket inside HTTP/2 (RFC 8441), frames written by hand; .closeCode
// is the code of the relay's close frame once it came.
async function h2Client(rr, host) {
  const a = await connectAccess(rr, host, clientToken(rr, host));
  const u = new URL(a.body.uri);
  const session = require('http2').connect(rr.base.replace('ws', 'http'), { rejectUnauthorized: false });
  session.on('error', () => {});
  const req = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': u.pathname + u.search,
    ':scheme': 'https', ':authority': u.host, 'sec-websocket-version': '13' }, { endStream: false });
  const c = { session, req, status: 0, closeCode: 0, bytes: Buffer.alloc(0) };
  req.on('response', (h) => { c.status = h[':status']; });
  req.on('error', () => {});
  req.on('data', (d) => {
    c.bytes = Buffer.concat([c.bytes, d]);
    const i = c.bytes.indexOf(0x88); // a close frame (small: its length fits in one byte)
    if (i >= 0 && c.bytes.length >= i + 4) c.closeCode = c.bytes.readUInt16BE(i + 2);
  });
  await until(() => c.status, 5000, 'h2 websocket');
  // a masked binary frame of 64 KiB with the all-zero key (RFC 6455 5.3: any key will do)
  const head = Buffer.from([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  c.frame = Buffer.concat([head, crypto.randomBytes(65536)]);
  return c;
}

test('inside HTTP/2, where pausing does not hold a sender back, a channel stays within --max-memory', async () => {
  // Before: only 4 queues (here 256 MiB) closed such a channel, whatever the memory budget.
  const rm = await startRelay({ tls: true, args: [...BASE_ARGS, '--max-memory', '2MiB', '--max-message', '1MiB', '--channel-queue', '64MiB'] });
  try {
    const ctl = await startHost(rm);
    const client = await h2Client(rm, HOST);
    eq(client.status, 200, 'RFC 8441 websocket accepted');
    await until(() => ctl.inbox.length === 1, 5000, 'connect message');
    const end = await openWs(JSON.parse(ctl.inbox[0].data.toString()).uri);
    end._socket.pause(); // the host end reads nothing
    for (let i = 0; i < 512; i++) client.req.write(client.frame); // 32 MiB
    const queued = async () => Number(/^relay_channel_queued_bytes (\d+)$/m.exec(await (await fetch(`${rm.base}/metrics`)).text())[1]);
    let most = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < 4000 && !client.closeCode) {
      most = Math.max(most, await queued());
      await new Promise((res) => setTimeout(res, 50));
    }
    console.log(`  # budget 2 MiB: at most ${most} bytes queued for the paused end; close ${client.closeCode}`);
    eq(client.closeCode, 1013, 'the HTTP/2 sender is closed with 1013 once the budget is reached');
    ok(most <= 4 * 1024 * 1024, `queued stays near the budget (${most} bytes)`);
    end._socket.resume();
    await withTimeout(end.closed, 15000, 'the host end is closed after what was queued');
    await until(async () => (await queued()) === 0, 3000, 'nothing left queued');
    client.session.destroy();
    ctl.close();
  } finally {
    await rm.stop();
  }
});

test('secrets: no code and no token in the relay\'s log (at debug level)', async () => {
  const ctl = await startHost(r, 'lab-log');
  const token = clientToken(r, 'lab-log');
  const a = await connectAccess(r, 'lab-log', token);
  const client = await openWs(a.body.uri);
  await until(() => ctl.inbox.length === 1, 3000, 'connect message');
  const uri = JSON.parse(ctl.inbox[0].data.toString()).uri;
  const end = await openWs(uri);
  client.close();
  await withTimeout(end.closed, 3000, 'end closed');
  ctl.close();
  await new Promise((res) => setTimeout(res, 200));
  const codes = [a.body.uri, uri].map((u) => new URL(u).searchParams.get('code'));
  ok(codes.every((c) => c && c.length >= 16), 'two codes');
  const leaked = codes.filter((c) => r.log.includes(c));
  eq(leaked.length, 0, `no code in the log (${leaked.length} found)`);
  ok(!r.log.includes(token.split('.')[2]), 'no token signature in the log');
});

test('over wss: pairing and 4 MiB each way byte-exact', async () => {
  const rt = await startRelay({ args: BASE_ARGS });
  const ctl = await startHost(rt);
  const { client, end, msg } = await pair(rt, ctl);
  ok(msg.uri.startsWith('wss://'), `wss uri ${msg.uri}`);
  const up = crypto.randomBytes(4 * 1024 * 1024);
  const down = crypto.randomBytes(4 * 1024 * 1024);
  const got = collect(end);
  const back = collect(client);
  client.send(up);
  end.send(down);
  await until(() => got.bytes === up.length && back.bytes === down.length, 15000, 'both ways');
  eq(sha(got.all()), sha(up), 'to the host');
  eq(sha(back.all()), sha(down), 'to the client');
  end.close(4003);
  eq((await withTimeout(client.closed, 3000, 'client closed')).code, 4003, 'close code passed on');
  ctl.close();
  await rt.stop();
});

run({ perTestMs: 30000 });
