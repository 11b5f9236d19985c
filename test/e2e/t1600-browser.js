// t1600: headless Chromium, on a page of another origin, runs practable's two calls exactly as
// browser clients do (fetch POST with Authorization, then new WebSocket(uri)) over HTTPS/WSS
// with the dev certificate, and receives what a node client writes to the topic.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const { chromium } = require('playwright-core');
const { test, ok, eq, run, startRelay, join, received, withTimeout } = require('./lib.js');

let r;
let page;
let browser;
let pageServer;
let origin;
const consoleErrors = [];

function servePages() {
  return new Promise((resolve) => {
    pageServer = http.createServer((req, res) => {
      if (req.url === '/favicon.ico') {
        res.writeHead(204);
        res.end();
        return;
      }
      const file = path.join(__dirname, 'pages', path.basename(req.url.split('?')[0]) || 'client.html');
      if (!fs.existsSync(file)) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : 'text/html' });
      res.end(fs.readFileSync(file));
    });
    pageServer.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${pageServer.address().port}`));
  });
}

test('start relay, page server and Chromium', async () => {
  r = await startRelay();
  origin = await servePages();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors'], // playwright gives each launch a fresh profile
  });
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await page.goto(`${origin}/client.html`);
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
