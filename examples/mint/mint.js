// Mint a private-origin stream URL with Node's standard library only (Node >= 16).
//
// Usage (the secret comes from the environment, never the command line):
//
//   ORIGIN_SECRET=... [ORIGIN_KEY_ID=2026-02] [ORIGIN_BASE_URL=http://nas:8080] \
//       node mint.js LOCATOR [BACKEND]
//
// Prints the token, or the stream URL when ORIGIN_BASE_URL is set. The expiry
// is one hour from now rounded up to the next 5 minutes (ORIGIN_EXP overrides it).
'use strict';

const crypto = require('node:crypto');

// Unpadded base64url of a string's UTF-8 bytes, or of a Buffer.
const b64url = (data) => Buffer.from(data).toString('base64url');

function mintOriginToken(secret, locator, expiresAt, { backend, keyId } = {}) {
  const header = keyId ? { alg: 'HS256', kid: keyId, typ: 'JWT' } : { alg: 'HS256', typ: 'JWT' };
  const claims = { locator };
  if (backend !== undefined) claims.backend = backend;
  claims.exp = expiresAt;
  const signingInput = b64url(JSON.stringify(header)) + '.' + b64url(JSON.stringify(claims));
  const mac = crypto.createHmac('sha256', Buffer.from(secret, 'utf8')).update(signingInput).digest();
  return signingInput + '.' + b64url(mac);
}

// At least `ttl` seconds from now, rounded up so that re-minted URLs repeat within a bucket.
function roundedExpiry(nowSeconds, ttl = 3600, bucket = 300) {
  return Math.ceil((nowSeconds + ttl) / bucket) * bucket;
}

const streamUrl = (baseUrl, token) => baseUrl.replace(/\/+$/, '') + '/api/private-origin/stream/' + token;

module.exports = { mintOriginToken, roundedExpiry, streamUrl };

if (require.main === module) {
  const [locator, backend] = process.argv.slice(2);
  const secret = process.env.ORIGIN_SECRET;
  if (!locator || process.argv.length > 4 || !secret) {
    process.stderr.write('usage: ORIGIN_SECRET=... node mint.js LOCATOR [BACKEND]\n');
    process.exit(2);
  }
  const exp = process.env.ORIGIN_EXP ? Number(process.env.ORIGIN_EXP) : roundedExpiry(Date.now() / 1000);
  const token = mintOriginToken(secret, locator, exp, { backend, keyId: process.env.ORIGIN_KEY_ID || undefined });
  const baseUrl = process.env.ORIGIN_BASE_URL;
  process.stdout.write((baseUrl ? streamUrl(baseUrl, token) : token) + '\n');
}
