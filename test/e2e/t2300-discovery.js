// t2300: discovery, Disco's group API in relay serve (issue 13). Disco's create/list/get/patch/
// delete flow with its exact JSON; tokens (prefix discovery, topic = app id, read/write scopes);
// app isolation; creator-only changes and the admin override; TTL expiry; persistence across a
// restart with the same state directory; malformed JSON, 413, wrong AppID, Location, 409.
// Not here yet: the {"type":"group-expired"} message to signaling peers, which needs the
// signaling branch (relay_signal_group_expired); the expiry test checks that the group is gone.
'use strict';
const { test, ok, eq, run, startRelay, until } = require('./lib.js');

let r;

const APP = 'BabbleChat';
// Disco's README example, as a Babble client posts it.
const NEW_GROUP = {
  Name: 'office group',
  AppID: APP,
  Peers: [{ NetAddr: 'thenetaddr', PubKeyHex: 'thepubkey', Moniker: 'Monica' }],
  GenesisPeers: [{ NetAddr: 'thenetaddr', PubKeyHex: 'thepubkey', Moniker: 'Monica' }],
};

function tok(over = {}) {
  return r.token({ prefix: 'discovery', topic: APP, sub: 'alice', scopes: ['read', 'write'], ...over });
}

// A request; resolves { status, body (parsed JSON or text), text, headers }.
async function call(method, path, token, body) {
  const headers = {};
  if (token) headers.Authorization = token;
  let data;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    data = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  }
  const res = await fetch(`${r.base}${path}`, { method, headers, body: data });
  const text = await res.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch (_) { /* not JSON */ }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

async function create(group = NEW_GROUP, token = tok()) {
  const c = await call('POST', '/group', token, group);
  eq(c.status, 201, `create: ${c.text}`);
  return c.body;
}

test('start relay', async () => {
  r = await startRelay({ args: ['--discovery-max-per-app', '5', '--access-rate', '0'] });
  ok(r.port > 0, 'relay started');
});

test('Disco flow: create, list, get, patch, delete with Disco\'s JSON', async () => {
  const before = Math.floor(Date.now() / 1000);
  const c = await call('POST', '/group', tok(), NEW_GROUP);
  eq(c.status, 201, 'POST /group is 201');
  eq(typeof c.body, 'string', 'the body is the ID as a JSON string');
  const id = c.body;
  ok(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id), `UUIDv4 ${id}`);
  eq(c.text, JSON.stringify(id), 'exactly a JSON string');
  eq(c.headers.get('location'), `/groups/${id}`, 'Location header');

  const g = await call('GET', `/groups/${id}`, tok({ scopes: ['read'] }));
  eq(g.status, 200, 'GET /groups/{id}');
  eq(Object.keys(g.body).join(','), 'ID,Name,AppID,PubKey,LastUpdated,TTL,Peers,GenesisPeers',
    'Disco\'s fields in its order');
  eq(g.body.ID, id, 'ID');
  eq(g.body.Name, 'office group', 'Name');
  eq(g.body.AppID, APP, 'AppID');
  eq(g.body.PubKey, '', 'PubKey defaults to ""');
  eq(g.body.TTL, 300, 'TTL defaults to --discovery-ttl 5m');
  ok(g.body.LastUpdated >= before && g.body.LastUpdated <= before + 5, `LastUpdated ${g.body.LastUpdated}`);
  eq(JSON.stringify(g.body.Peers), JSON.stringify(NEW_GROUP.Peers), 'Peers');
  eq(JSON.stringify(g.body.GenesisPeers), JSON.stringify(NEW_GROUP.GenesisPeers), 'GenesisPeers');

  const l = await call('GET', `/groups?app-id=${APP}`, tok({ scopes: ['read'] }));
  eq(l.status, 200, 'GET /groups');
  eq(JSON.stringify(l.body), JSON.stringify({ [id]: g.body }), 'an object mapping ID to group');

  const peers = [{ NetAddr: 'a:1', PubKeyHex: '0xAB', Moniker: 'Bob' }];
  const p = await call('PATCH', `/groups/${id}`, tok(), { ID: 'ignored', Peers: peers, TTL: 60 });
  eq(p.status, 200, `PATCH: ${p.text}`);
  eq(p.body.ID, id, 'the path\'s id wins');
  eq(JSON.stringify(p.body.Peers), JSON.stringify(peers), 'Peers replaced');
  eq(p.body.Name, 'office group', 'fields not given are kept');
  eq(JSON.stringify(p.body.GenesisPeers), JSON.stringify(NEW_GROUP.GenesisPeers), 'GenesisPeers kept');
  eq(p.body.TTL, 60, 'TTL changed');
  const g2 = await call('GET', `/groups/${id}`, tok());
  eq(JSON.stringify(g2.body), JSON.stringify(p.body), 'GET shows the patch');

  const d = await call('DELETE', `/groups/${id}`, tok());
  eq(d.status, 204, 'DELETE is 204');
  eq((await call('GET', `/groups/${id}`, tok())).status, 404, 'gone');
  eq((await call('DELETE', `/groups/${id}`, tok())).status, 404, 'second DELETE 404');
  const empty = await call('GET', '/groups', tok());
  eq(empty.status, 200, 'list');
  eq(empty.text, '{}', '{} when none');
});

