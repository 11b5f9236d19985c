// t1400: cancelling bookings live (practable's deny list): POST /bids/deny closes every live
// connection of the booking within a second and refuses it until exp; /bids/allow undoes it;
// the list survives a restart; only relay:admin tokens may touch it.
'use strict';
const { test, ok, eq, run, startRelay, access, openWs, join, withTimeout } = require('./lib.js');

let r;
const exp = () => Math.floor(Date.now() / 1000) + 3600;

async function bids(r, method, path, token) {
  const res = await fetch(`${r.base}${path}`, { method, headers: token ? { Authorization: token } : {} });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const admin = (r) => r.token({ topic: 'admin', scopes: ['relay:admin'] });

test('start relay', async () => {
  r = await startRelay({ args: ['--access-rate', '0'] });
  ok(r.port > 0, 'relay started');
});

test('deny closes live connections of the booking within a second, only those', async () => {
  const victim1 = await join(r, 'lab1', { booking_id: 'bk-cancel' });
  const victim2 = await join(r, 'lab2', { booking_id: 'bk-cancel' });
  const bystander = await join(r, 'lab1', { booking_id: 'bk-keep' });
  const pending = await access(r, 'lab1', r.token({ topic: 'lab1', booking_id: 'bk-cancel' }));
  const t0 = Date.now();
  const d = await bids(r, 'POST', `/bids/deny?bid=bk-cancel&exp=${exp()}`, admin(r));
  eq(d.status, 204, 'deny answers 204');
  const [c1, c2] = await withTimeout(Promise.all([victim1.closed, victim2.closed]), 1000, 'closed within 1 s');
  eq([c1.code, c1.reason], [1008, 'booking cancelled'], 'first connection closed');
  eq([c2.code, c2.reason], [1008, 'booking cancelled'], 'second connection closed');
  ok(Date.now() - t0 < 1000, `within a second (${Date.now() - t0} ms)`);
  eq(bystander.readyState, 1, 'other booking still connected');
  const e = await openWs(pending.body.uri).catch((x) => x);
  ok(e.status === 401 || e.status === 403, `code issued before the deny is refused (${e.status})`);
  const again = await access(r, 'lab1', r.token({ topic: 'lab1', booking_id: 'bk-cancel' }));
  eq(again.status, 403, 'new access refused');
  eq(again.body.message, 'booking denied', 'reason');
  bystander.close();
});

test('lists, allow undoes a deny', async () => {
  const denied = await bids(r, 'GET', '/bids/deny', admin(r));
  eq(denied.status, 200, 'GET /bids/deny');
  ok(denied.body.booking_ids.includes('bk-cancel'), 'denied booking listed');
  const allowed = await bids(r, 'GET', '/bids/allow', admin(r));
  ok(allowed.body.booking_ids.includes('bk-keep'), 'seen booking listed as allowed');
  ok(!allowed.body.booking_ids.includes('bk-cancel'), 'denied booking not listed as allowed');
  eq((await bids(r, 'POST', `/bids/allow?bid=bk-cancel&exp=${exp()}`, admin(r))).status, 204, 'allow');
  eq((await access(r, 'lab1', r.token({ topic: 'lab1', booking_id: 'bk-cancel' }))).status, 200, 'access again');
  ok(!(await bids(r, 'GET', '/bids/deny', admin(r))).body.booking_ids.includes('bk-cancel'), 'no longer denied');
});

test('refusals: no token 401, no relay:admin 401, bad bid/exp 400, wrong method 405', async () => {
  eq((await bids(r, 'POST', `/bids/deny?bid=x&exp=${exp()}`)).status, 401, 'no token');
  const user = r.token({ topic: 'lab1' });
  const u = await bids(r, 'POST', `/bids/deny?bid=x&exp=${exp()}`, user);
  eq(u.status, 401, 'token without relay:admin');
  ok(/relay:admin/.test(u.body.message), 'reason names the scope');
  eq((await bids(r, 'GET', '/bids/deny', user)).status, 401, 'listing needs relay:admin');
  eq((await bids(r, 'POST', `/bids/deny?exp=${exp()}`, admin(r))).status, 400, 'missing bid');
  eq((await bids(r, 'POST', '/bids/deny?bid=x', admin(r))).status, 400, 'missing exp');
  eq((await bids(r, 'POST', '/bids/deny?bid=x&exp=12', admin(r))).status, 400, 'exp in the past');
  eq((await bids(r, 'POST', '/bids/deny?bid=x&exp=soon', admin(r))).status, 400, 'exp not a number');
  eq((await bids(r, 'POST', `/bids/deny?bid=${'x'.repeat(200)}&exp=${exp()}`, admin(r))).status, 400, 'bid too long');
  eq((await bids(r, 'PUT', `/bids/deny?bid=x&exp=${exp()}`, admin(r))).status, 405, 'PUT');
});

test('the deny list survives a restart', async () => {
  eq((await bids(r, 'POST', `/bids/deny?bid=bk-persist&exp=${exp()}`, admin(r))).status, 204, 'deny');
  const stateDir = r.stateDir;
  const secret = r.secret;
  eq((await r.stop()).code, 0, 'stopped');
  r = await startRelay({ stateDir, secret, args: ['--access-rate', '0'] });
  const a = await access(r, 'lab1', r.token({ topic: 'lab1', booking_id: 'bk-persist' }));
  eq(a.status, 403, 'still denied after restart');
  ok((await bids(r, 'GET', '/bids/deny', admin(r))).body.booking_ids.includes('bk-persist'), 'still listed');
  eq((await access(r, 'lab1', r.token({ topic: 'lab1', booking_id: 'bk-other' }))).status, 200, 'others fine');
});

test('tokens without booking_id: refused by default, accepted with --allow-no-booking-id', async () => {
  eq((await access(r, 'lab1', r.token({ topic: 'lab1', booking_id: undefined }))).status, 403, 'refused');
  const s = await startRelay({ args: ['--allow-no-booking-id'] });
  const a = await access(s, 'lab1', s.token({ topic: 'lab1', booking_id: undefined }));
  eq(a.status, 200, 'accepted when allowed');
  await s.stop();
});

test('stop', async () => {
  eq((await r.stop()).code, 0, 'exit status');
});

run();
