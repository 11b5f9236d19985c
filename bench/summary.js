// Prints a Markdown table of medians from relay file bench's JSON lines (bench/run.sh).
'use strict';
const fs = require('fs');
const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const groups = new Map();
for (const r of rows) {
  const key = `${r.scenario}|${r.tls}`;
  if (!groups.has(key)) groups.set(key, []);
  groups.get(key).push(r);
}
const median = (xs) => {
  const s = xs.filter((x) => x !== undefined).sort((a, b) => a - b);
  if (!s.length) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x, d = 0) => (x === undefined ? '—' : Number(x).toFixed(d));
console.log('| scenario | tls | runs | delivered msg/s | MB/s | p50 µs | p99 µs | max µs | drops | errors | server CPU s | peak RSS MiB | idle RSS +MiB |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [key, rs] of groups) {
  const [name, tls] = key.split('|');
  const m = (f) => median(rs.map(f));
  console.log(`| ${name} | ${tls === 'yes' ? 'wss' : 'ws'} | ${rs.length} | ${fmt(m((r) => r.msgs_per_s))} | ${fmt(m((r) => r.mb_per_s), 1)} | ` +
    `${fmt(m((r) => r.p50_us))} | ${fmt(m((r) => r.p99_us))} | ${fmt(m((r) => r.max_us))} | ${fmt(m((r) => r.drops))} | ` +
    `${fmt(m((r) => r.errors))} | ${fmt(m((r) => r.server_cpu_s), 2)} | ${fmt(m((r) => r.server_peak_rss_kb / 1024), 1)} | ` +
    `${fmt(m((r) => (r.idle_rss_delta_kb === undefined ? undefined : r.idle_rss_delta_kb / 1024)), 1)} |`);
}

// Lossless back-pressure (issue 11): one reader that takes unpaced 64 KiB messages at its own
// pace must lose none of them.
const lost = (tls) => {
  const rs = groups.get(`unpaced 1->1 65536B|${tls}`);
  return rs && `${fmt(median(rs.map((r) => r.drops)))} lost (${tls === 'yes' ? 'wss' : 'ws'}, median of ${rs.length}; most in a run ${Math.max(...rs.map((r) => r.drops))})`;
};
const lostRows = ['no', 'yes'].map(lost).filter(Boolean);
if (lostRows.length) console.log(`\n1->1 64 KiB unpaced: ${lostRows.join('; ')}`);
