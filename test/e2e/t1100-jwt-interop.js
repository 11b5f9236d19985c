// t1100: relay's JWTs interoperate with an independent implementation (node's crypto):
// tokens minted by `relay token` verify in node, and tokens made in node verify with
// `relay token verify`, for HS, RS and ES algorithms; tampering is caught on both sides.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { test, ok, eq, run, relaySync, tmpdir } = require('./lib.js');

const dir = tmpdir();
const secret = 'interop-' + crypto.randomBytes(8).toString('hex');
const secretFile = path.join(dir, 'secret');
fs.writeFileSync(secretFile, secret + '\n');
const AUD = 'https://relay.test/access';

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const hashOf = (alg) => ({ 256: 'sha256', 384: 'sha384', 512: 'sha512' })[alg.slice(2)];

function writeKeyPair(alg) {
  const opts = alg.startsWith('RS')
    ? ['rsa', { modulusLength: 2048 }]
    : ['ec', { namedCurve: { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' }[alg] }];
  const { privateKey, publicKey } = crypto.generateKeyPairSync(...opts);
  const priv = path.join(dir, `${alg}.key`);
  const pub = path.join(dir, `${alg}.pub`);
  fs.writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
  return { privateKey, publicKey, priv, pub };
}

function nodeSign(alg, claims, key) {
  const input = `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  let sig;
  if (alg.startsWith('HS')) sig = crypto.createHmac(hashOf(alg), key).update(input).digest();
  else sig = crypto.sign(hashOf(alg), Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64u(sig)}`;
}

function nodeVerify(alg, token, key) {
  const [h, p, s] = token.split('.');
  const input = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, 'base64url');
  if (JSON.parse(Buffer.from(h, 'base64url')).alg !== alg) return false;
  if (alg.startsWith('HS')) {
    const mac = crypto.createHmac(hashOf(alg), key).update(input).digest();
    return mac.length === sig.length && crypto.timingSafeEqual(mac, sig);
  }
  return crypto.verify(hashOf(alg), input, { key, dsaEncoding: 'ieee-p1363' }, sig);
}

const claimsOf = (t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url'));

function mint(args) {
  const r = relaySync(['token', '--audience', AUD, '--topic', 'interop', '--lifetime', '10m',
    '--booking-id', 'b1', ...args], { env: {} });
  eq(r.status, 0, `relay token ${args.join(' ')} exit status (${r.stderr.trim()})`);
  return r.stdout.trim();
}

function verifyWithRelay(token, args) {
  return relaySync(['token', 'verify', '--audience', AUD, ...args, token], { env: {} });
}

function freshClaims() {
  const now = Math.floor(Date.now() / 1000);
  return { topic: 'interop', prefix: 'session', scopes: ['read', 'write'], booking_id: 'b2',
    aud: AUD, iat: now, nbf: now, exp: now + 600, sub: 'node' };
}

for (const alg of ['HS256', 'HS384', 'HS512']) {
  test(`relay mints ${alg}, node verifies`, () => {
    const t = mint(['--algorithm', alg, '--secret-file', secretFile]);
    ok(nodeVerify(alg, t, secret), `node verifies relay's ${alg} signature`);
    ok(!nodeVerify(alg, t, secret + 'x'), 'node refuses it with another secret');
    const c = claimsOf(t);
    eq([c.topic, c.prefix, c.booking_id, c.aud], ['interop', 'session', 'b1', [AUD]], 'claims');
    eq(c.exp - c.nbf, 600, 'exp - nbf is the lifetime');
  });
  test(`node mints ${alg}, relay verifies`, () => {
    const t = nodeSign(alg, freshClaims(), secret);
    const r = verifyWithRelay(t, ['--algorithm', alg, '--secret-file', secretFile]);
    eq(r.status, 0, `relay token verify exit status (${r.stderr.trim()})`);
    eq(JSON.parse(r.stdout).sub, 'node', 'claims printed as JSON');
    const bad = t.slice(0, -3) + (t.endsWith('AAA') ? 'BBB' : 'AAA');
    eq(verifyWithRelay(bad, ['--algorithm', alg, '--secret-file', secretFile]).status, 1,
      'tampered signature refused');
  });
}

for (const alg of ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512']) {
  const keys = writeKeyPair(alg);
  test(`relay mints ${alg}, node verifies`, () => {
    const t = mint(['--algorithm', alg, '--key', keys.priv]);
    ok(nodeVerify(alg, t, keys.publicKey), `node verifies relay's ${alg} signature`);
  });
  test(`node mints ${alg}, relay verifies`, () => {
    const t = nodeSign(alg, freshClaims(), keys.privateKey);
    const r = verifyWithRelay(t, ['--algorithm', alg, '--key', keys.pub]);
    eq(r.status, 0, `relay token verify exit status (${r.stderr.trim()})`);
    const [h, p, s] = t.split('.');
    const claims = { ...claimsOf(t), topic: 'other' };
    const swapped = `${h}.${b64u(JSON.stringify(claims))}.${s}`;
    eq(verifyWithRelay(swapped, ['--algorithm', alg, '--key', keys.pub]).status, 1,
      'payload swapped under a valid signature is refused');
  });
}

test('HS256 signed with the RSA public key is refused by an RS256 verifier', () => {
  const keys = writeKeyPair('RS256');
  const pem = fs.readFileSync(keys.pub);
  const forged = nodeSign('HS256', freshClaims(), pem);
  const r = verifyWithRelay(forged, ['--algorithm', 'RS256', '--key', keys.pub]);
  eq(r.status, 1, 'algorithm confusion refused');
  ok(/algorithm/.test(r.stderr), `reason names the algorithm (${r.stderr.trim()})`);
});

test('alg none is refused', () => {
  const t = `${b64u(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64u(JSON.stringify(freshClaims()))}.`;
  const r = verifyWithRelay(t, ['--secret-file', secretFile]);
  eq(r.status, 1, 'alg none refused');
  ok(/none/.test(r.stderr), `reason names alg none (${r.stderr.trim()})`);
});

run();
