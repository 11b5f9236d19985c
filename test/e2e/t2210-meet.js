// t2210: rendezvous by shared secret at /meet/{sha256(secret)}: participants learn each other's
// TCP address (and the UDP one after a STUN Binding with USERNAME = their tag, when the relay
// runs its STUN server), a participant of another meeting learns nothing, "left" when one
// goes, 409 meeting-full for a 17th (at the access call and at redemption).
'use strict';
const crypto = require('crypto');
const dgram = require('dgram');
const { test, ok, eq, run, startRelay, openWs, openJsonWs, meetAccess, stunBinding, until, withTimeout } = require('./lib.js');

let r;
const idOf = (secret) => crypto.createHash('sha256').update(secret).digest('hex');

async function openMeet(uri) {
  const ws = await openJsonWs(uri, 'meet');
  ws.tcp = `127.0.0.1:${ws._socket.localPort}`;
  return ws;
}

async function meet(rel, id, over = {}) {
  const a = await meetAccess(rel, id, over);
  if (a.status !== 200) throw new Error(`meet access: ${a.status} ${JSON.stringify(a.body)}`);
  return openMeet(a.body.uri);
}

test('start relay', async () => {
  r = await startRelay({ args: ['--access-rate', '0'] });
  ok(r.port > 0, 'relay started');
});

test('access: uri, bad ids and tokens refused', async () => {
  const id = idOf('s0');
  const a = await meetAccess(r, id);
  eq(a.status, 200, 'access 200');
  ok(a.body.uri.endsWith(`/meet/${id}?code=${a.body.uri.split('code=')[1]}`) && a.body.uri.startsWith('wss://'), `uri ${a.body.uri}`);
  eq((await meetAccess(r, id.toUpperCase(), { topic: id.toUpperCase() })).status, 400, 'uppercase hex refused');
  eq((await meetAccess(r, id.slice(1), { topic: id.slice(1) })).status, 400, '63 digits refused');
  eq((await meetAccess(r, id, { prefix: 'signal' })).status, 403, 'signal token refused');
  eq((await meetAccess(r, id, { topic: idOf('other') })).status, 403, 'token for another meeting refused');
});

test('two meet, learn TCP addresses, a third meeting learns nothing, left on close', async () => {
  const id = idOf('secret-1');
  const a = await meet(r, id);
  ok(/^[0-9a-f]{32}$/.test(a.welcome.tag), `tag ${a.welcome.tag}`);
  eq(a.welcome.iceServers, [], 'iceServers [] (TURN off)');
  const b = await meet(r, id);
  ok(a.welcome.tag !== b.welcome.tag, 'tags differ');
  const pa = await b.take((m) => m.type === 'peer', 'b learns a');
  const pb = await a.take((m) => m.type === 'peer', 'a learns b');
  eq([pa.tcp, pa.udp], [a.tcp, null], 'b learns a\'s TCP address, no UDP yet');
  eq([pb.tcp, pb.udp], [b.tcp, null], 'a learns b\'s TCP address');
  ok(pa.peer !== pb.peer && !JSON.stringify([pa, pb]).includes(a.welcome.tag), 'opaque ids, tags not shown');
  const c = await meet(r, idOf('secret-2'));
  const d = await meet(r, idOf('secret-2'));
  const pd = await c.take((m) => m.type === 'peer', 'c learns d');
  eq(pd.tcp, d.tcp, 'c learns d only');
  b.close();
  const left = await a.take((m) => m.type === 'left', 'left');
  eq(left, { type: 'left', peer: pb.peer }, 'a told b left');
  d.close();
  await c.take((m) => m.type === 'left', 'c told d left');
  const cText = JSON.stringify(c.msgs.concat([pd]));
  ok(![a.tcp, b.tcp, pa.peer, pb.peer].some((x) => cText.includes(x)), 'c never heard of a or b');
  ok(!a.msgs.some((m) => m.type === 'peer'), 'a never heard of c or d');
  send(a, 'hello');
  eq((await a.take((m) => m.type === 'error', 'error')).code, 'bad-message', 'a meeting takes no messages');
  a.close();
  c.close();
  await Promise.all([a.closed, c.closed]);
});

function send(ws, m) {
  ws.send(m);
}

test('meeting-full for a 17th, at access and at redemption; room again after one leaves', async () => {
  const id = idOf('crowd');
  const ps = [];
  for (let i = 0; i < 15; i++) ps.push(await meet(r, id));
  const late = await meetAccess(r, id); // taken with 15 in: redeemed with 16
  eq(late.status, 200, 'code with 15 in');
  ps.push(await meet(r, id));
  const full = await meetAccess(r, id);
  eq([full.status, full.body.code], [409, 'meeting-full'], '17th access: 409 meeting-full');
  const e = await openWs(late.body.uri).then(() => null, (err) => err);
  ok(e && e.status === 409 && JSON.parse(e.body).code === 'meeting-full', `17th upgrade: 409 (${e && e.status})`);
  await until(() => ps[0].msgs.filter((m) => m.type === 'peer').length === 15, 5000, '15 peers each');
  ps[15].close();
  await ps[15].closed;
  await until(async () => (await meetAccess(r, id)).status === 200, 5000, 'room after one left');
  ps.forEach((p) => p.close());
  await Promise.all(ps.map((p) => p.closed));
});

test('UDP addresses learnt from STUN Binding requests with the tag', async () => {
  const rt = await startRelay({ args: ['--access-rate', '0', '--turn-listen', '127.0.0.1:0'] });
  const m = /turn listening on udp\+tcp \S*:(\d+)/.exec(rt.log);
  ok(m, `STUN port in the log`);
  const stunPort = Number(m[1]);
  const id = idOf('udp-secret');
  const a = await meet(rt, id);
  const b = await meet(rt, id);
  await a.take((x) => x.type === 'peer', 'a learns b');
  await b.take((x) => x.type === 'peer', 'b learns a');
  const ua = dgram.createSocket('udp4');
  const ub = dgram.createSocket('udp4');
  await Promise.all([new Promise((res) => ua.bind(0, '127.0.0.1', res)), new Promise((res) => ub.bind(0, '127.0.0.1', res))]);
  ok(await withTimeout(stunBinding(ua, stunPort, a.welcome.tag), 5000, 'binding a'), 'a: Binding success');
  const pa = await b.take((x) => x.type === 'peer' && x.udp, 'b learns a\'s UDP address');
  eq([pa.tcp, pa.udp], [a.tcp, `127.0.0.1:${ua.address().port}`], 'b learns a\'s TCP and UDP addresses');
  ok(await withTimeout(stunBinding(ub, stunPort, b.welcome.tag), 5000, 'binding b'), 'b: Binding success');
  const pb = await a.take((x) => x.type === 'peer' && x.udp, 'a learns b\'s UDP address');
  eq([pb.tcp, pb.udp], [b.tcp, `127.0.0.1:${ub.address().port}`], 'a learns b\'s TCP and UDP addresses');
  const uc = dgram.createSocket('udp4');
  await new Promise((res) => uc.bind(0, '127.0.0.1', res));
  await stunBinding(uc, stunPort, 'f'.repeat(32)); // an unknown tag: answered, tells nobody
  ok(!a.msgs.concat(b.msgs).some((x) => x.type === 'peer'), 'an unknown tag changes nothing');
  [ua, ub, uc].forEach((s) => s.close());
  a.close();
  b.close();
  await Promise.all([a.closed, b.closed]);
  await rt.stop();
});

run();
