// Assertions and waits the test files share.

import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** Byte-for-byte equality, reporting the first difference instead of dumping megabytes. */
export function assertSameBytes(actual, expected, what = 'the bytes') {
  const a = Buffer.from(actual);
  const b = Buffer.from(expected);
  if (a.equals(b)) return;
  let i = 0;
  while (i < Math.min(a.length, b.length) && a[i] === b[i]) i += 1;
  assert.fail(`${what} differ: ${a.length} bytes vs ${b.length} expected, first difference at byte ${i}`);
}

/** `loaded` never decreases, always has the file's total, and ends at the total. */
export function assertProgressRisesTo(progress, total) {
  assert.ok(progress.length > 2, `only ${progress.length} progress events`);
  progress.forEach((p, i) => {
    assert.equal(p.total, total, `event ${i}: total`);
    if (i > 0)
      assert.ok(
        p.loaded >= progress[i - 1].loaded,
        `event ${i}: ${p.loaded} after ${progress[i - 1].loaded}`,
      );
  });
  assert.equal(progress.at(-1).loaded, total, 'progress ends at the file size');
}

/** The JSON answer of the next `POST /api/upload` (set up before the action that sends it). */
export function nextIssue(page) {
  return page
    .waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/upload')
    .then((r) => r.json());
}

/** Every file under `root` whose path contains `needle`. */
export async function filesContaining(root, needle) {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? e.path, e.name))
    .filter((file) => file.includes(needle));
}
