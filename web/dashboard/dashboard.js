// relay's operator dashboard: reads the reserved `stats` topic (one JSON array of connection
// reports per --stats-every) and shows topics, rates, a plot of delivered messages/s per topic
// and the live bookings, with a Deny button (POST /bids/deny) when an admin token is given.
// Entries with a `kind` (private channels, signaling and meeting peers, TURN allocations per
// booking) get tables of their own; topics count only the /session members (no kind).
// No inline code anywhere, so the page runs under `script-src 'self'`.
'use strict';

const HISTORY = 60;           // samples kept per topic for the plot
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;

const $ = (sel) => document.querySelector(sel);
const el = {
  form: $('#connect-form'),
  statsToken: $('#stats-token'),
  adminToken: $('#admin-token'),
  connect: $('#connect'),
  disconnect: $('#disconnect'),
  status: $('#status'),
  topics: $('#topics tbody'),
  topicsEmpty: $('#topics-empty'),
  bookings: $('#bookings tbody'),
  bookingsEmpty: $('#bookings-empty'),
  denyResult: $('#deny-result'),
  channels: $('#channels tbody'),
  channelsEmpty: $('#channels-empty'),
  peers: $('#peers tbody'),
  peersEmpty: $('#peers-empty'),
  turn: $('#turn tbody'),
  turnEmpty: $('#turn-empty'),
};

const state = {
  statsToken: '',
  ws: null,
  wanted: false,          // the operator asked to be connected
  attempt: 0,             // consecutive failures, for the backoff
  retryTimer: null,
  history: new Map(),     // topic -> [delivered msg/s, ...]
  topicRows: new Map(),   // topic -> row elements
  bookingRows: new Map(), // booking id -> row elements
  bookings: [],           // last computed bookings
};

// ---- status line ----

function setStatus(kind, text) {
  el.status.dataset.state = kind;
  el.status.textContent = text;
}

// The server's error body is {"code","message"}; fall back to the status text.
async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body && body.message) return body.message;
  } catch (_) { /* not JSON */ }
  return res.statusText || 'error';
}

// ---- connection ----

// Forget the current socket (its close handler then sees it is no longer state.ws).
function dropSocket() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  if (state.ws) {
    const old = state.ws;
    state.ws = null;
    old.close(1000);
  }
}

function connect() {
  dropSocket();
  state.wanted = true;
  el.disconnect.disabled = false;
  open().catch((e) => retry(`cannot reach the relay: ${e.message}`));
}

function disconnect() {
  state.wanted = false;
  dropSocket();
  el.disconnect.disabled = true;
  setStatus('disconnected', 'disconnected');
}

async function open() {
  setStatus('connecting', 'connecting…');
  const res = await fetch(`${location.origin}/session/stats`, {
    method: 'POST',
    headers: { Authorization: state.statsToken },
  });
  if (!state.wanted) return;
  if (!res.ok) {
    const msg = `access refused (${res.status}): ${await errorMessage(res)}`;
    // A refused token will not become valid by retrying; overload and rate limits pass.
    if (res.status === 401 || res.status === 403) {
      state.wanted = false;
      el.disconnect.disabled = true;
      setStatus('error', msg);
    } else {
      retry(msg);
    }
    return;
  }
  const { uri } = await res.json();
  if (!state.wanted) return;
  const ws = new WebSocket(uri);
  state.ws = ws;
  ws.onopen = () => {
    if (state.ws === ws) setStatus('connected', 'connected, waiting for the first report');
  };
  ws.onmessage = (ev) => {
    if (state.ws !== ws || typeof ev.data !== 'string') return;
    let report;
    try {
      report = JSON.parse(ev.data);
    } catch (e) {
      setStatus('error', `bad report: ${e.message}`);
      return;
    }
    if (!Array.isArray(report)) return;
    state.attempt = 0;
    render(report);
    const n = report.filter((c) => c.kind !== 'turn').length; // websockets, not allocations
    const topics = new Set(report.filter((c) => !c.kind).map((c) => c.topic)).size;
    setStatus('connected', `connected: ${n} connection${n === 1 ? '' : 's'} on ${topics} ` +
      `topic${topics === 1 ? '' : 's'}, report at ${new Date().toLocaleTimeString()}`);
  };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return; // replaced or closed on purpose
    state.ws = null;
    const why = ev.reason ? `${ev.code} ${ev.reason}` : `${ev.code}`;
    retry(`disconnected (${why})`);
  };
}

