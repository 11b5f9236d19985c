// t2220: two headless Chromium pages (two browser contexts) complete offer/answer/candidate
// over relay's signaling and open a WebRTC data channel: directly between them (host
// candidates on loopback, the welcome's iceServers [] with TURN off), then relay-only through
// relay's own TURN server with the iceServers of the welcome message.
'use strict';
const { test, ok, eq, run, startRelay, withTimeout } = require('./lib.js');
const { launchChromium, servePages, openPage } = require('./browser.js');

let r;
let browser;
let pageServer;
let origin;
const consoleErrors = [];

function newPage() {
  return openPage(browser, `${origin}/signal.html`, consoleErrors);
}

test('start relay, page server and Chromium', async () => {
  r = await startRelay({ args: ['--access-rate', '0'] });
  ({ server: pageServer, origin } = await servePages({ allow: /^signal\.(html|js)$/ }));
  browser = await launchChromium([
    // host candidates with real loopback addresses, not mDNS names nobody here resolves
    '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns',
  ]);
  ok(browser.isConnected(), 'chromium started');
});

test('two pages: offer/answer/candidate over /signal, data channel open directly', async () => {
  const a = await newPage();
  const b = await newPage();
  const opts = (me, other, caller) => ({
    accessUrl: `${r.base}/signal/webrtc`,
    token: r.token({ topic: 'webrtc', prefix: 'signal', sub: me }),
    other, caller, relayOnly: false,
  });
  await a.evaluate((o) => window.startPeer(o), opts('alice', 'bob', true));
  await b.evaluate((o) => window.startPeer(o), opts('bob', 'alice', false));
  await withTimeout(a.waitForFunction(() => window.state.echoed === 'pong:ping'), 20000, 'data channel round trip')
    .catch(async (e) => {
      console.log('  alice:', JSON.stringify(await a.evaluate(() => window.state)));
      console.log('  bob:', JSON.stringify(await b.evaluate(() => window.state)));
      throw e;
    });
  ok(await b.evaluate(() => window.state.open), 'bob\'s channel open');
  eq(await a.evaluate(() => window.state.iceServers), [], 'iceServers from the welcome');
  const pair = await a.evaluate(() => window.selectedPair());
  // direct: our host candidate, and the other page's host address, which ICE may first learn
  // as peer-reflexive when its check arrives before its candidate does over /signal (a race on a
  // busy machine); never a relayed or server-reflexive pair
  ok(pair && pair.local === 'host' && ['host', 'prflx'].includes(pair.remote),
    `direct: a host-host pair (${JSON.stringify(pair)})`);
  eq(await a.evaluate(() => window.state.errors), [], 'no signaling errors');
  await a.context().close();
  await b.context().close();
});

test('relay only: iceServers from the welcome, every packet through our TURN', async () => {
  const rt = await startRelay({ args: ['--access-rate', '0', '--turn-listen', '127.0.0.1:0',
    '--turn-allow-peer', '127.0.0.1/32'] });
  const a = await newPage();
  const b = await newPage();
  const opts = (me, other, caller) => ({
    accessUrl: `${rt.base}/signal/webrtc-relay`,
    token: rt.token({ topic: 'webrtc-relay', prefix: 'signal', sub: me, booking_id: `bk-${me}` }),
    other, caller, relayOnly: true,
  });
  await a.evaluate((o) => window.startPeer(o), opts('alice', 'bob', true));
  await b.evaluate((o) => window.startPeer(o), opts('bob', 'alice', false));
  await withTimeout(a.waitForFunction(() => window.state.echoed === 'pong:ping'), 30000, 'data channel round trip over TURN')
    .catch(async (e) => {
      console.log('  alice:', JSON.stringify(await a.evaluate(() => window.state)));
      console.log('  bob:', JSON.stringify(await b.evaluate(() => window.state)));
      throw e;
    });
  const ice = await a.evaluate(() => window.state.iceServers);
  ok(ice.length > 0 && ice.some((s) => s.urls.some((u) => u.startsWith('turn:')) && s.username && s.credential),
    `welcome carries TURN servers with a credential (${JSON.stringify(ice).slice(0, 200)})`);
  const pair = await a.evaluate(() => window.selectedPair());
  eq(pair && [pair.local, pair.remote], ['relay', 'relay'], `relayed: a relay-relay pair (${JSON.stringify(pair)})`);
  const metrics = await (await fetch(`${rt.base}/metrics`)).text();
  ok(/^relay_turn_\w*alloc\w* [1-9]/m.test(metrics), 'allocations counted by our TURN server');
  await a.context().close();
  await b.context().close();
  eq((await rt.stop()).code, 0, 'relay with TURN stopped');
});

test('cleanup', async () => {
  await browser.close();
  pageServer.close();
  eq(consoleErrors, [], 'no console errors');
  eq((await r.stop()).code, 0, 'relay stopped');
});

run({ perTestMs: 40000 });
