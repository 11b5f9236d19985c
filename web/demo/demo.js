// relay demo page: the two calls of practable's browser clients (fetch POST with the token,
// then open the returned websocket uri), once for video and once for data. The video is played
// by JSMpeg on a 2D canvas, so each decoded frame's burned-in stamp (host/video.h: row 0 the
// 32-bit frame number, row 1 the time in ms, 8x8-pixel blocks, white = 1) can be read back to
// count frames and measure glass-to-glass latency (host and browser on one clock).
'use strict';

const $ = (id) => document.getElementById(id);
const BLOCK = 8;
window.demo = { frames: 0, stamps: [], latencies: [], data: [] };

async function access(url, token) {
  const res = await fetch(url, { method: 'POST', headers: { Authorization: token } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`access refused: ${res.status} ${body.message || ''}`);
  return body.uri;
}

function readBits(ctx, row, bits) {
  const px = ctx.getImageData(0, row * BLOCK, bits * BLOCK, BLOCK).data;
  const width = bits * BLOCK;
  let v = 0;
  for (let i = 0; i < bits; i++) {
    const x = i * BLOCK + BLOCK / 2;
    const y = BLOCK / 2;
    const bright = px[(y * width + x) * 4] > 125;
    v = v * 2 + (bright ? 1 : 0);
  }
  return v;
}

function onFrame(canvas) {
  const ctx = canvas.getContext('2d');
  const n = readBits(ctx, 0, 32);
  const t = readBits(ctx, 1, 48);
  const d = window.demo;
  d.frames++;
  d.stamps.push(n);
  const latency = Date.now() - t;
  if (latency >= 0 && latency < 60000) d.latencies.push(latency);
  $('frames').textContent = String(d.frames);
  $('stamp').textContent = String(n);
  $('latency').textContent = `${latency} ms`;
}

async function connectVideo(ev) {
  ev.preventDefault();
  const canvas = $('video');
  try {
    $('video-status').textContent = 'connecting';
    const uri = await access($('video-url').value, $('video-token').value);
    // disableGl: a 2D canvas, so the stamp can be read back with getImageData
    window.demo.player = new window.JSMpeg.Player(uri, {
      canvas, audio: false, disableGl: true, disableWebAssembly: true, autoplay: true,
      videoBufferSize: 1024 * 1024, // the JS decoder: the page's CSP allows no WebAssembly
      onVideoDecode: () => onFrame(canvas),
    });
    $('video-status').textContent = 'playing';
  } catch (e) {
    $('video-status').textContent = e.message;
  }
}

function log(line) {
  window.demo.data.push(line);
  const pre = $('data-log');
  pre.textContent += `${line}\n`;
  pre.scrollTop = pre.scrollHeight;
}

async function connectData(ev) {
  ev.preventDefault();
  try {
    $('data-status').textContent = 'connecting';
    const ws = new WebSocket(await access($('data-url').value, $('data-token').value));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { $('data-status').textContent = 'connected'; };
    ws.onclose = (e) => { $('data-status').textContent = `closed ${e.code} ${e.reason}`; };
    ws.onmessage = (e) => log(typeof e.data === 'string' ? e.data : new TextDecoder().decode(e.data));
    window.demo.ws = ws;
  } catch (e) {
    $('data-status').textContent = e.message;
  }
}

function send(ev) {
  ev.preventDefault();
  const ws = window.demo.ws;
  if (ws && ws.readyState === 1) {
    ws.send($('command').value);
    $('command').value = '';
  }
}

$('video-form').addEventListener('submit', connectVideo);
$('data-form').addEventListener('submit', connectData);
$('send-form').addEventListener('submit', send);