function retry(why) {
  if (!state.wanted) return;
  const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
  state.attempt++;
  setStatus('disconnected', `${why}; reconnecting in ${Math.round(delay / 1000)} s`);
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(() => {
    state.retryTimer = null;
    if (state.wanted) open().catch((e) => retry(`cannot reach the relay: ${e.message}`));
  }, delay);
}

// ---- aggregation ----

function summarizeTopics(report) {
  const topics = new Map();
  for (const c of report) {
    if (c.kind) continue; // not a topic member: tables of their own
    let t = topics.get(c.topic);
    if (!t) {
      t = { topic: c.topic, connections: 0, readers: 0, writers: 0, rateIn: 0, rateOut: 0, dropped: 0 };
      topics.set(c.topic, t);
    }
    const s = c.stats || {};
    t.connections++;
    if (c.can_read) t.readers++;
    if (c.can_write) t.writers++;
    t.rateIn += (s.rx && s.rx.fps) || 0;
    t.rateOut += (s.tx && s.tx.fps) || 0;
    t.dropped += s.dropped || 0;
  }
  return [...topics.values()].sort((a, b) => a.topic.localeCompare(b.topic));
}

function summarizeBookings(report) {
  const bookings = new Map();
  for (const c of report) {
    if (!c.booking_id || c.kind === 'turn') continue; // allocations: the TURN table
    let b = bookings.get(c.booking_id);
    const exp = Date.parse(c.expires_at);
    if (!b) {
      b = { id: c.booking_id, topics: new Set(), connections: 0, first: Infinity, last: -Infinity };
      bookings.set(c.booking_id, b);
    }
    b.topics.add(c.topic);
    b.connections++;
    if (Number.isFinite(exp)) {
      b.first = Math.min(b.first, exp);
      b.last = Math.max(b.last, exp);
    }
  }
  return [...bookings.values()].sort((a, b) => a.first - b.first || a.id.localeCompare(b.id));
}

// ---- rendering ----

function cell(row, cls) {
  const td = document.createElement('td');
  td.className = cls;
  row.appendChild(td);
  return td;
}

// Put @tr at position @i of @tbody, moving it only when it is elsewhere.
function place(tbody, tr, i) {
  if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
}

const fmtRate = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

function render(report) {
  renderTopics(summarizeTopics(report));
  state.bookings = summarizeBookings(report);
  renderBookings();
  renderChannels(report);
  renderPeers(report);
  renderTurn(report);
}

const bytesOf = (s, dir) => (s && s[dir] && Number(s[dir].bytes)) || 0;

// Rebuild @tbody from @rows (small tables: a few dozen rows at most per report). Each row is
// {key: {data-attribute: value}, cells: [[class, text], ...]}; text only, never HTML.
function fillTable(tbody, empty, rows) {
  const trs = rows.map((row) => {
    const tr = document.createElement('tr');
    for (const [k, v] of Object.entries(row.key)) tr.dataset[k] = v;
    for (const [cls, text] of row.cells) cell(tr, cls).textContent = String(text);
    return tr;
  });
  tbody.replaceChildren(...trs);
  empty.hidden = rows.length > 0;
}

// Private channels (/connect): per host, its control connection and each channel's two ends.
// rx: bytes from that side into the relay; tx: bytes the relay wrote to it.
function renderChannels(report) {
  const order = { host: 0, 'channel-host': 1, client: 2 };
  const rows = report.filter((c) => c.kind === 'connect')
    .sort((a, b) => a.topic.localeCompare(b.topic) || (a.channel || '').localeCompare(b.channel || '') ||
      order[a.role] - order[b.role])
    .map((c) => {
      const st = c.stats || {};
      const state = c.role === 'host' ? `${c.channels} channel${c.channels === 1 ? '' : 's'}`
        : `${c.paired ? 'paired' : 'waiting'}${st.paused ? ', paused' : ''}`;
      return {
        key: { host: c.topic, role: c.role, channel: c.channel || '' },
        cells: [['host', c.topic], ['role', c.role], ['channel', c.channel || ''], ['client', c.client || ''],
          ['bytes-in num', c.role === 'host' ? '' : bytesOf(st, 'rx')],
          ['bytes-out num', c.role === 'host' ? '' : bytesOf(st, 'tx')], ['state', state],
          ['remote', c.remote_addr || '']],
      };
    });
  fillTable(el.channels, el.channelsEmpty, rows);
}

