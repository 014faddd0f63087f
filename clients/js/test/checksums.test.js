// Multipart uploads whose parts are signed with their SHA-256: the API is node's HTTP server
// playing the Cloud Asset Uploader, storage is an XMLHttpRequest stand-in (node has none)
// that checks each part's `x-amz-checksum-sha256` as S3 does.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';

import { UploaderClient, resumeFingerprint } from '../src/uploader.js';

const PART_SIZE = 1000;
const SIZE = 10 * PART_SIZE + 500;
const PART_COUNT = 11;
const bytes = Uint8Array.from({ length: SIZE }, (_, i) => (i * 7 + (i >> 8)) % 251);
const file = Object.assign(new Blob([bytes]), { name: 'clip.bin', lastModified: 1 });
const expiresAt = () => new Date(Date.now() + 3_600_000).toISOString();
const sha256 = (data) => createHash('sha256').update(data).digest('base64');
const partBytes = (n) => bytes.subarray((n - 1) * PART_SIZE, Math.min(SIZE, n * PART_SIZE));
const CHECKSUMS = Array.from({ length: PART_COUNT }, (_, i) => sha256(partBytes(i + 1)));
const checksumOf = (n) => CHECKSUMS[n - 1];
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** What the fake API and storage saw, and how they answer; reset before every test. */
let api;
let storage;
let server;
let baseUrl;

const partUrl = (n, checksum) => ({
  part_number: n,
  url: `https://storage.test/a1?partNumber=${n}`,
  size: partBytes(n).length,
  headers: checksum ? { 'x-amz-checksum-sha256': checksum } : {},
});

function answer(method, path, body) {
  if (method === 'POST' && path === '/api/upload') {
    const checksums = body.part_checksums === true;
    const first = checksums ? [] : range(1, api.batchLimit).map((n) => partUrl(n));
    const signed = { method: 'MULTIPART', upload_id: 'u1', part_size: PART_SIZE, part_count: PART_COUNT };
    return {
      asset_id: 'a1',
      expires_at: expiresAt(),
      signed_info: { ...signed, part_checksums: checksums, parts: first },
    };
  }
  if (method === 'POST' && path === '/api/upload/a1/parts') {
    const parts = body.parts
      ? body.parts.map((p) => partUrl(p.part_number, p.checksum_sha256))
      : body.part_numbers.map((n) => partUrl(n));
    const info = { asset_id: 'a1', upload_id: 'u1', part_size: PART_SIZE, part_count: PART_COUNT };
    return {
      ...info,
      part_checksums: Boolean(body.parts),
      parts,
      uploaded: api.uploaded,
      expires_at: expiresAt(),
    };
  }
  if (method === 'PUT' && path === '/api/status') return { asset_id: 'a1', status: 'complete' };
  if (method === 'GET' && path === '/api/assets/a1') return { asset_id: 'a1', status: 'complete' };
  return undefined;
}

/** S3 as far as a part PUT goes: the body must match its signed checksum header. */
function storagePut(url, headers, body) {
  const n = Number(new URL(url).searchParams.get('partNumber'));
  storage.puts.push({ n, headers });
  const refusal = storage.refuse?.(n);
  if (refusal) return refusal;
  const declared = headers['x-amz-checksum-sha256'];
  if (declared !== undefined && declared !== sha256(body)) {
    return { status: 400, type: 'application/xml', text: '<Error><Code>BadDigest</Code></Error>' };
  }
  return { status: 200, headers: { etag: `"e${n}"` } };
}

class FakeXMLHttpRequest {
  upload = {};
  open(method, url) {
    Object.assign(this, { method, url, headers: {} });
  }
  setRequestHeader(name, value) {
    this.headers[name.toLowerCase()] = value;
  }
  getResponseHeader(name) {
    return this.answer.headers?.[name.toLowerCase()] ?? (name === 'content-type' ? this.answer.type : null);
  }
  abort() {}
  async send(body) {
    const data = new Uint8Array(await body.arrayBuffer());
    this.answer = storagePut(this.url, this.headers, data);
    this.status = this.answer.status;
    this.responseText = this.answer.text ?? '';
    this.onload();
  }
}

function memoryStorage() {
  const items = new Map();
  return {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  };
}

before(async () => {
  globalThis.XMLHttpRequest = FakeXMLHttpRequest;
  server = createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const body = text ? JSON.parse(text) : undefined;
    const path = req.url.split('?')[0];
    api.seen.push({ method: req.method, path, body });
    const json = answer(req.method, path, body);
    res.writeHead(json ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(json ?? { code: 'not_found' }));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.close();
  delete globalThis.XMLHttpRequest;
  delete globalThis.localStorage;
});

beforeEach(() => {
  api = { seen: [], uploaded: [], batchLimit: 4 };
  storage = { puts: [], refuse: null };
  globalThis.localStorage = memoryStorage();
});

