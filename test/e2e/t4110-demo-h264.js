// t4110: the demo page (/demo/) with H.264: `relay host --video test --codec h264` streams
// Annex-B access units, headless Chromium decodes them with WebCodecs (VideoDecoder) onto the
// canvas, the burned-in counter advances and glass-to-glass latency is measured from the
// burned-in time, as t4100 does for mpeg1. The page finds the codec from ?codec=h264 and, with
// codec auto, from the first bytes. With --format fmp4 the page plays the fragments through
// Media Source Extensions. If this Chromium could not decode H.264 with WebCodecs, the page
// must say "unsupported" instead (checked rather than skipped).
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');
const { test, ok, eq, run, startRelay, withTimeout, relayHost } = require('./lib.js');

let r;
let browser;
let context;
let webcodecs; // does this browser decode H.264 with WebCodecs?
const errors = [];

async function openDemo(query, topic) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  const res = await page.goto(`${r.base}/demo/${query}`);
  eq(res.status(), 200, 'the relay serves the demo page');
  await page.fill('#video-url', `${r.base}/session/${topic}`);
  await page.fill('#video-token', r.token({ topic, scopes: ['read'] }));
  await page.click('#video-form button');
  return page;
}

function latencyMedian(lat) {
  const s = [...lat].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
}

test('start relay, two H.264 hosts (Annex-B, fMP4) and Chromium', async () => {
  r = await startRelay({ args: ['--web-dir', path.join(__dirname, '../../web'), '--access-rate', '0'] });
  const common = ['--secret-file', r.secretFile, '--insecure', '--video', 'test', '--codec', 'h264'];
  relayHost(['--session', `${r.base}/session/h264`, ...common]);
  relayHost(['--session', `${r.base}/session/mp4`, ...common, '--format', 'fmp4']);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--ignore-certificate-errors',
      '--autoplay-policy=no-user-gesture-required'],
  });
  context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(`${r.base}/demo/`);
  webcodecs = await page.evaluate(async () => typeof VideoDecoder !== 'undefined' &&
    (await VideoDecoder.isConfigSupported({ codec: 'avc1.42C01E' })).supported);
  console.log(`  this Chromium ${webcodecs ? 'decodes' : 'does NOT decode'} H.264 (avc1.42C01E) with WebCodecs`);
  await page.close();
});

test('?codec=h264: WebCodecs decodes the frames and the burned-in counter advances', async () => {
  const page = await openDemo('?codec=h264', 'h264');
  if (!webcodecs) {
    await withTimeout(page.waitForFunction(() => /^unsupported/.test(window.demo.status), null, { timeout: 10000 }),
      11000, 'the page reports unsupported');
    ok(true, 'the page says the browser cannot decode H.264');
    return;
  }
  await withTimeout(page.waitForFunction(() => window.demo.frames >= 50, null, { timeout: 15000 }), 16000,
    '50 frames decoded');
  const d = await page.evaluate(() => ({ ...window.demo, player: undefined, video: undefined }));
  eq(d.decoder, 'webcodecs', 'decoder');
  eq(d.codec, 'avc1.42C01E', 'codec string read from the SPS (constrained baseline, level 3.0)');
  eq(d.status, 'playing (H.264, WebCodecs)', 'status');
  ok(d.frames >= 50, `${d.frames} frames decoded`);
  const s = d.stamps;
  ok(s.slice(1).every((v, i) => v - s[i] >= 1), `the burned-in frame number only goes up (${s.slice(0, 5)}...${s.slice(-3)})`);
  ok(s[s.length - 1] - s[0] >= 40, 'it advanced by at least 40 frames');
  const { median, max } = latencyMedian(d.latencies);
  console.log(`  glass-to-glass latency (H.264, WebCodecs): median ${median} ms, max ${max} ms over ${d.latencies.length} frames`);
  ok(d.latencies.length >= 50 && median >= 0 && median < 1000, `latency measured (median ${median} ms)`);
  await page.screenshot({ path: path.join(__dirname, '../../build/demo-h264.png') });
  await page.close();
});

test('codec auto: the page recognises Annex-B from the first bytes', async () => {
  const page = await openDemo('', 'h264');
  await withTimeout(page.waitForFunction(() => window.demo.decoder !== null, null, { timeout: 5000 }), 6000,
    'a player chosen');
  eq(await page.textContent('#format'), 'annexb', 'detected format');
  eq(await page.evaluate(() => window.demo.decoder), 'webcodecs', 'decoder');
  if (webcodecs) {
    await withTimeout(page.waitForFunction(() => window.demo.frames >= 10, null, { timeout: 10000 }), 11000,
      '10 frames decoded');
    ok(true, 'frames decoded');
  }
  await page.close();
});

test('fMP4: Media Source Extensions play the fragments (key chunks carry the init segment)', async () => {
  const page = await openDemo('', 'mp4');
  await withTimeout(page.waitForFunction(() => window.demo.frames >= 25 || /^unsupported/.test(window.demo.status),
    null, { timeout: 15000 }), 16000, '25 frames shown');
  const d = await page.evaluate(() => ({ ...window.demo, player: undefined, video: undefined }));
  eq(await page.textContent('#format'), 'fmp4', 'detected format');
  eq(d.decoder, 'mse', 'decoder');
  eq(d.codec, 'avc1.42C01E', 'codec string read from the avcC');
  ok(d.frames >= 25, `${d.frames} frames shown (${d.status})`);
  const s = d.stamps;
  ok(s.slice(1).every((v, i) => v - s[i] >= 0), `the burned-in frame number never goes back (${s.slice(0, 5)}...${s.slice(-3)})`);
  ok(s[s.length - 1] - s[0] >= 20, 'it advanced by at least 20 frames');
  const { median, max } = latencyMedian(d.latencies);
  console.log(`  glass-to-glass latency (H.264 fMP4, MSE): median ${median} ms, max ${max} ms over ${d.latencies.length} frames`);
  await page.close();
});

test('cleanup', async () => {
  await browser.close();
  eq(errors, [], 'no console or page errors');
  eq((await r.stop()).code, 0, 'relay exit status');
});

run({ perTestMs: 60000 });
