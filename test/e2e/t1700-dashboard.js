// t1700: the operator dashboard served by the relay itself (--web-dir). Headless Chromium opens
// /dashboard/ (the page carries its own strict Content-Security-Policy, script-src 'self', and
// the test checks it is enforced), connects to the stats topic with a stats token and shows live
// rates, connections and bookings for a topic that node clients keep busy; with an admin token
// it denies a booking, which closes those clients with 1008. It reconnects after a relay
// restart and shows a refused token's reason. With a private channel open (node `ws` as the
// host's agent and as the client) and a TURN allocation relaying bytes (turnclient.js), it lists
// the channel's ends with their bytes each way and the allocation under its booking.
// A screenshot goes to build/dashboard.png.
'use strict';
const fs = require('fs');
const path = require('path');
const dgram = require('dgram');
const { test, ok, eq, run, startRelay, join, received, withTimeout, openWs, until } = require('./lib.js');
const { allocate } = require('./turnclient.js');
const { launchChromium } = require('./browser.js');

const WEB = path.join(__dirname, '../../web');
const SHOT = path.join(__dirname, '../../build/dashboard.png');
const relayArgs = ['--web-dir', WEB, '--stats-every', '250ms', '--access-rate', '0',
  '--turn-listen', '127.0.0.1:0', '--turn-allow-peer', '127.0.0.1/32'];

let r;
let browser;
let page;
let writer;
let reader;
let timer;
let turn;
let peerSock;
const channelWs = [];
const consoleErrors = [];
const pageErrors = [];
const dialogs = [];

const statsToken = () => r.token({ topic: 'stats', scopes: ['read', 'relay:stats'], booking_id: 'bk-dash' });
const adminToken = () => r.token({ topic: 'admin', scopes: ['relay:admin'] });

// page.waitForFunction bounded twice: by its own timeout and by withTimeout. A timeout names
// what the page's status line said, with the browser's errors and the relay's last log lines.
async function waitPage(fn, arg, ms, what) {
  try {
    return await withTimeout(page.waitForFunction(fn, arg, { timeout: ms, polling: 50 }), ms + 1000, what);
  } catch (e) {
    const status = await page.textContent('#status', { timeout: 1000 }).catch(() => '?');
    const log = r ? r.log.trim().split('\n').slice(-5).join('\n    ') : '';
    throw new Error(`waiting for ${what}: ${e.message.split('\n')[0]}\n    page status: ${status}\n` +
      `    console errors: ${JSON.stringify(consoleErrors)}, page errors: ${JSON.stringify(pageErrors)}\n` +
      `    relay log:\n    ${log}`);
  }
}

test('relay serves the dashboard files', async () => {
  r = await startRelay({ args: relayArgs });
  const html = await fetch(`${r.base}/dashboard/`);
  eq(html.status, 200, '/dashboard/ answers');
  ok(/text\/html/.test(html.headers.get('content-type')), 'index.html as text/html');
  const body = await html.text();
  ok(body.includes('<script src="dashboard.js"'), 'script as a file');
  ok(!/<script>|<script [^>]*>[^<]+<\/script>| on[a-z]+=/.test(body), 'no inline script or handler');
  const js = await fetch(`${r.base}/dashboard/dashboard.js`);
  eq(js.status, 200, 'dashboard.js');
  ok(/javascript/.test(js.headers.get('content-type')), `dashboard.js content-type ${js.headers.get('content-type')}`);
  eq((await fetch(`${r.base}/dashboard/dashboard.css`)).status, 200, 'dashboard.css');
});

test('node clients keep lab1 busy; Chromium opens the dashboard', async () => {
  reader = await join(r, 'lab1', { scopes: ['read'], booking_id: 'bk-lab1' });
  writer = await join(r, 'lab1', { scopes: ['write'], booking_id: 'bk-lab1' });
  let n = 0;
  timer = setInterval(() => writer.send(`sample ${n++}`), 20);
  await received(reader, 5, 5000);
  ok(true, 'traffic flows on lab1');

  browser = await launchChromium();
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 720 } });
  page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  const res = await page.goto(`${r.base}/dashboard/`);
  eq(res.status(), 200, 'page loaded');
  eq(await page.getAttribute('#status', 'data-state'), 'idle', 'script ran (status idle)');
  eq(await page.getAttribute('#stats-token', 'type'), 'password', 'stats token is a password field');
});

