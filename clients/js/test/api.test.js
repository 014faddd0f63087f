// The client's API calls against a real HTTP server (node's), answering what the test scripts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';

import { UploaderClient, UploaderError } from '../src/uploader.js';

/** Answers queued per test, and every request seen. */
const script = [];
const seen = [];
let server;
let baseUrl;

before(async () => {
  server = createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, headers: req.headers });
    const next = script.shift() ?? { status: 500, body: { code: 'internal_error' } };
    const type = next.status >= 400 ? 'application/problem+json' : 'application/json';
    res.writeHead(next.status, { 'content-type': type, ...next.headers });
    res.end(next.body === undefined ? '' : JSON.stringify(next.body));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}/`;
});

after(() => server.close());

function answers(...list) {
  script.length = 0;
  seen.length = 0;
  script.push(...list);
}

const asset = { asset_id: 'a1', object_key: 'k', status: 'complete' };
const fast = { retries: 3, baseDelay: 1, maxDelay: 5 };

test('a problem answer rejects at once with its status, code and detail', async () => {
  answers({ status: 404, body: { status: 404, code: 'asset_not_found', detail: 'No asset a1.' } });
  const client = new UploaderClient({ baseUrl, retry: fast });
  await assert.rejects(client.get('a1'), (error) => {
    assert.ok(error instanceof UploaderError);
    assert.deepEqual([error.status, error.code, error.detail], [404, 'asset_not_found', 'No asset a1.']);
    return true;
  });
  assert.equal(seen.length, 1, 'a 4xx is not retried');
  assert.equal(seen[0].url, '/api/assets/a1', 'a trailing slash in baseUrl is dropped');
});

test('429 waits for Retry-After, then succeeds', async () => {
  answers(
    { status: 429, headers: { 'retry-after': '0' }, body: { code: 'rate_limited' } },
    { status: 200, body: asset },
  );
  const client = new UploaderClient({ baseUrl, retry: { retries: 1, baseDelay: 60_000 } });
  assert.deepEqual(await client.get('a1'), asset);
  assert.equal(seen.length, 2);
});

test('5xx are retried with backoff until the retries run out', async () => {
  answers(
    { status: 503, body: { code: 'storage_unavailable' } },
    { status: 502, body: {} },
    { status: 200, body: asset },
  );
  const client = new UploaderClient({ baseUrl, retry: fast });
  assert.deepEqual(await client.get('a1'), asset);
  answers(...Array.from({ length: 5 }, () => ({ status: 503, body: { code: 'database_unavailable' } })));
  await assert.rejects(client.get('a1'), {
    name: 'UploaderError',
    status: 503,
    code: 'database_unavailable',
  });
  assert.equal(seen.length, fast.retries + 1);
});

test('an unreachable server is a network_error after the retries', async () => {
  const client = new UploaderClient({ baseUrl: 'http://127.0.0.1:9', retry: { retries: 1, baseDelay: 1 } });
  await assert.rejects(client.get('a1'), { name: 'UploaderError', status: 0, code: 'network_error' });
});

test('credentials: a token as bearer, an API key as X-Api-Key, getToken asked for every request', async () => {
  answers(
    { status: 200, body: asset },
    { status: 200, body: asset },
    { status: 200, body: asset },
    { status: 200, body: asset },
  );
  await new UploaderClient({ baseUrl, token: 't0' }).get('a1');
  await new UploaderClient({ baseUrl, apiKey: 'k0' }).get('a1');
  let calls = 0;
  const rotating = new UploaderClient({ baseUrl, getToken: async () => `t${(calls += 1)}` });
  await rotating.get('a1');
  await rotating.get('a1');
  assert.deepEqual(
    seen.map((r) => [r.headers.authorization, r.headers['x-api-key']]),
    [
      ['Bearer t0', undefined],
      [undefined, 'k0'],
      ['Bearer t1', undefined],
      ['Bearer t2', undefined],
    ],
  );
});

test('list() yields every item, following next_cursor page by page', async () => {
  answers(
    { status: 200, body: { items: [{ asset_id: '1' }, { asset_id: '2' }], next_cursor: 'c1' } },
    { status: 200, body: { items: [{ asset_id: '3' }], next_cursor: null } },
  );
  const client = new UploaderClient({ baseUrl });
  const ids = [];
  for await (const item of client.list({ status: 'complete', prefix: 'photos/', limit: 2 }))
    ids.push(item.asset_id);
  assert.deepEqual(ids, ['1', '2', '3']);
  assert.deepEqual(
    seen.map((r) => r.url),
    [
      '/api/assets?status=complete&prefix=photos%2F&limit=2',
      '/api/assets?status=complete&prefix=photos%2F&limit=2&cursor=c1',
    ],
  );
});

test('pages() yields each page and stops after the last one', async () => {
  answers(
    { status: 200, body: { items: [{ asset_id: '1' }], next_cursor: 'c1' } },
    { status: 200, body: { items: [{ asset_id: '2' }], next_cursor: null } },
  );
  const client = new UploaderClient({ baseUrl });
  const pages = [];
  for await (const page of client.pages({ limit: 1 })) pages.push(page.items.map((a) => a.asset_id));
  assert.deepEqual(pages, [['1'], ['2']]);
  assert.equal(seen.length, 2, 'no request after the last page');
});

test('access and delete speak their routes', async () => {
  answers({ status: 200, body: { asset_id: 'a b', url: 'https://s/x', expires_at: 'e' } }, { status: 204 });
  const client = new UploaderClient({ baseUrl });
  assert.equal((await client.access('a b', { expiresIn: 30 })).url, 'https://s/x');
  assert.equal(await client.delete('a b'), undefined);
  assert.deepEqual(
    seen.map((r) => `${r.method} ${r.url}`),
    ['GET /api/access?asset_id=a+b&expires_in=30', 'DELETE /api/assets/a%20b'],
  );
});

test('an abort during a retry wait rejects with an AbortError', async () => {
  answers({ status: 503, headers: { 'retry-after': '3600' }, body: { code: 'not_ready' } });
  const controller = new AbortController();
  const client = new UploaderClient({ baseUrl });
  const pending = client.get('a1', { signal: controller.signal });
  // Abort once the server has answered and the client waits.
  await new Promise((resolve) => server.once('request', (_, res) => res.on('finish', resolve)));
  controller.abort();
  await assert.rejects(pending, { name: 'AbortError' });
});