const signings = () => api.seen.filter((r) => r.path === '/api/upload/a1/parts').map((r) => r.body);
const completion = () => api.seen.find((r) => r.path === '/api/status').body;
const fast = { retries: 3, baseDelay: 1, maxDelay: 2 };

test('each part is hashed and signed with its SHA-256 in batches, and sent with the signed header', async () => {
  const client = new UploaderClient({ baseUrl, retry: fast });

  await client.upload(file, { concurrency: 2 });

  assert.equal(api.seen[0].body.part_checksums, true, 'part checksums are asked for by default');
  const batches = signings();
  assert.ok(batches.length >= 2, 'the parts are signed in more than one batch');
  for (const batch of batches) {
    assert.equal(batch.part_numbers, undefined);
    assert.ok(batch.parts.length <= 8, `a batch of ${batch.parts.length}`);
  }
  const declared = batches.flatMap((b) => b.parts);
  assert.deepEqual(
    declared.map((p) => p.part_number).sort((a, b) => a - b),
    range(1, PART_COUNT),
    'once each',
  );
  for (const part of declared) assert.equal(part.checksum_sha256, checksumOf(part.part_number));
  assert.equal(storage.puts.length, PART_COUNT);
  for (const put of storage.puts) assert.equal(put.headers['x-amz-checksum-sha256'], checksumOf(put.n));
  assert.deepEqual(
    completion().parts,
    range(1, PART_COUNT).map((n) => ({ part_number: n, etag: `"e${n}"` })),
  );
});

test('checksum: false asks for no part checksums: parts are signed by number, sent without headers', async () => {
  const client = new UploaderClient({ baseUrl, retry: fast });

  await client.upload(file, { checksum: false, concurrency: 2 });

  assert.equal(api.seen[0].body.part_checksums, undefined);
  assert.ok(signings().length > 0);
  for (const batch of signings()) assert.equal(batch.parts, undefined);
  assert.deepEqual(
    signings()
      .flatMap((b) => b.part_numbers)
      .sort((a, b) => a - b),
    range(api.batchLimit + 1, PART_COUNT),
    'the parts the first answer did not sign, once each',
  );
  for (const put of storage.puts) assert.deepEqual(put.headers, {});
});

for (const [who, refusal] of [
  ['S3', { status: 400, type: 'application/xml', text: '<Error><Code>BadDigest</Code></Error>' }],
  [
    'the local backend',
    {
      status: 400,
      type: 'application/problem+json',
      text: JSON.stringify({ status: 400, code: 'checksum_mismatch', detail: 'SHA-256 differs.' }),
    },
  ],
]) {
  test(`a part ${who} refuses for its checksum fails the upload at once, without a retry`, async () => {
    storage.refuse = (n) => (n === 3 ? refusal : null);
    const client = new UploaderClient({ baseUrl, retry: fast });

    await assert.rejects(client.upload(file, { concurrency: 1 }), (error) => {
      assert.deepEqual([error.name, error.status, error.code], ['UploaderError', 400, 'checksum_mismatch']);
      assert.match(error.detail, /part 3/);
      assert.equal(error.retryable, false);
      return true;
    });
    assert.equal(storage.puts.filter((p) => p.n === 3).length, 1, 'part 3 was sent once');
    assert.ok(!api.seen.some((r) => r.path === '/api/status'), 'no completion was asked for');
  });
}

test('a resumed upload hashes only the parts it still needs, and sends again a stored part that differs', async () => {
  const key = resumeFingerprint(file, file.name, baseUrl);
  const etags = { 1: '"e1"', 2: '"e2"', 3: '"e3"' };
  const record = { assetId: 'a1', uploadId: 'u1', partSize: PART_SIZE, batch: 8, partChecksums: true, etags };
  localStorage.setItem(key, JSON.stringify(record));
  const stored = (n, checksum) => ({
    part_number: n,
    size: PART_SIZE,
    etag: `"e${n}"`,
    checksum_sha256: checksum,
  });
  // Part 4 is stored, but from other bytes: its answer never reached the page.
  api.uploaded = [...range(1, 3).map((n) => stored(n, checksumOf(n))), stored(4, checksumOf(5))];
  const client = new UploaderClient({ baseUrl, retry: fast });

  await client.upload(file, { concurrency: 2 });

  assert.equal(api.seen[0].path, '/api/upload/a1/parts', 'no new upload was started');
  const declared = signings().flatMap((b) => b.parts);
  assert.deepEqual(
    declared.map((p) => p.part_number).sort((a, b) => a - b),
    range(4, PART_COUNT),
    'parts 1–3 were neither hashed nor signed',
  );
  for (const part of declared) assert.equal(part.checksum_sha256, checksumOf(part.part_number));
  assert.deepEqual(
    storage.puts.map((p) => p.n).sort((a, b) => a - b),
    range(4, PART_COUNT),
  );
  assert.equal(completion().parts.length, PART_COUNT);
  assert.equal(localStorage.getItem(key), null, 'the record is cleared on completion');
});