test('connect with a stats token: lab1 shows live rates, 2 connections, its booking', async () => {
  await page.fill('#stats-token', statsToken());
  await page.click('#connect');
  await waitPage(() => {
    const c = document.querySelector('tr[data-topic="lab1"] .rate-out');
    return c && Number(c.dataset.value) > 0;
  }, null, 10000, 'lab1 outgoing rate above 0');
  eq(await page.getAttribute('#status', 'data-state'), 'connected', 'status connected');
  const row = await page.$eval('tr[data-topic="lab1"]', (tr) => ({
    connections: tr.querySelector('.connections').textContent,
    readers: tr.querySelector('.readers').textContent,
    writers: tr.querySelector('.writers').textContent,
    in: Number(tr.querySelector('.rate-in').textContent),
    out: Number(tr.querySelector('.rate-out').textContent),
    dropped: tr.querySelector('.dropped').textContent,
  }));
  eq([row.connections, row.readers, row.writers, row.dropped], ['2', '1', '1', '0'], 'lab1 counts');
  ok(row.in > 0 && row.out > 0, `rates in ${row.in}, out ${row.out}`);
  ok(row.in < 100 && row.out < 100, 'rates near 50 msg/s, not totals');
  const bk = await page.$('tr[data-booking="bk-lab1"]');
  ok(bk !== null, 'booking bk-lab1 listed');
  eq(await page.textContent('tr[data-booking="bk-lab1"] .topics'), 'lab1', 'its topic');
  ok(/^\d+m \d\ds$/.test(await page.textContent('tr[data-booking="bk-lab1"] .time-left')), 'time left shown');
  ok(await page.$eval('tr[data-booking="bk-lab1"] button.deny', (b) => b.disabled), 'Deny disabled without admin token');
  const order = await page.$$eval('#bookings tbody tr', (trs) => trs.map((tr) => tr.dataset.booking));
  ok(order.includes('bk-dash') && order.includes('bk-lab1'), `both bookings listed: ${order}`);
});

