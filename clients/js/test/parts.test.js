import { test } from 'node:test';
import assert from 'node:assert/strict';

import { RESUME_KEY_PREFIX, planParts, resumeFingerprint, reusableParts } from '../src/uploader.js';

const MiB = 1024 * 1024;

test('parts cover the file contiguously, every part but the last full', () => {
  const parts = planParts(16 * MiB, 5 * MiB);
  assert.deepEqual(
    parts.map((p) => p.size),
    [5 * MiB, 5 * MiB, 5 * MiB, MiB],
  );
  assert.deepEqual(
    parts.map((p) => p.partNumber),
    [1, 2, 3, 4],
  );
  parts.forEach((part, i) => {
    assert.equal(part.start, i * 5 * MiB);
    assert.equal(part.end - part.start, part.size);
  });
});

test('a size that divides evenly has no short last part, an empty file has no parts', () => {
  assert.deepEqual(
    planParts(15, 5).map((p) => [p.start, p.end]),
    [
      [0, 5],
      [5, 10],
      [10, 15],
    ],
  );
  assert.deepEqual(planParts(0, 5), []);
  assert.deepEqual(planParts(3, 5), [{ partNumber: 1, start: 0, end: 3, size: 3 }]);
});

test('a part size that is not positive is refused', () => {
  for (const size of [0, -1, NaN]) assert.throws(() => planParts(10, size), RangeError);
});

test('the fingerprint names the file, its key and the server, and nothing else', () => {
  const file = { name: 'clip.mp4', size: 1234, lastModified: 1_700_000_000_000 };
  const key = resumeFingerprint(file, 'videos/clip.mp4', 'https://a.example');
  assert.ok(key.startsWith(RESUME_KEY_PREFIX));
  assert.equal(key, resumeFingerprint({ ...file }, 'videos/clip.mp4', 'https://a.example'), 'stable');
  const others = [
    resumeFingerprint({ ...file, size: 1235 }, 'videos/clip.mp4', 'https://a.example'),
    resumeFingerprint({ ...file, lastModified: 1 }, 'videos/clip.mp4', 'https://a.example'),
    resumeFingerprint({ ...file, name: 'other.mp4' }, 'videos/clip.mp4', 'https://a.example'),
    resumeFingerprint(file, 'videos/other.mp4', 'https://a.example'),
    resumeFingerprint(file, 'videos/clip.mp4', 'https://b.example'),
  ];
  for (const other of others) assert.notEqual(other, key);
  // Separators inside values cannot make two different files collide.
  assert.notEqual(
    resumeFingerprint({ name: 'a","b', size: 1 }, 'k', 'u'),
    resumeFingerprint({ name: 'a', size: 1 }, 'b","k', 'u'),
  );
});

test('only parts stored with their planned size and an ETag are reused', () => {
  const plan = planParts(12, 5);
  const uploaded = [
    { part_number: 1, size: 5, etag: '"one"' },
    { part_number: 2, size: 4, etag: '"short"' },
    { part_number: 3, size: 2, etag: null },
    { part_number: 9, size: 5, etag: '"unknown part"' },
  ];
  assert.deepEqual([...reusableParts(plan, uploaded)], [[1, '"one"']]);
  assert.equal(reusableParts(plan, undefined).size, 0);
});

test("an ETag storage does not list is taken from the client's own record", () => {
  const plan = planParts(12, 5);
  const uploaded = [
    { part_number: 1, size: 5, etag: '"listed"' },
    { part_number: 2, size: 5, etag: null },
    { part_number: 3, size: 2, etag: null },
  ];
  const remembered = { 1: '"stale"', 2: '"two"' };
  assert.deepEqual(
    [...reusableParts(plan, uploaded, remembered)],
    [
      [1, '"listed"'],
      [2, '"two"'],
    ],
  );
});

test('a stored part whose SHA-256 differs from the one computed again is not reused', () => {
  const plan = planParts(15, 5);
  const uploaded = [
    { part_number: 1, size: 5, etag: '"same"', checksum_sha256: 'AAA=' },
    { part_number: 2, size: 5, etag: '"other bytes"', checksum_sha256: 'BBB=' },
    { part_number: 3, size: 5, etag: '"not hashed here"', checksum_sha256: 'CCC=' },
  ];
  const computed = new Map([
    [1, 'AAA='],
    [2, 'XXX='],
  ]);
  assert.deepEqual(
    [...reusableParts(plan, uploaded, {}, computed)],
    [
      [1, '"same"'],
      [3, '"not hashed here"'],
    ],
  );
});