test('client-chosen ID, duplicate 409, PATCH refreshes LastUpdated', async () => {
  const id = await create({ ...NEW_GROUP, ID: 'team-1', TTL: 7200 });
  eq(id, 'team-1', 'the given ID is kept');
  const dup = await call('POST', '/group', tok(), { ...NEW_GROUP, ID: 'team-1' });
  eq(dup.status, 409, 'duplicate ID');
  eq(dup.body.code, 'conflict', 'JSON error');
  const g = await call('GET', '/groups/team-1', tok());
  eq(g.body.TTL, 3600, 'TTL capped at --discovery-max-ttl 1h');
  const t0 = g.body.LastUpdated;
  await until(() => Math.floor(Date.now() / 1000) > t0, 3000, 'a second passes');
  const p = await call('PATCH', '/groups/team-1', tok(), {});
  eq(p.status, 200, 'empty patch');
  ok(p.body.LastUpdated > t0, `LastUpdated ${t0} -> ${p.body.LastUpdated}`);
  eq((await call('DELETE', '/groups/team-1', tok())).status, 204, 'cleanup');
});

test('tokens: 401 without, 403 wrong prefix, 403 missing scope, admin scope', async () => {
  const id = await create();
  eq((await call('GET', '/groups')).status, 401, 'no token');
  eq((await call('GET', '/groups', 'nonsense')).status, 401, 'bad token');
  eq((await call('GET', '/groups', tok({ prefix: 'session' }))).status, 403, 'prefix session');
  eq((await call('GET', '/groups', tok({ scopes: ['write'] }))).status, 403, 'GET needs read');
  eq((await call('POST', '/group', tok({ scopes: ['read'] }), NEW_GROUP)).status, 403, 'POST needs write');
  eq((await call('PATCH', `/groups/${id}`, tok({ scopes: ['read'] }), {})).status, 403, 'PATCH needs write');
  eq((await call('DELETE', `/groups/${id}`, tok({ scopes: ['read'] }))).status, 403, 'DELETE needs write');
  eq((await call('GET', `/groups?app-id=Other`, tok())).status, 403, 'app-id must match the token');
  eq((await call('GET', `/groups?app-id=${APP}`, tok())).status, 200, 'matching app-id');
  eq((await call('GET', '/groups?app-id=', tok())).status, 200, 'an empty app-id (Disco\'s example): the token\'s app');
  eq((await call('PUT', `/groups/${id}`, tok(), {})).status, 405, 'PUT');
  eq((await call('GET', '/group', tok())).status, 405, 'GET /group');
  eq((await call('GET', '/groups/bad%20id', tok())).status, 404, 'an id that cannot be');
  eq((await call('DELETE', `/groups/${id}`, tok())).status, 204, 'cleanup');
});

test('a denied booking\'s discovery token is refused, as at every access call', async () => {
  const bk = (b) => tok({ booking_id: b });
  const id = await create(NEW_GROUP, bk('bk-disco'));
  const admin = r.token({ topic: 'admin', scopes: ['relay:admin'] });
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const d = await fetch(`${r.base}/bids/deny?bid=bk-disco&exp=${exp}`, { method: 'POST', headers: { Authorization: admin } });
  eq(d.status, 204, 'deny');
  eq((await call('GET', '/groups', bk('bk-disco'))).status, 403, 'GET refused');
  eq((await call('PATCH', `/groups/${id}`, bk('bk-disco'), { Name: 'x' })).status, 403, 'PATCH refused');
  eq((await call('POST', '/group', bk('bk-disco'), NEW_GROUP)).status, 403, 'POST refused');
  eq((await call('GET', '/groups', bk('bk-other'))).status, 200, 'another booking still served');
  eq((await call('DELETE', `/groups/${id}`, bk('bk-other'))).status, 204, 'cleanup by the same sub');
});