// Signaling peers (/signal, by realm) and meeting participants (/meet, by meeting).
function renderPeers(report) {
  const rows = report.filter((c) => c.kind === 'signal' || c.kind === 'meet')
    .map((c) => ({ c, group: c.kind === 'signal' ? c.realm : c.meeting }))
    .sort((a, b) => a.c.kind.localeCompare(b.c.kind) || a.group.localeCompare(b.group) ||
      a.c.peer.localeCompare(b.c.peer))
    .map(({ c, group }) => ({
      key: { kind: c.kind, group, peer: c.peer },
      cells: [['kind', c.kind], ['group', group], ['peer', c.peer], ['remote', c.remote_addr || ''],
        ['connected', (c.connected_at || '').replace('T', ' ').replace('Z', '')],
        ['delivered num', c.kind === 'signal' ? c.delivered : ''],
        ['refused num', c.kind === 'signal' ? c.refused : '']],
    }));
  fillTable(el.peers, el.peersEmpty, rows);
}

// TURN allocations per booking: rx is what its clients sent to peers, tx what peers sent back.
function renderTurn(report) {
  const rows = report.filter((c) => c.kind === 'turn')
    .sort((a, b) => a.booking_id.localeCompare(b.booking_id))
    .map((c) => ({
      key: { booking: c.booking_id },
      cells: [['booking', c.booking_id], ['allocations num', c.allocations],
        ['bytes-to-peers num', bytesOf(c.stats, 'rx')], ['bytes-from-peers num', bytesOf(c.stats, 'tx')]],
    }));
  fillTable(el.turn, el.turnEmpty, rows);
}

function renderTopics(topics) {
  const seen = new Set();
  topics.forEach((t, i) => {
    seen.add(t.topic);
    let r = state.topicRows.get(t.topic);
    if (!r) {
      const tr = document.createElement('tr');
      tr.dataset.topic = t.topic;
      r = { tr };
      for (const k of ['topic', 'connections', 'readers', 'writers', 'rate-in', 'rate-out', 'dropped'])
        r[k] = cell(tr, k === 'topic' ? k : `${k} num`);
      r.topic.textContent = t.topic;
      const canvas = document.createElement('canvas');
      canvas.className = 'plot';
      canvas.width = 240;
      canvas.height = 48;
      cell(tr, 'plot-cell').appendChild(canvas);
      r.canvas = canvas;
      state.topicRows.set(t.topic, r);
      state.history.set(t.topic, []);
    }
    place(el.topics, r.tr, i);
    r.connections.textContent = t.connections;
    r.readers.textContent = t.readers;
    r.writers.textContent = t.writers;
    r['rate-in'].textContent = fmtRate(t.rateIn);
    r['rate-out'].textContent = fmtRate(t.rateOut);
    r['rate-out'].dataset.value = t.rateOut;
    r.dropped.textContent = t.dropped;
    const h = state.history.get(t.topic);
    h.push(t.rateOut);
    if (h.length > HISTORY) h.shift();
    drawPlot(r.canvas, h);
    r.canvas.dataset.samples = h.length;
  });
  for (const [topic, r] of state.topicRows) {
    if (seen.has(topic)) continue;
    r.tr.remove();
    state.topicRows.delete(topic);
    state.history.delete(topic);
  }
  el.topicsEmpty.hidden = topics.length > 0;
}

