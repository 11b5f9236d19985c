// What the browser tests share: headless Chromium launched the one way that works here, and a
// page server on another origin (127.0.0.1, port 0) serving test/e2e/pages/.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const { chromium } = require('playwright-core');

// Debian's Chromium, headless; @extra flags are added. Playwright gives each launch a fresh
// profile; the dev certificate is self-signed, hence --ignore-certificate-errors.
function launchChromium(extra = []) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors', ...extra],
  });
}

// An HTTP server for pages/: @index answers '/', @allow (a RegExp on the file name) limits what
// is served. Resolves to { server, origin }.
function servePages({ index = '', allow = null } = {}) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      if (req.url === '/favicon.ico') {
        res.writeHead(204);
        res.end();
        return;
      }
      const file = path.join(__dirname, 'pages', path.basename(req.url.split('?')[0]) || index);
      if ((allow && !allow.test(path.basename(file))) || !fs.existsSync(file)) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : 'text/html' });
      res.end(fs.readFileSync(file));
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${server.address().port}` }));
  });
}

// A page of a fresh context (the dev certificate accepted) at @url; its console errors are
// pushed to @consoleErrors.
async function openPage(browser, url, consoleErrors) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  await page.goto(url);
  return page;
}

module.exports = { launchChromium, servePages, openPage };
