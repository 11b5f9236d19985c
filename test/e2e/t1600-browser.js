// t1600: headless Chromium, on a page of another origin, runs practable's two calls exactly as
// browser clients do (fetch POST with Authorization, then new WebSocket(uri)) over HTTPS/WSS
// with the dev certificate, and receives what a node client writes to the topic.
'use strict';
const { test, ok, eq, run, startRelay, join, received, withTimeout } = require('./lib.js');
const { launchChromium, servePages, openPage } = require('./browser.js');

let r;
let page;
let browser;
let pageServer;
let origin;
const consoleErrors = [];

test('start relay, page server and Chromium', async () => {
  r = await startRelay();
  ({ server: pageServer, origin } = await servePages({ index: 'client.html' }));
  browser = await launchChromium();
  page = await openPage(browser, `${origin}/client.html`, consoleErrors);
  eq(await page.textContent('#status'), 'idle', 'page loaded');
});

test('browser on another origin: fetch POST + new WebSocket(uri) over wss', async () => {
  const token = r.token({ topic: 'browser', scopes: ['read', 'write'] });
  const uri = await page.evaluate(([u, t]) => window.relayConnect(u, t), [`${r.base}/session/browser`, token]);
  ok(uri.startsWith(`wss://127.0.0.1:${r.port}/session/browser?code=`), `uri ${uri}`);
  const writer = await join(r, 'browser', { scopes: ['read', 'write'] });
  writer.send('hello browser');
  writer.send(Buffer.alloc(1000));
  await withTimeout(page.waitForFunction(() => window.received.length >= 2), 5000, 'browser receives');
  eq(await page.evaluate(() => window.received), ['hello browser', 'binary:1000'], 'messages as sent');
  await page.evaluate(() => window.ws.send('hello node'));
  await received(writer, 1);
  eq(writer.inbox[0].data.toString(), 'hello node', 'browser writes too');
  writer.close();
});

test('refused token reaches the page as an HTTP status, with CORS', async () => {
  const err = await page.evaluate(([u]) => window.relayConnect(u, 'bad.token.value').catch((e) => e.message),
    [`${r.base}/session/browser`]);
  eq(err, 'access 401', 'the page reads the 401 (CORS allowed it)');
});

test('cleanup', async () => {
  await browser.close();
  pageServer.close();
  eq(consoleErrors.filter((e) => !/401/.test(e)), [], 'no console errors beyond the expected 401');
  eq((await r.stop()).code, 0, 'relay stopped');
});

run({ perTestMs: 60000 });