test('creator-only changes; relay:admin may change any group of its app', async () => {
  const id = await create(NEW_GROUP, tok({ sub: 'alice' }));
  const bob = tok({ sub: 'bob' });
  eq((await call('GET', `/groups/${id}`, bob)).status, 200, 'others may read');
  const p = await call('PATCH', `/groups/${id}`, bob, { Name: 'hijacked' });
  eq(p.status, 403, 'another sub may not patch');
  eq((await call('DELETE', `/groups/${id}`, bob)).status, 403, 'nor delete');
  eq((await call('GET', `/groups/${id}`, bob)).body.Name, 'office group', 'unchanged');
  eq((await call('PATCH', `/groups/${id}`, tok({ sub: undefined }), { Name: 'x' })).status, 403,
    'a token without sub is nobody\'s creator');
  const admin = tok({ sub: 'ops', scopes: ['relay:admin'] });
  const a = await call('PATCH', `/groups/${id}`, admin, { Name: 'renamed' });
  eq(a.status, 200, 'admin patches');
  eq(a.body.Name, 'renamed', 'admin\'s change');
  const other = r.token({ prefix: 'discovery', topic: 'OtherApp', sub: 'ops', scopes: ['relay:admin'] });
  eq((await call('DELETE', `/groups/${id}`, other)).status, 404, 'another app\'s admin does not see it');
  eq((await call('PATCH', `/groups/${id}`, tok({ sub: 'alice' }), { Name: 'mine' })).status, 200,
    'the creator still may (the admin did not take it over)');
  eq((await call('DELETE', `/groups/${id}`, admin)).status, 204, 'admin deletes');
  // An app's moderator needs no relay-wide power: discovery:admin, which opens nothing else.
  const id2 = await create(NEW_GROUP, tok({ sub: 'alice' }));
  const mod = tok({ sub: 'mod', scopes: ['discovery:admin'] });
  const m = await call('PATCH', `/groups/${id2}`, mod, { Name: 'moderated' });
  eq(m.status, 200, `discovery:admin patches another's group: ${m.text}`);
  eq((await call('GET', '/groups', mod)).status, 200, 'and reads');
  const deny = await fetch(`${r.base}/bids/deny?bid=x&exp=${Math.floor(Date.now() / 1000) + 60}`, { method: 'POST', headers: { Authorization: mod } });
  eq(deny.status, 401, 'but cannot touch the relay\'s deny list');
  eq((await call('DELETE', `/groups/${id2}`, mod)).status, 204, 'moderator deletes');
});

test('app isolation: another app neither sees nor changes, and may reuse an ID', async () => {
  await create({ ...NEW_GROUP, ID: 'shared-id' });
  const other = (over = {}) => r.token({ prefix: 'discovery', topic: 'OtherApp', sub: 'alice',
    scopes: ['read', 'write'], ...over });
  const l = await call('GET', '/groups', other());
  eq(l.text, '{}', 'another app lists nothing');
  eq((await call('GET', '/groups/shared-id', other())).status, 404, 'GET another app\'s group: 404');
  eq((await call('PATCH', '/groups/shared-id', other(), { Name: 'x' })).status, 404, 'PATCH: 404');
  eq((await call('DELETE', '/groups/shared-id', other())).status, 404, 'DELETE: 404');
  const mine = await call('POST', '/group', other(), { ...NEW_GROUP, ID: 'shared-id', AppID: 'OtherApp' });
  eq(mine.status, 201, 'the same ID in another app is another group (no existence leak)');
  eq((await call('GET', '/groups/shared-id', tok())).body.Name, 'office group', 'first app\'s group intact');
  const wrong = await call('POST', '/group', tok(), { ...NEW_GROUP, AppID: 'OtherApp' });
  eq(wrong.status, 403, 'a body AppID that is not the token\'s');
  const wrongPatch = await call('PATCH', '/groups/shared-id', tok(), { AppID: 'OtherApp' });
  eq(wrongPatch.status, 403, 'PATCH to another AppID');
  const noApp = await call('POST', '/group', tok(), { Name: 'n' });
  eq(noApp.status, 201, 'AppID may be left out: the token\'s');
  eq((await call('GET', `/groups/${noApp.body}`, tok())).body.AppID, APP, 'filled in');
  for (const id of ['shared-id', noApp.body]) await call('DELETE', `/groups/${id}`, tok());
  await call('DELETE', '/groups/shared-id', other());
});

