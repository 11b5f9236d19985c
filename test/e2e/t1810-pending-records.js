// t1810: the relay's record of a connection without a whole request head (relay/pending.c) must go
// when the connection goes, however lws ends it. Records were found through lws's opaque pointer,
// which adoption clears: TLS connections ending in ways wrk's churn produces left records behind,
// each counting against --max-pending-per-address (ordinary clients refused) until the head
// deadline, when the sweep handed the freed connection to lws (a crash). Here wrk (a client nobody
// here wrote) churns TLS connections; afterwards no record may be left and nobody refused.
'use strict';
const { execFile } = require('child_process');
const { test, ok, eq, run, until, startRelay } = require('./lib.js');

function wrk(url) {
  return new Promise((resolve) => {
    execFile('wrk', ['-t2', '-c32', '-d2s', url], { timeout: 20000 }, (err, stdout) => resolve({ err, out: stdout || '' }));
  });
}

async function pending(r) {
  const m = /^relay_connections_pending (\d+)$/m.exec(await (await fetch(`${r.base}/metrics`)).text());
  return m ? Number(m[1]) : -1;
}

test('TLS churn from wrk leaves no pending record and refuses nobody', async () => {
  // A head deadline longer than the test: a leftover record shows as a gauge that never returns
  // to 0, not as a sweep that may or may not crash in time.
  const r = await startRelay({ args: ['--http-timeout', '60s', '--access-rate', '0', '--log-level', 'info'] });
  try {
    for (let i = 0; i < 3; i++) {
      const w = await wrk(`${r.base}/healthz`);
      ok(/Requests\/sec/.test(w.out), `wrk run ${i + 1} completed (${w.err ? w.err.message : 'ok'})`);
      ok(!/Socket errors: connect [1-9]/.test(w.out), `wrk run ${i + 1}: no connection refused`);
    }
    await until(async () => (await pending(r)) === 0, 5000, 'no connection pending once wrk is gone');
    eq(await pending(r), 0, 'pending gauge back to 0');
    ok(!/over max_pending_per_address/.test(r.log), 'nobody refused for the per-address cap');
  } finally {
    await r.stop();
  }
});

run();