async function postJson(p, token) {
  const res = await fetch(`${r.base}${p}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`POST ${p}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

test('a private channel, a TURN allocation and a signaling peer show with their bytes each way', async () => {
  // the agent's control connection, a client, and the agent's end of the client's channel
  const host = await postJson('/connect/lab9', r.token({ topic: 'lab9', prefix: 'connect', scopes: ['host'], booking_id: 'bk-host', sub: 'agent' }));
  const ctl = await openWs(host.uri);
  const cli = await postJson('/connect/lab9', r.token({ topic: 'lab9', prefix: 'connect', scopes: ['client'], booking_id: 'bk-client', sub: 'alice' }));
  const client = await openWs(cli.uri);
  await until(() => ctl.inbox.length > 0, 5000, 'connect message');
  const end = await openWs(JSON.parse(ctl.inbox[0].data.toString()).uri);
  channelWs.push(client, end, ctl);
  let toEnd = 0;
  let toClient = 0;
  end.on('message', (d) => { toEnd += d.length; });
  client.on('message', (d) => { toClient += d.length; });
  client.send(Buffer.alloc(1000, 1));
  end.send(Buffer.alloc(300, 2));
  await until(() => toEnd === 1000 && toClient === 300, 5000, 'bytes through the channel');

  // a TURN allocation of booking bk-turn: 10 bytes to a peer, 16 back
  const ice = await postJson('/ice', r.token({ booking_id: 'bk-turn' }));
  const s = ice.iceServers[0];
  turn = await allocate('127.0.0.1', Number(/:(\d+)\?/.exec(s.urls.find((u) => u.startsWith('turn:')))[1]), s.username, s.credential);
  peerSock = dgram.createSocket('udp4');
  peerSock.on('message', (b, from) => peerSock.send(Buffer.from('answer-from-peer'), from.port, from.address));
  await new Promise((resolve) => peerSock.bind(0, '127.0.0.1', resolve));
  await turn.permit('127.0.0.1', peerSock.address().port);
  turn.send('127.0.0.1', peerSock.address().port, Buffer.from('hello-peer'));
  await until(() => turn.received.length > 0, 5000, 'the peer\'s answer');

  // a signaling peer in realm realm1
  const sig = await postJson('/signal/realm1', r.token({ topic: 'realm1', prefix: 'signal', sub: 'alice', booking_id: 'bk-sig' }));
  channelWs.push(await openWs(sig.uri));

  const text = (sel) => page.$eval(sel, (e) => e.textContent).catch(() => null);
  await waitPage(() => {
    const c = document.querySelector('#channels tr[data-role="client"] .bytes-in');
    const t = document.querySelector('#turn tr[data-booking="bk-turn"] .bytes-from-peers');
    return c && c.textContent === '1000' && t && t.textContent === '16';
  }, null, 10000, 'the channel\'s and the allocation\'s bytes');
  const ch = '#channels tr[data-host="lab9"]';
  eq(await text(`${ch}[data-role="client"] .client`), 'bk-client', 'the channel\'s client (its booking)');
  eq(await text(`${ch}[data-role="client"] .bytes-out`), '300', 'bytes the relay wrote to the client');
  eq(await text(`${ch}[data-role="channel-host"] .bytes-in`), '300', 'bytes from the host\'s end');
  eq(await text(`${ch}[data-role="channel-host"] .bytes-out`), '1000', 'bytes written to the host\'s end');
  eq(await text(`${ch}[data-role="client"] .state`), 'paired', 'state');
  eq(await text(`${ch}[data-role="host"] .state`), '1 channel', 'the control connection');
  eq(await text('#turn tr[data-booking="bk-turn"] .allocations'), '1', 'allocations of bk-turn');
  eq(await text('#turn tr[data-booking="bk-turn"] .bytes-to-peers'), '10', 'bytes to peers');
  await waitPage(() => document.querySelector('#peers tr[data-kind="signal"][data-group="realm1"][data-peer="alice"]'),
    null, 5000, 'the signaling peer');
  ok(true, 'signaling peer alice listed under realm1');
  ok(/^connected: 7 connections on 2 topics/.test(await text('#status')), `status line counts websockets: ${await text('#status')}`);
  ok(await page.$('#topics tr[data-topic="lab9"]') === null, 'a channel is not a topic');
  ok(await page.$('#topics tr[data-topic="undefined"]') === null, 'no topic row for TURN entries');
});

test('the plot draws delivered messages/s', async () => {
  await waitPage(() => {
    const c = document.querySelector('tr[data-topic="lab1"] canvas.plot');
    return c && Number(c.dataset.samples) >= 12;
  }, null, 10000, '12 samples plotted');
  // The line (#1f6fb4) must span the columns its samples cover: (samples - 1) steps of
  // width / 59 (60 samples fill the canvas), whatever height the rates give it.
  const { cols, want } = await page.$eval('tr[data-topic="lab1"] canvas.plot', (c) => {
    const d = c.getContext('2d').getImageData(0, 12, c.width, c.height - 12).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4) if (d[i] < 80 && d[i + 2] > 140) seen.add((i / 4) % c.width);
    return { cols: seen.size, want: (Number(c.dataset.samples) - 1) * c.width / 59 };
  });
  ok(cols >= 0.8 * want, `plot line drawn across ${cols} columns (its samples cover ${Math.round(want)})`);
});

test('admin token enables Deny; denying closes the booking\'s clients with 1008', async () => {
  await page.fill('#admin-token', adminToken());
  await waitPage(() => {
    const b = document.querySelector('tr[data-booking="bk-lab1"] button.deny');
    return b && !b.disabled;
  }, null, 3000, 'Deny enabled');
  ok(true, 'Deny enabled with an admin token');

  fs.mkdirSync(path.dirname(SHOT), { recursive: true });
  fs.rmSync(SHOT, { force: true });
  await page.screenshot({ path: SHOT, fullPage: true });
  ok(fs.existsSync(SHOT) && fs.statSync(SHOT).size > 0, `screenshot ${SHOT}`);

  const t0 = Date.now();
  await page.click('tr[data-booking="bk-lab1"] button.deny');
  const [w, rd] = await withTimeout(Promise.all([writer.closed, reader.closed]), 3000, 'clients closed');
  clearInterval(timer);
  timer = null;
  eq([w.code, w.reason], [1008, 'booking cancelled'], 'writer closed');
  eq([rd.code, rd.reason], [1008, 'booking cancelled'], 'reader closed');
  ok(Date.now() - t0 < 2000, `within ${Date.now() - t0} ms of the click`);
  eq(dialogs.length, 1, 'one confirm dialog');
  ok(/bk-lab1/.test(dialogs[0] || ''), 'confirm names the booking');
  await waitPage(() => document.querySelector('#deny-result').dataset.result !== '', null, 3000, 'deny result');
  eq(await page.getAttribute('#deny-result', 'data-result'), 'ok', 'result ok');
  ok(/denied bk-lab1/.test(await page.textContent('#deny-result')), 'result text');
  await waitPage(() => !document.querySelector('tr[data-booking="bk-lab1"]') &&
    !document.querySelector('tr[data-topic="lab1"]'), null, 3000, 'booking and topic gone');
  ok(true, 'booking and topic leave the page');
  eq(consoleErrors, [], 'no console errors');
  eq(pageErrors, [], 'no page errors');
});

test('the dashboard reconnects after the relay restarts', async () => {
  const { port, stateDir, secret } = r;
  const stop = await r.stop();
  eq(stop.code, 0, 'relay stopped');
  await waitPage(() => document.querySelector('#status').dataset.state === 'disconnected', null, 3000, 'disconnected');
  ok(/reconnecting/.test(await page.textContent('#status')), 'status says it reconnects');
  r = await startRelay({ port, stateDir, secret, args: relayArgs });
  // Same secret and audience: the page's stats token is still good.
  await waitPage(() => document.querySelector('#status').dataset.state === 'connected' &&
    document.querySelector('tr[data-topic="stats"]'), null, 15000, 'reconnected');
  ok(true, 'connected again with a report');
  eq(pageErrors, [], 'no page errors');
  const unexpected = consoleErrors.filter((e) => !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(e));
  eq(unexpected, [], 'only connection-refused errors while the relay was down');
});

test('a refused token shows the server\'s reason and is not retried', async () => {
  const before = consoleErrors.length;
  await page.fill('#stats-token', r.token({ topic: 'stats', scopes: ['read'] }));
  await page.click('#connect');
  await waitPage(() => document.querySelector('#status').dataset.state === 'error', null, 5000, 'error shown');
  const text = await page.textContent('#status');
  ok(/^access refused \(403\): .+/.test(text), `status: ${text}`);
  eq(await page.$eval('#disconnect', (b) => b.disabled), true, 'no longer trying');
  ok(consoleErrors.slice(before).every((e) => /403/.test(e)), 'only the expected 403 in the console');
  eq(pageErrors, [], 'no page errors');
});

test('the page runs under script-src \'self\': inline code is refused', async () => {
  const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
  ok(/script-src 'self'(;|$)/.test(csp || ''), `CSP ${csp}`);
  const before = consoleErrors.length;
  // An inline script appended to the document runs synchronously inside appendChild (HTML's
  // "prepare the script element"), so inlineRan is settled when appendChild returns: no wait
  // proves the absence. The violation event, queued as a task, is the positive signal that CSP
  // refused this very script; the test waits for it, bounded.
  const seen = await withTimeout(page.evaluate(() => {
    const violation = new Promise((resolve) => document.addEventListener('securitypolicyviolation',
      (e) => resolve({ directive: e.violatedDirective, sample: e.sample }), { once: true }));
    const s = document.createElement('script');
    s.textContent = 'window.inlineRan = true;';
    document.body.appendChild(s);
    if (window.inlineRan === true) return { ran: true }; // refused by nothing: no event to wait for
    return violation.then((v) => ({ ran: false, ...v }));
  }), 5000, 'the securitypolicyviolation event');
  eq(seen.ran, false, 'the inline script did not run');
  ok(/^script-src/.test(seen.directive), `refused by script-src (${seen.directive})`);
  ok(consoleErrors.slice(before).every((e) => /Content Security Policy/.test(e)), 'only the CSP refusal logged');
});

test('cleanup', async () => {
  if (timer) clearInterval(timer);
  for (const ws of channelWs) ws.close();
  if (turn) turn.close();
  if (peerSock) peerSock.close();
  await browser.close();
  eq((await r.stop()).code, 0, 'relay stopped');
});

run({ perTestMs: 30000 });