test('bad bodies: malformed JSON 400, wrong shapes 400, over 64 KiB 413', async () => {
  for (const [body, what] of [['{"Name":', 'truncated'], ['[1,2]', 'an array'], ['', 'empty'],
    ['{"Name":"a"} x', 'trailing bytes'], ['{"Name":"a","Name":"b"}', 'duplicate key'],
    ['{"TTL":"5"}', 'TTL a string'], ['{"TTL":-1}', 'TTL negative'], ['{"Peers":{}}', 'Peers an object'],
    ['{"Peers":[{"NetAddr":5}]}', 'a peer field a number'], ['{"ID":"a/b"}', 'an ID with a slash'],
    [JSON.stringify({ Name: 'x'.repeat(2000) }), 'Name too long']]) {
    const c = await call('POST', '/group', tok(), body);
    eq(c.status, 400, `${what}: ${c.text}`);
    eq(c.body.code, 'bad_request', `${what}: JSON error`);
  }
  // At the limit exactly: 65536 bytes are read whole (an unknown field pads it and is dropped).
  const base = JSON.stringify({ ...NEW_GROUP, Pad: '' });
  const edge = JSON.stringify({ ...NEW_GROUP, Pad: 'x'.repeat(64 * 1024 - base.length) });
  eq(edge.length, 65536, 'a body of 64 KiB exactly');
  const e = await call('POST', '/group', tok(), edge);
  eq(e.status, 201, `64 KiB exactly is read: ${e.text.slice(0, 80)}`);
  eq((await call('GET', `/groups/${e.body}`, tok())).body.Pad, undefined, 'the padding is not kept');
  eq((await call('DELETE', `/groups/${e.body}`, tok())).status, 204, 'cleanup');
  eq((await call('POST', '/group', tok(), edge + ' ')).status, 413, 'one byte more: 413');
  const big = JSON.stringify({ ...NEW_GROUP, Pad: 'x'.repeat(64 * 1024) });
  eq((await call('POST', '/group', tok(), big)).status, 413, 'over 64 KiB');
  const id = await create();
  eq((await call('PATCH', `/groups/${id}`, tok(), big)).status, 413, 'PATCH over 64 KiB');
  eq((await call('PATCH', `/groups/${id}`, tok(), '{oops')).status, 400, 'PATCH malformed');
  // A body near the limit that is valid: 200 peers.
  const peers = Array.from({ length: 200 }, (_, i) => ({ NetAddr: `10.0.0.${i}:1337`, PubKeyHex: 'ab'.repeat(64), Moniker: `m${i}` }));
  const p = await call('PATCH', `/groups/${id}`, tok(), { Peers: peers });
  eq(p.status, 200, `a large valid body (${JSON.stringify({ Peers: peers }).length} bytes)`);
  eq(p.body.Peers.length, 200, 'all peers kept');
  eq((await call('DELETE', `/groups/${id}`, tok())).status, 204, 'cleanup');
  // The relay still answers everyone.
  eq((await call('GET', '/groups', tok())).status, 200, 'still serving');
});

