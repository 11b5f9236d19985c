// relay demo page: the two calls of practable's browser clients (fetch POST with the token,
// then open the returned websocket uri), once for video and once for data. The page opens the
// video websocket itself and picks a player from the codec field (?codec= in the URL, or the
// form): "mpeg1" (JSMpeg), "h264" (WebCodecs for Annex-B, Media Source Extensions for fMP4) or
// "auto", which decides from the first message's bytes: 0x47 (an MPEG-TS packet) means mpeg1
// with JSMpeg, a start code 00 00 01 or 00 00 00 01 means H.264 Annex-B, and an ISO BMFF box
// ('ftyp' or 'moof' at offset 4) means fragmented MP4.
// Every player draws on the same 2D canvas, so each decoded frame's burned-in stamp
// (host/video.h: row 0 the 32-bit frame number, row 1 the time in ms, 8x8-pixel blocks,
// white = 1) can be read back to count frames and measure glass-to-glass latency (host and
// browser on one clock).
'use strict';

const $ = (id) => document.getElementById(id);
const BLOCK = 8;
window.demo = { frames: 0, stamps: [], latencies: [], data: [], decoder: null, codec: null, status: 'idle' };

async function access(url, token) {
  const res = await fetch(url, { method: 'POST', headers: { Authorization: token } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = new Error(`access refused: ${res.status} ${body.message || ''}`);
    e.final = true; // a refused token does not get better by retrying
    throw e;
  }
  return body.uri;
}

// Keep a websocket open: the two calls, and again with backoff (1 s doubling to 10 s, +-20 %)
// when the relay goes away (1001 on a restart, 1006 when the network drops). A refused token, or
// a close for expiry or cancellation (1008), ends it. @h: { status(text), open(ws), message(e) }.
function keepOpen(url, token, h) {
  const link = { ws: null, attempt: 0, opens: 0, stopped: false };
  const retry = (why) => {
    if (link.stopped) return;
    const base = Math.min(10000, 1000 * 2 ** link.attempt++);
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    h.status(`${why}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    setTimeout(connect, delay);
  };
  async function connect() {
    h.status('connecting');
    let uri;
    try {
      uri = await access(url, token);
    } catch (e) {
      if (e.final) h.status(e.message);
      else retry('relay unreachable');
      return;
    }
    const ws = new WebSocket(uri);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => { link.attempt = 0; link.opens++; h.open(ws); };
    ws.onmessage = h.message;
    ws.onclose = (e) => {
      if (e.code === 1008 || e.code === 1000) h.status(`closed ${e.code} ${e.reason}`);
      else retry(`closed ${e.code} ${e.reason}`.trim());
    };
    link.ws = ws;
  }
  connect();
  return link;
}

function videoStatus(text) {
  window.demo.status = text;
  $('video-status').textContent = text;
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

// Called once a frame is on the canvas.
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

// ---- what the bytes are ----

function detect(b) {
  if (b.length >= 188 && b[0] === 0x47) return 'ts';
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && (b[2] === 1 || (b[2] === 0 && b[3] === 1))) return 'annexb';
  const box = b.length >= 8 ? String.fromCharCode(b[4], b[5], b[6], b[7]) : '';
  if (box === 'ftyp' || box === 'moof') return 'fmp4';
  return 'unknown';
}

// The NAL units of an Annex-B access unit: [{ type, at }] (at: the byte after the start code).
function nalUnits(b) {
  const units = [];
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 0 && b[i + 1] === 0 && b[i + 2] === 1) {
      units.push({ type: b[i + 3] & 0x1f, at: i + 3 });
      i += 2;
    }
  }
  return units;
}

const hex2 = (x) => x.toString(16).toUpperCase().padStart(2, '0');

// WebCodecs/MSE codec string from profile_idc, the constraint flags and level_idc.
const avc1 = (b, at) => `avc1.${hex2(b[at])}${hex2(b[at + 1])}${hex2(b[at + 2])}`;

// ---- mpeg1 in MPEG-TS: JSMpeg, fed from our own websocket ----

// A JSMpeg source that is given the bytes (JSMpeg's own WSSource would open the one-time uri
// a second time).
function jsmpegPlayer(canvas) {
  let source = null;
  function PushSource(url, options) {
    this.streaming = true;
    this.established = false;
    this.completed = false;
    this.progress = 0;
    this.destination = null;
    this.hookOnEstablished = options.hookOnEstablished;
    source = this;
  }
  PushSource.prototype.connect = function (destination) { this.destination = destination; };
  PushSource.prototype.start = function () {};
  PushSource.prototype.resume = function () {};
  PushSource.prototype.destroy = function () {};
  // disableGl: a 2D canvas, so the stamp can be read back with getImageData
  window.demo.player = new window.JSMpeg.Player('push:', {
    source: PushSource, canvas, audio: false, disableGl: true, disableWebAssembly: true, autoplay: true,
    videoBufferSize: 1024 * 1024, // the JS decoder: the page's CSP allows no WebAssembly
    onVideoDecode: () => onFrame(canvas),
  });
  window.demo.decoder = 'jsmpeg';
  window.demo.codec = 'mpeg1video';
  return (buf) => {
    if (!source.established) {
      source.established = true;
      source.progress = 1;
      if (source.hookOnEstablished) source.hookOnEstablished();
    }
    source.destination.write(buf);
  };
}

// ---- H.264 Annex-B: WebCodecs ----

function h264Player(canvas) {
  const ctx = canvas.getContext('2d');
  let decoder = null;
  let state = 'waiting'; // for a key chunk, then 'configuring', 'decoding' or 'failed'
  let pending = [];
  let count = 0;

  function decode(b, key) {
    // timestamps only need to increase: the frame period of 25 fps, in microseconds
    decoder.decode(new window.EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp: count++ * 40000, data: b }));
  }

  async function configure(b, sps) {
    const config = { codec: avc1(b, sps.at + 1), optimizeForLatency: true };
    window.demo.codec = config.codec;
    $('codec').textContent = config.codec;
    if (typeof window.VideoDecoder === 'undefined') throw new Error('unsupported: this browser has no WebCodecs VideoDecoder');
    const support = await window.VideoDecoder.isConfigSupported(config);
    if (!support.supported) throw new Error(`unsupported: this browser cannot decode ${config.codec} with WebCodecs`);
    decoder = new window.VideoDecoder({
      output: (frame) => {
        if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
          canvas.width = frame.displayWidth;
          canvas.height = frame.displayHeight;
        }
        ctx.drawImage(frame, 0, 0);
        frame.close();
        onFrame(canvas);
      },
      error: (e) => { state = 'failed'; videoStatus(`decoder error: ${e.message}`); },
    });
    decoder.configure(config); // no description: Annex-B, SPS/PPS in-band
  }

  window.demo.decoder = 'webcodecs';
  return (buf) => {
    const b = new Uint8Array(buf);
    const units = nalUnits(b);
    const key = units.some((u) => u.type === 5);
    if (state === 'waiting') {
      const sps = units.find((u) => u.type === 7);
      if (!key || !sps) return; // a viewer starts at a keyframe
      state = 'configuring';
      pending = [[b, key]];
      configure(b, sps).then(() => {
        state = 'decoding';
        videoStatus('playing (H.264, WebCodecs)');
        for (const [p, k] of pending) decode(p, k);
        pending = [];
      }, (e) => {
        state = 'failed';
        videoStatus(e.message);
      });
    } else if (state === 'configuring') {
      pending.push([b, key]);
    } else if (state === 'decoding') {
      decode(b, key);
    }
  };
}

// ---- H.264 in fragmented MP4: Media Source Extensions ----

// Top-level boxes: [{ type, at, size }].
function boxes(b) {
  const out = [];
  for (let at = 0; at + 8 <= b.length;) {
    const size = ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
    if (size < 8 || at + size > b.length) break;
    out.push({ type: String.fromCharCode(b[at + 4], b[at + 5], b[at + 6], b[at + 7]), at, size });
    at += size;
  }
  return out;
}

// Every key chunk is ftyp+moov followed by the keyframe's moof+mdat (host/video.h): the init
// segment is appended once, then only the fragments.
function mp4Player(canvas) {
  const ctx = canvas.getContext('2d');
  const video = document.createElement('video');
  const queue = [];
  let sb = null;
  let started = false;

  video.muted = true;
  video.playsInline = true;
  function pump() {
    if (sb && !sb.updating && queue.length) sb.appendBuffer(queue.shift());
  }
  function draw() {
    if (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
    }
    ctx.drawImage(video, 0, 0);
    onFrame(canvas);
    video.requestVideoFrameCallback(draw);
  }
  function start(b) {
    const i = b.findIndex((x, j) => x === 0x61 && b[j + 1] === 0x76 && b[j + 2] === 0x63 && b[j + 3] === 0x43); // avcC
    const codec = i > 0 ? avc1(b, i + 5) : 'avc1.42C01E';
    const type = `video/mp4; codecs="${codec}"`;
    window.demo.codec = codec;
    $('codec').textContent = codec;
    if (typeof window.MediaSource === 'undefined' || !window.MediaSource.isTypeSupported(type)) {
      videoStatus(`unsupported: this browser cannot play ${type} with Media Source Extensions`);
      return false;
    }
    const ms = new window.MediaSource();
    ms.addEventListener('sourceopen', () => {
      sb = ms.addSourceBuffer(type);
      sb.addEventListener('updateend', () => {
        // jump to the live edge once, then keep the buffer short
        if (sb.buffered.length && video.paused) {
          video.currentTime = sb.buffered.start(0);
          video.play().catch((e) => videoStatus(`cannot play: ${e.message}`));
        } else if (sb.buffered.length && video.currentTime - sb.buffered.start(0) > 10) {
          sb.remove(0, video.currentTime - 5);
          return;
        }
        if (sb.buffered.length && sb.buffered.end(0) - video.currentTime > 0.5) {
          video.currentTime = sb.buffered.end(0) - 0.05; // fell behind
        }
        pump();
      });
      pump();
    });
    video.src = URL.createObjectURL(ms);
    video.requestVideoFrameCallback(draw);
    videoStatus('playing (H.264 fMP4, Media Source Extensions)');
    return true;
  }

  window.demo.decoder = 'mse';
  return (buf) => {
    const b = new Uint8Array(buf);
    const list = boxes(b);
    if (!started) {
      if (!list.length || list[0].type !== 'ftyp') return; // a viewer starts at a key chunk
      if (!start(b)) {
        started = null;
        return;
      }
      started = true;
      queue.push(b);
    } else if (started) {
      const moof = list.find((x) => x.type === 'moof');
      if (moof) queue.push(b.subarray(moof.at));
    }
    pump();
  };
}

// ---- choosing ----

function choosePlayer(want, kind, canvas) {
  if (kind === 'ts' && want !== 'h264') return jsmpegPlayer(canvas);
  if (kind === 'annexb' && want !== 'mpeg1') return h264Player(canvas);
  if (kind === 'fmp4' && want !== 'mpeg1') return mp4Player(canvas);
  if (kind === 'ts') throw new Error('unsupported: H.264 in MPEG-TS is not played here (relay host --format annexb or fmp4)');
  throw new Error(`the stream is ${kind}, not ${want === 'mpeg1' ? 'MPEG-TS' : 'H.264'}`);
}

function connectVideo(ev) {
  ev.preventDefault();
  const canvas = $('video');
  const want = $('video-codec').value;
  let push = null;
  if (window.demo.video) window.demo.video.stopped = true;
  window.demo.video = keepOpen($('video-url').value, $('video-token').value, {
    status: videoStatus,
    open: () => {
      push = null; // a new link starts anywhere in the stream: a fresh player waits for a keyframe
      videoStatus('connected, waiting for video');
    },
    message: (e) => {
      if (push === false || typeof e.data === 'string') return;
      if (!push) {
        const kind = detect(new Uint8Array(e.data));
        $('format').textContent = kind;
        try {
          push = choosePlayer(want, kind, canvas);
        } catch (err) {
          push = false;
          videoStatus(err.message);
          return;
        }
        if (window.demo.decoder === 'jsmpeg') videoStatus('playing (MPEG-1, JSMpeg)');
        $('decoder').textContent = window.demo.decoder;
      }
      push(e.data);
    },
  });
}

function log(line) {
  window.demo.data.push(line);
  const pre = $('data-log');
  pre.textContent += `${line}\n`;
  pre.scrollTop = pre.scrollHeight;
}

function connectData(ev) {
  ev.preventDefault();
  if (window.demo.dataLink) window.demo.dataLink.stopped = true;
  window.demo.dataLink = keepOpen($('data-url').value, $('data-token').value, {
    status: (text) => { $('data-status').textContent = text; },
    open: (ws) => { window.demo.ws = ws; $('data-status').textContent = 'connected'; },
    message: (e) => log(typeof e.data === 'string' ? e.data : new TextDecoder().decode(e.data)),
  });
}

function send(ev) {
  ev.preventDefault();
  const ws = window.demo.ws;
  if (ws && ws.readyState === 1) {
    ws.send($('command').value);
    $('command').value = '';
  }
}

const codecParam = new URLSearchParams(window.location.search).get('codec');
if (['auto', 'mpeg1', 'h264'].includes(codecParam)) $('video-codec').value = codecParam;
$('video-form').addEventListener('submit', connectVideo);
$('data-form').addEventListener('submit', connectData);
$('send-form').addEventListener('submit', send);
