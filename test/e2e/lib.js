// lib.js: a small harness for relay's node end-to-end tests.
// test(name, fn) registers a test; run() runs them in order, each bounded in time, prints
// "ok"/"not ok" lines and the closing "N passed, N failed", kills every process started with
// spawnTracked() and exits non-zero on failure. Assertions count one each.
'use strict';
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const RELAY = process.env.RELAY;
const tests = [];
const children = new Set();
const tmpdirs = [];
let passed = 0;
let failed = 0;

function test(name, fn) {
  tests.push({ name, fn });
}

function ok(cond, what) {
  if (cond) {
    passed++;
  } else {
    failed++;
    console.log(`  not ok - ${what}`);
  }
}

function eq(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  ok(g === w, `${what}: got ${g}, want ${w}`);
}

function tmpdir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-e2e-'));
  tmpdirs.push(d);
  return d;
}

// Run `relay ARGS` synchronously; returns { status, stdout, stderr }.
function relaySync(args, opts = {}) {
  try {
    const stdout = execFileSync(RELAY, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], timeout: 20000, ...opts });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    return { status: e.status, stdout: e.stdout || '', stderr: e.stderr || '' };
  }
}

function spawnTracked(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

function killAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
  for (const d of tmpdirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

async function run({ perTestMs = 30000 } = {}) {
  process.on('exit', killAll);
  for (const t of tests) {
    const before = failed;
    try {
      await withTimeout(Promise.resolve().then(t.fn), perTestMs, t.name);
    } catch (e) {
      failed++;
      console.log(`  not ok - ${t.name}: ${e && e.stack ? e.stack : e}`);
    }
    console.log(`${failed === before ? 'ok' : 'not ok'} - ${t.name}`);
  }
  killAll();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

module.exports = { test, ok, eq, run, relaySync, spawnTracked, freePort, withTimeout, tmpdir, RELAY };
