// HS256 JWTs for the test owners, signed with the secret the server is started with.

import { createHmac } from 'node:crypto';

import { JWT_SECRET } from './uploader.mjs';

const base64url = (value) => Buffer.from(value).toString('base64url');

/**
 * A bearer token for owner `sub`, valid for an hour.
 * @param {string} sub
 * @returns {string}
 */
export function mintToken(sub) {
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = base64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }));
  const signature = createHmac('sha256', JWT_SECRET).update(`${header}.${claims}`).digest('base64url');
  return `${header}.${claims}.${signature}`;
}