// The head of a request announcing a 64 KiB body, and no body: the answer, or null after @ms.
function headOnly(path, token, ms) {
  const net = require('net');
  return new Promise((resolve) => {
    const sock = r.base.startsWith('https')
      ? require('tls').connect({ port: r.port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : net.connect(r.port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => { sock.destroy(); resolve(null); }, ms);
    sock.on('data', (d) => { data += d; if (/\r\n\r\n/.test(data)) { clearTimeout(timer); sock.destroy(); resolve(data); } });
    sock.on('error', () => {});
    sock.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `${token ? `Authorization: ${token}\r\n` : ''}Content-Length: 65536\r\n\r\n`);
  });
}

test('a caller the body is not for is refused at the head, before its body is held', async () => {
  // Before: the relay kept up to 64 KiB per connection until the body came or --http-timeout
  // (10 s) passed, whoever sent it; now the token is checked first.
  const none = await headOnly('/group', null, 3000);
  ok(none && /^HTTP\/1\.1 401/.test(none), `no token: 401 without waiting for the body (${none && none.split('\r\n')[0]})`);
  const reader = await headOnly('/group', tok({ scopes: ['read'] }), 3000);
  ok(reader && /^HTTP\/1\.1 403/.test(reader), 'read scope on POST: 403 at once');
  const other = await headOnly('/group', tok({ prefix: 'session' }), 3000);
  ok(other && /^HTTP\/1\.1 403/.test(other), 'a session token: 403 at once');
  const method = await headOnly('/groups/x', tok(), 3000);
  ok(method && /^HTTP\/1\.1 405/.test(method), 'POST /groups/{id}: 405 at once');
  eq(await headOnly('/group', tok(), 1000), null, 'a writer\'s body is still waited for');
});

test('bounded: --discovery-max-per-app gives 429', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await create());
  const c = await call('POST', '/group', tok(), NEW_GROUP);
  eq(c.status, 429, `the sixth: ${c.text}`);
  ok(/discovery-max-per-app/.test(c.body.message), 'names the setting');
  const other = r.token({ prefix: 'discovery', topic: 'Third', sub: 's', scopes: ['write'] });
  eq((await call('POST', '/group', other, { Name: 'n' })).status, 201, 'another app still may');
  for (const id of ids) await call('DELETE', `/groups/${id}`, tok());
});

