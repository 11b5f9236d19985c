// t1320: lossless back-pressure. When every reader of a topic is backed up, the relay stops
// reading from the topic's writers (TCP slows them) instead of dropping; a reader that lags
// behind another that keeps up is still dropped from (or closed), and never slows the others.
'use strict';
const { test, ok, eq, run, startRelay, join, received, until } = require('./lib.js');

const QUEUE = ['--max-message', '64KiB', '--queue-bytes', '1MiB', '--queue-messages', '64', '--access-rate', '0'];

// @n messages of @size bytes, each starting with its sequence number, sent at once (unpaced:
// what the socket does not take waits in the client's buffer).
function sendAll(wr, n, size) {
  for (let i = 0; i < n; i++) {
    const b = Buffer.alloc(size, i & 255);
    b.writeUInt32BE(i, 0);
    wr.send(b);
  }
}

const inOrder = (ws) => ws.inbox.every((m, i) => m.data.readUInt32BE(0) === i);

for (const writePath of ['fast', 'lws']) {
  test(`1 writer -> 1 paused reader, unpaced 64 KiB: nothing lost, in order (--write-path ${writePath})`, async () => {
    const r = await startRelay({ tls: false, args: [...QUEUE, '--write-path', writePath] });
    const rd = await join(r, 'bp', { scopes: ['read'] });
    rd._socket.pause(); // reads nothing until resumed
    const wr = await join(r, 'bp', { scopes: ['write'] });
    const n = 400; // 25 MiB: 25 times the reader's queue
    sendAll(wr, n, 64 * 1024);
    const paused = await r.waitLog(/pausing reading: every reader is backed up/, 10000).then(() => true, () => false);
    ok(paused, 'the relay stopped reading from the writer');
    // The writer is held back by TCP: what it sent waits in its own buffer, not the relay's.
    ok(wr.bufferedAmount > 0, `writer still holds ${wr.bufferedAmount} bytes`);
    rd._socket.resume();
    await received(rd, n, 30000).catch(() => {});
    eq(rd.inbox.length, n, 'every message arrived');
    ok(inOrder(rd), 'in order');
    ok(rd.inbox.every((m) => m.data.length === 64 * 1024), 'whole messages');
    rd.close();
    wr.close();
    await r.waitLog(/(left 'bp'[^]*){2}/);
    ok(!/dropped [1-9]/.test(r.log), 'the relay dropped nothing');
    await r.stop();
  });
}

test('a never-reading reader next to a fast one: the fast one gets everything, unslowed', async () => {
  const r = await startRelay({ tls: false, args: QUEUE });
  const never = await join(r, 'mix', { scopes: ['read'] });
  never._socket.pause();
  const fast = await join(r, 'mix', { scopes: ['read'] });
  const wr = await join(r, 'mix', { scopes: ['write'] });
  const n = 3000; // 24 MiB of 8 KiB messages
  sendAll(wr, n, 8 * 1024);
  await received(fast, n, 30000).catch(() => {});
  eq(fast.inbox.length, n, 'fast reader got everything');
  ok(inOrder(fast), 'in order');
  await until(() => wr.bufferedAmount === 0, 10000, 'the writer sent everything');
  never.terminate();
  fast.close();
  wr.close();
  await r.waitLog(/(left 'mix'[^]*){3}/);
  const nums = r.log.split('\n').filter((l) => /left 'mix'/.test(l))
    .map((l) => /in (\d+) msgs, out (\d+) msgs in \d+ writes, dropped (\d+)/.exec(l).slice(1).map(Number));
  ok(nums.some(([i, o, d]) => i === 0 && o < n && o + d === n), 'the never-reading reader was dropped from');
  ok(nums.some(([i, o, d]) => i === 0 && o === n && d === 0), 'the fast reader lost nothing');
  await r.stop();
});

test('queue policy close: the lagging reader is closed, the fast one gets everything', async () => {
  const r = await startRelay({ tls: false, args: [...QUEUE, '--queue-policy', 'close'] });
  const never = await join(r, 'pc', { scopes: ['read'] });
  never._socket.pause();
  const fast = await join(r, 'pc', { scopes: ['read'] });
  const wr = await join(r, 'pc', { scopes: ['write'] });
  const n = 2000;
  sendAll(wr, n, 8 * 1024);
  await received(fast, n, 30000).catch(() => {});
  eq(fast.inbox.length, n, 'fast reader got everything');
  ok(inOrder(fast), 'in order');
  await r.waitLog(/c1: queue full: closing slow reader/, 5000);
  ok(true, 'the never-reading reader was closed by policy');
  for (const ws of [never, fast, wr]) ws.terminate();
  await r.stop();
});

test('a writer that also reads, with one paused reader: nothing lost either way', async () => {
  const r = await startRelay({ tls: false, args: QUEUE });
  const a = await join(r, 'rw', { scopes: ['read', 'write'] });
  const b = await join(r, 'rw', { scopes: ['read', 'write'] });
  b._socket.pause();
  const n = 300;
  sendAll(a, n, 32 * 1024);
  ok(await r.waitLog(/pausing reading/, 10000).then(() => true, () => false), 'a paused');
  b.send(Buffer.from([0, 0, 0, 0])); // b writes too while a's messages wait for it
  b._socket.resume();
  await received(b, n, 30000).catch(() => {});
  await received(a, 1, 10000);
  eq(b.inbox.length, n, 'b got all of a\'s messages');
  ok(inOrder(b), 'in order');
  eq(a.inbox.length, 1, 'a got b\'s message, not its own');
  a.close();
  b.close();
  await r.stop();
});

run({ perTestMs: 90000 });
