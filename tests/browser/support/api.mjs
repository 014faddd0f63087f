// The API seen from node, to check what the browser did: real HTTP, answers as they come.

import { createHash } from 'node:crypto';

/**
 * Requests to `server` as the owner of `token`.
 * @param {{url: string}} server
 * @param {string} token
 */
export function apiAs(server, token) {
  const call = async (method, path, body) => {
    const response = await fetch(server.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body && { 'content-type': 'application/json' }) },
      body: body && JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  return {
    asset: (id) => call('GET', `/api/assets/${id}`),
    /** The first page of the owner's assets. */
    list: () => call('GET', '/api/assets'),
    /** Lists the parts storage holds (`uploaded`), signing none. */
    uploadedParts: (id) => call('POST', `/api/upload/${id}/parts`, { part_numbers: [] }),
    complete: (id) => call('PUT', '/api/status', { asset_id: id, uploaded_status: 'complete' }),
    delete: (id) => call('DELETE', `/api/assets/${id}`),
    /** The asset's bytes, through a signed download URL. */
    async download(id) {
      const access = await call('GET', `/api/access?asset_id=${id}`);
      if (access.status !== 200)
        throw new Error(`access ${id}: ${access.status} ${JSON.stringify(access.body)}`);
      return fetchBytes(access.body.url);
    },
  };
}

/**
 * A delegated upload token minted by the owner of `token` with `scope`, as an
 * application's backend would (`POST /api/upload-tokens`).
 */
export async function mintUploadToken(server, token, scope) {
  const response = await fetch(`${server.url}/api/upload-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(scope),
  });
  const body = await response.json();
  if (response.status !== 201)
    throw new Error(`minting an upload token: ${response.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** The body at `url`, failing on any status but 200. */
export async function fetchBytes(url) {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${new URL(url).pathname}: ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

/** Base64 SHA-256, as the server stores `checksum_sha256`. */
export function sha256Base64(bytes) {
  return createHash('sha256').update(bytes).digest('base64');
}
