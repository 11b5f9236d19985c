// redis-lib.js: what the cluster tests of the deny/allow sync (t6030-t6032) share: a
// redis-server on 127.0.0.1 and a TCP proxy in front of it whose connections can be cut or
// black-holed, so that one instance's link goes down while the others' stay up. Each takes the
// test's R = { port, proc }.
'use strict';
const net = require('net');
const { execFileSync } = require('child_process');
const { until, freePort, spawnTracked, tmpdir } = require('./lib.js');

// Start redis-server at R.port (a free port the first time, the same one after stopRedis()).
async function startRedis(R) {
  R.port = R.port || await freePort();
  const p = spawnTracked('redis-server', ['--port', String(R.port), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', tmpdir()]);
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  await until(() => /Ready to accept connections/.test(out), 10000, 'redis-server ready');
  p.exitPromise = new Promise((resolve) => p.on('exit', resolve));
  R.proc = p;
}

async function stopRedis(R) {
  R.proc.kill('SIGKILL');
  await R.proc.exitPromise;
  R.proc = null;
}

function redisCli(R, ...args) {
  return execFileSync('redis-cli', ['-p', String(R.port), ...args], { encoding: 'utf8', timeout: 10000 }).trim();
}

// A proxy to R's redis: down() cuts every connection and refuses new ones; up() listens again;
// px.hole = true keeps connections open but passes nothing (a dead route).
async function proxy(R) {
  const px = { port: await freePort(), socks: new Set(), server: null, hole: false };
  px.up = () => new Promise((resolve) => {
    px.server = net.createServer((c) => {
      const u = net.connect(R.port, '127.0.0.1');
      px.socks.add(c); px.socks.add(u);
      c.on('data', (d) => { if (!px.hole) u.write(d); });
      u.on('data', (d) => { if (!px.hole) c.write(d); });
      const kill = () => { c.destroy(); u.destroy(); px.socks.delete(c); px.socks.delete(u); };
      c.on('error', kill); u.on('error', kill); c.on('close', kill); u.on('close', kill);
    });
    px.server.listen(px.port, '127.0.0.1', resolve);
  });
  px.down = () => new Promise((resolve) => {
    for (const s of px.socks) s.destroy();
    px.socks.clear();
    px.server.close(() => resolve());
  });
  await px.up();
  return px;
}

module.exports = { startRedis, stopRedis, redisCli, proxy };