test('bounded: --discovery-max-app-bytes caps what one app stores and GET /groups builds', async () => {
  // Before: only the count was bounded, so one app's writer could make every GET /groups
  // build and hold --discovery-max-per-app groups of about 90 KB each (86 MB by default).
  const r2 = await startRelay({ args: ['--discovery-max-app-bytes', '64KiB', '--access-rate', '0'] });
  try {
    const t = (over = {}) => r2.token({ prefix: 'discovery', topic: APP, sub: 'alice', scopes: ['read', 'write'], ...over });
    const req = async (method, path, token, body) => {
      const res = await fetch(`${r2.base}${path}`, { method, headers: { Authorization: token, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      let parsed = text;
      try { parsed = JSON.parse(text); } catch (_) { /* not JSON */ }
      return { status: res.status, body: parsed, text };
    };
    const peers = (n) => Array.from({ length: n }, () => ({ NetAddr: 'a'.repeat(150) })); // ~190 bytes stored each
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const c = await req('POST', '/group', t(), { Name: `g${i}`, Peers: peers(100) });
      eq(c.status, 201, `group ${i} of about 19 KB: ${c.text}`);
      ids.push(c.body);
    }
    const full = await req('POST', '/group', t(), { Name: 'g3', Peers: peers(100) });
    eq(full.status, 429, `a fourth would pass 64 KiB: ${full.text}`);
    ok(/discovery-max-app-bytes/.test(full.body.message), 'names the setting');
    const grow = await req('PATCH', `/groups/${ids[0]}`, t(), { Peers: peers(200) });
    eq(grow.status, 429, 'a PATCH past the cap');
    eq((await req('GET', `/groups/${ids[0]}`, t())).body.Peers.length, 100, 'the group is unchanged');
    const shrink = await req('PATCH', `/groups/${ids[0]}`, t(), { Peers: peers(10) });
    eq(shrink.status, 200, 'a PATCH that shrinks it');
    eq((await req('POST', '/group', t(), { Name: 'g3', Peers: peers(60) })).status, 201, 'room again');
    const list = await req('GET', '/groups', t());
    eq(list.status, 200, 'GET /groups');
    ok(list.text.length <= 64 * 1024 + 1024, `the listing stays within the cap (${list.text.length} bytes)`);
    const other = r2.token({ prefix: 'discovery', topic: 'OtherApp', sub: 's', scopes: ['write'] });
    eq((await req('POST', '/group', other, { Name: 'n', Peers: peers(100) })).status, 201, 'another app has its own');
  } finally {
    await r2.stop();
  }
});

test('changes are rate limited per address (--access-rate), reads are not', async () => {
  // Before: nothing bounded them, and each is an fsync on the relay's one loop.
  const r3 = await startRelay({ args: ['--access-rate', '1', '--access-burst', '3'] });
  try {
    const t = r3.token({ prefix: 'discovery', topic: APP, sub: 'alice', scopes: ['read', 'write'] });
    const send = async (method, path, body) => (await fetch(`${r3.base}${path}`, { method,
      headers: { Authorization: t, 'Content-Type': 'application/json' }, body })).status;
    const id = JSON.parse(await (await fetch(`${r3.base}/group`, { method: 'POST',
      headers: { Authorization: t, 'Content-Type': 'application/json' }, body: '{"Name":"n"}' })).text());
    const patches = [];
    for (let i = 0; i < 6; i++) patches.push(await send('PATCH', `/groups/${id}`, `{"Name":"n${i}"}`));
    ok(patches.includes(429), `a burst of changes meets 429 (${patches})`);
    ok(patches.filter((st) => st === 200).length >= 1, 'within the burst they pass');
    const gets = [];
    for (let i = 0; i < 10; i++) gets.push(await send('GET', `/groups/${id}`));
    ok(gets.every((st) => st === 200), `reads are not limited (${[...new Set(gets)]})`);
  } finally {
    await r3.stop();
  }
});

// One HTTP/2 request; resolves { status, body, headers }.
function h2call(session, method, path, token, body) {
  return new Promise((resolve, reject) => {
    const headers = { ':method': method, ':path': path, authorization: token };
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    const req = session.request(headers);
    let data = '';
    let head = {};
    req.on('response', (h) => { head = h; });
    req.on('data', (d) => { data += d; });
    req.on('end', () => resolve({ status: head[':status'], text: data, headers: head }));
    req.on('error', reject);
    req.end(body);
  });
}

test('HTTP/2: POST, PATCH and DELETE on one connection', async () => {
  const http2 = require('http2');
  const session = http2.connect(r.base, { rejectUnauthorized: false });
  try {
    const c = await h2call(session, 'POST', '/group', tok(), JSON.stringify(NEW_GROUP));
    eq(c.status, 201, `POST over h2: ${c.text}`);
    const id = JSON.parse(c.text);
    eq(c.headers.location, `/groups/${id}`, 'Location over h2');
    const p = await h2call(session, 'PATCH', `/groups/${id}`, tok(), '{"Name":"h2"}');
    eq(p.status, 200, `PATCH over h2: ${p.text}`);
    eq(JSON.parse(p.text).Name, 'h2', 'patched');
    const d = await h2call(session, 'DELETE', `/groups/${id}`, tok());
    eq(d.status, 204, 'DELETE over h2');
  } finally {
    session.close();
  }
});

test('TTL: a group past its TTL is gone within a second', async () => {
  const id = await create({ ...NEW_GROUP, TTL: 1 });
  const t0 = Date.now();
  eq((await call('GET', `/groups/${id}`, tok())).status, 200, 'there at first');
  await until(async () => (await call('GET', `/groups/${id}`, tok())).status === 404, 4000, 'group expires');
  const took = Date.now() - t0;
  ok(took >= 900, `not before its TTL (${took} ms)`);
  await r.waitLog(new RegExp(`group '${id}' of app '${APP}' expired`), 3000);
  const l = await call('GET', '/groups', tok());
  ok(!(id in l.body), 'not listed');
  // TODO(signal branch): a signaling peer of realm APP receives {"type":"group-expired","id"}.
});

test('persistence: groups survive a restart with the same state directory', async () => {
  const id = await create({ ...NEW_GROUP, Name: 'durable' });
  const before = (await call('GET', `/groups/${id}`, tok())).body;
  const stateDir = r.stateDir;
  const secret = r.secret;
  const st = await r.stop();
  eq(st.code, 0, 'clean stop');
  r = await startRelay({ stateDir, secret, args: ['--access-rate', '0'] });
  const after = await call('GET', `/groups/${id}`, tok());
  eq(after.status, 200, 'still there');
  eq(JSON.stringify(after.body), JSON.stringify(before), 'unchanged');
  eq((await call('PATCH', `/groups/${id}`, tok({ sub: 'bob' }), {})).status, 403,
    'its creator survives too');
  eq((await call('DELETE', `/groups/${id}`, tok())).status, 204, 'the creator deletes it');
});

run();
