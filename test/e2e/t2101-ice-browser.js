// t2101: headless Chromium on a page of another origin POSTs a relay token to /ice and opens a
// data channel between two RTCPeerConnections of that page with iceTransportPolicy 'relay':
// every packet between them goes through relay's own TURN server (UDP, TCP, then TLS: turns:).
'use strict';
const { test, ok, eq, run, startRelay } = require('./lib.js');
const { launchChromium, servePages, openPage } = require('./browser.js');
const { turnMetrics } = require('./turnclient.js');

let r;
let page;
let browser;
let pageServer;
const consoleErrors = [];

test('start relay with TURN, page server and Chromium', async () => {
  // no --turn-allow-peer, as in production: the two peers' relayed addresses are this relay's
  // live ones, allowed relay to relay
  r = await startRelay({ args: ['--turn-listen', '127.0.0.1:0', '--turns-listen', '127.0.0.1:0'] });
  let origin;
  ({ server: pageServer, origin } = await servePages({ index: 'ice.html' }));
  browser = await launchChromium();
  page = await openPage(browser, `${origin}/ice.html`, consoleErrors);
  eq(await page.textContent('#status'), 'idle', 'page loaded');
});

// The answer's servers with only the turn: URLs of @transport (the others would be tried too).
function only(answer, transport) {
  const want = transport === 'tls' ? /^turns:/ : new RegExp(`^turn:.*=${transport}$`);
  return answer.iceServers.map((s) => ({ ...s, urls: s.urls.filter((u) => want.test(u)) }));
}

for (const transport of ['udp', 'tcp', 'tls']) {
  test(`two relay-only RTCPeerConnections from POST /ice open a data channel (TURN over ${transport})`, async () => {
    const token = r.token({ booking_id: `browser-${transport}` });
    const answer = await page.evaluate(([u, t]) => window.fetchIce(u, t), [`${r.base}/ice`, token]);
    ok(answer.iceServers[0].username.endsWith(`:browser-${transport}`), 'credential for the booking');
    const before = await turnMetrics(r);
    const res = await page.evaluate(([s, n]) => window.iceRun(s, n), [only(answer, transport), 10]);
    const after = await turnMetrics(r);
    const d = (k) => (after[k] || 0) - (before[k] || 0);
    eq(res.received, Array.from({ length: 10 }, (_, i) => `echo:m${i}`), 'messages echoed through TURN');
    ok(res.types.length >= 2 && res.types.every((t) => t === 'relay'), `only relay candidates: ${res.types}`);
    eq(res.selectedLocal, 'relay', 'selected pair is relayed');
    eq(res.relayProtocol, transport, 'to the TURN server over the transport asked for');
    ok(d('relay_turn_allocations_total') >= 2, `two allocations on our TURN server: ${JSON.stringify(after)}`);
    ok(d('relay_turn_to_peer_packets_total') >= 10, `relayed to peers: +${d('relay_turn_to_peer_packets_total')}`);
  });
}

test('a refused token reaches the page as 401 (CORS)', async () => {
  const err = await page.evaluate(([u]) => window.fetchIce(u, 'bad.token.value').catch((e) => e.message), [`${r.base}/ice`]);
  eq(err, 'ice 401', 'the page reads the 401');
});

test('cleanup', async () => {
  await browser.close();
  pageServer.close();
  eq(consoleErrors.filter((e) => !/401/.test(e)), [], 'no console errors beyond the expected 401');
  eq((await r.stop()).code, 0, 'relay stopped');
});

run({ perTestMs: 40000 });