function drawPlot(canvas, samples) {
  const ctx = canvas.getContext('2d');
  const w = canvas.width;
  const h = canvas.height;
  const top = 12; // room for the scale label
  const max = Math.max(1, ...samples);
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = '#f4f6f8';
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = '#556';
  ctx.font = '10px sans-serif';
  ctx.textBaseline = 'top';
  ctx.fillText(`max ${fmtRate(max)}/s`, 3, 1);
  if (samples.length < 1) return;
  const step = w / (HISTORY - 1);
  const x0 = w - (samples.length - 1) * step;
  const y = (v) => h - 1 - (v / max) * (h - top - 2);
  ctx.beginPath();
  samples.forEach((v, i) => (i ? ctx.lineTo(x0 + i * step, y(v)) : ctx.moveTo(x0, y(v))));
  ctx.lineTo(x0 + (samples.length - 1) * step, h);
  ctx.lineTo(x0, h);
  ctx.closePath();
  ctx.fillStyle = 'rgba(31, 111, 180, 0.2)';
  ctx.fill();
  ctx.beginPath();
  samples.forEach((v, i) => (i ? ctx.lineTo(x0 + i * step, y(v)) : ctx.moveTo(x0, y(v))));
  ctx.strokeStyle = '#1f6fb4';
  ctx.lineWidth = 1.5;
  ctx.stroke();
}

const isoSeconds = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

function timeLeft(ms) {
  if (!Number.isFinite(ms)) return '?';
  if (ms <= 0) return 'expired';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x) => String(x).padStart(2, '0');
  return h ? `${h}h ${pad(m)}m` : `${m}m ${pad(s % 60)}s`;
}

function renderBookings() {
  const seen = new Set();
  const admin = el.adminToken.value.trim() !== '';
  state.bookings.forEach((b, i) => {
    seen.add(b.id);
    let r = state.bookingRows.get(b.id);
    if (!r) {
      const tr = document.createElement('tr');
      tr.dataset.booking = b.id;
      r = { tr };
      for (const k of ['booking', 'topics', 'connections', 'expires', 'time-left'])
        r[k] = cell(tr, ['connections', 'time-left'].includes(k) ? `${k} num` : k);
      r.booking.textContent = b.id;
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'deny';
      button.textContent = 'Deny';
      button.dataset.booking = b.id;
      button.addEventListener('click', () => deny(b.id));
      cell(tr, 'actions').appendChild(button);
      r.button = button;
      state.bookingRows.set(b.id, r);
    }
    place(el.bookings, r.tr, i);
    r.topics.textContent = [...b.topics].sort().join(', ');
    r.connections.textContent = b.connections;
    r.expires.textContent = Number.isFinite(b.first) ? isoSeconds(b.first) : '?';
    r['time-left'].textContent = timeLeft(b.first - Date.now());
    r.button.disabled = !admin;
    r.button.title = admin ? `deny booking ${b.id}` : 'give an admin token to deny bookings';
  });
  for (const [id, r] of state.bookingRows) {
    if (seen.has(id)) continue;
    r.tr.remove();
    state.bookingRows.delete(id);
  }
  el.bookingsEmpty.hidden = state.bookings.length > 0;
}

// ---- deny ----

function showResult(kind, text) {
  el.denyResult.dataset.result = kind;
  el.denyResult.textContent = text;
}

async function deny(id) {
  const admin = el.adminToken.value.trim();
  const b = state.bookings.find((x) => x.id === id);
  if (!admin || !b) return;
  if (!confirm(`Deny booking ${id}? Its connections close now and it cannot reconnect.`)) return;
  // Deny at least until the booking's last token expires (it cannot come back after that).
  const now = Math.floor(Date.now() / 1000);
  const exp = Math.max(now + 60, Number.isFinite(b.last) ? Math.ceil(b.last / 1000) : now + 3600);
  try {
    const res = await fetch(`${location.origin}/bids/deny?bid=${encodeURIComponent(id)}&exp=${exp}`, {
      method: 'POST',
      headers: { Authorization: admin },
    });
    if (res.ok) showResult('ok', `denied ${id} until ${isoSeconds(exp * 1000)}`);
    else showResult('error', `deny ${id} refused (${res.status}): ${await errorMessage(res)}`);
  } catch (e) {
    showResult('error', `deny ${id} failed: ${e.message}`);
  }
}

// ---- wiring ----

el.form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  state.statsToken = el.statsToken.value.trim();
  if (!state.statsToken) {
    setStatus('error', 'a stats token is needed');
    return;
  }
  state.attempt = 0;
  connect();
});
el.disconnect.addEventListener('click', disconnect);
el.adminToken.addEventListener('input', renderBookings);
setInterval(renderBookings, 1000); // time left
