// t2020: TURN over TCP keeps serving while its connection table is full of idle sockets. The
// relay holds at most 4,096 TCP/TLS connections to its TURN port (TURN_MAX_STREAMS); at the cap
// the oldest one without an allocation gives way to the newcomer. Refusing the newcomer instead
// (as before) let anyone holding 4,096 idle sockets lock every other client out of TURN over TCP.
'use strict';
const net = require('net');
const crypto = require('crypto');
const { test, ok, eq, run, withTimeout, startRelay } = require('./lib.js');
const { stun } = require('./turnclient.js');

const IDLE = 4200; // past the cap

function connect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', () => resolve(null));
  });
}

// A STUN Binding request over TCP; resolves with the answer's message type.
function binding(port) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = stun.encode(0x0001, crypto.randomBytes(12), []);
    const s = net.connect(port, '127.0.0.1', () => s.write(req));
    s.once('data', (d) => { resolve(d.readUInt16BE(0)); s.destroy(); });
    s.on('error', reject);
  }), 5000, 'a Binding answer over TCP');
}

test('thousands of idle TCP sockets on the TURN port do not lock a client out', async () => {
  const r = await startRelay({ tls: false, args: ['--turn-listen', '127.0.0.1:0'] });
  const socks = [];
  try {
    await r.waitLog(/turn listening on udp\+tcp 127\.0\.0\.1:\d+/);
    const port = Number(/turn listening on udp\+tcp 127\.0\.0\.1:(\d+)/.exec(r.log)[1]);
    eq(await binding(port), 0x0101, 'a Binding over TCP is answered at first');
    for (let i = 0; i < IDLE; i++) socks.push(await connect(port));
    ok(socks.filter(Boolean).length === IDLE, `${IDLE} idle sockets connected`);
    eq(await binding(port), 0x0101, 'a Binding over TCP is still answered with the table full');
    eq(await binding(port), 0x0101, 'and again');
  } finally {
    for (const s of socks) if (s) s.destroy();
    await r.stop();
  }
});

run();
