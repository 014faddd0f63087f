// Resuming a multipart upload after the page reloads: only the parts storage lacks are sent
// again, and a remembered upload that is gone starts afresh.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { apiAs } from './support/api.mjs';
import { generateBytes } from './support/bytes.mjs';
import { assertSameBytes, nextIssue } from './support/checks.mjs';
import { LOCAL_LACKS, isPartRequest, isStorageRequest, startSuite } from './support/suite.mjs';
import { mintToken } from './support/tokens.mjs';

const MiB = 1024 * 1024;
const carol = mintToken('carol');

let suite;
before(async () => {
  suite = await startSuite({ backends: ['s3', 'local'] });
});
after(() => suite?.stop());

async function harnessPage(t, server) {
  const page = await suite.context.newPage();
  t.after(() => page.close());
  await openHarness(page, server);
  return page;
}

async function openHarness(page, server) {
  await page.goto(`${suite.pages.url}/harness.html`);
  await page.evaluate((url) => window.harness.load(url), suite.clientUrl(server));
}

/** Part numbers of the part uploads the page sends from now on. */
function recordPartUploads(page, server) {
  const parts = [];
  page.on('request', (r) => {
    if (r.method() === 'PUT' && isStorageRequest(suite, server, r.url()) && isPartRequest(r.url())) {
      parts.push(new URL(r.url()).searchParams.get('partNumber'));
    }
  });
  return parts;
}

/** API requests the page sends from now on, as `METHOD /path`. */
function recordApiCalls(page, server) {
  const calls = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.origin === server.url && r.method() !== 'OPTIONS') calls.push(`${r.method()} ${url.pathname}`);
  });
  return calls;
}

/**
 * Starts uploading `file` with part 1 let through and every other part held, and waits until
 * part 1 is stored and its ETag remembered. Returns the issued upload and `reload()`, which
 * reloads the page with the held parts never reaching storage; or, when the server refused
 * the multipart upload, `refusal`.
 */
async function uploadPartOneThenStall(page, server, args) {
  let heldOne;
  let release;
  const held = new Promise((resolve) => {
    heldOne = resolve;
  });
  const released = new Promise((resolve) => {
    release = resolve;
  });
  await page.route(
    (url) => isStorageRequest(suite, server, url.href) && isPartRequest(url.href),
    async (route) => {
      if (new URL(route.request().url()).searchParams.get('partNumber') === '1') return route.continue();
      heldOne();
      await released;
      // The page that sent it is gone by now; this only makes sure it never goes through.
      return route.abort().catch(() => {});
    },
  );
  const issued = nextIssue(page);
  await page.evaluate((a) => window.harness.start('first', a), args);
  const stalled = held.then(() => page.waitForFunction(() => window.harness.resumeRecords()[0]?.etags?.[1]));
  const refused = page.evaluate(() => window.harness.result('first'));
  const first = await Promise.race([stalled.then(() => null), refused]);
  if (first?.error) return { refusal: first.error };
  const reload = async () => {
    await page.reload();
    release();
    await page.unrouteAll({ behavior: 'wait' });
    await openHarness(page, server);
  };
  return { issued: await issued, reload };
}

/** Skips when the local backend refuses multipart uploads, as it does today. */
function skipWithoutMultipart(t, server, refusal) {
  if (
    server.backend !== 'local' ||
    !LOCAL_LACKS.has('multipart') ||
    refusal?.code !== 'multipart_not_supported'
  )
    return false;
  t.skip(`the local backend has no multipart yet: it answered ${refusal.code}`);
  return true;
}

for (const backend of ['s3', 'local']) {
  describe(`${backend} backend`, () => {
    const server = () => suite.servers[backend];

    test('after a reload, the same file continues its upload with only the missing parts', async (t) => {
      const page = await harnessPage(t, server());
      const file = { seed: 11, size: 16 * MiB, name: 'resumed.bin', lastModified: 1_700_000_000_000 };
      const args = {
        baseUrl: server().url,
        token: carol,
        file,
        options: { objectKey: 'videos/resumed.bin', multipart: true, concurrency: 2 },
      };
      const { issued, reload, refusal } = await uploadPartOneThenStall(page, server(), args);
      if (skipWithoutMultipart(t, server(), refusal)) return;
      assert.equal(refusal, undefined, JSON.stringify(refusal));

      await reload();
      const listing = await apiAs(server(), carol).uploadedParts(issued.asset_id);
      assert.deepEqual(
        listing.body.uploaded.map((p) => p.part_number),
        [1],
        'storage holds part 1 only',
      );
      const parts = recordPartUploads(page, server());
      const calls = recordApiCalls(page, server());
      const { asset, error } = await page.evaluate((a) => window.harness.upload(a), args);

      assert.equal(error, undefined, JSON.stringify(error));
      assert.equal(asset.asset_id, issued.asset_id, 'the same asset was continued');
      assert.deepEqual(parts.sort(), ['2', '3', '4'], 'only the missing parts were sent');
      assert.ok(!calls.includes('POST /api/upload'), `no new upload was started: ${calls}`);
      assert.ok(
        calls.includes(`POST /api/upload/${issued.asset_id}/parts`),
        'storage was asked what it holds',
      );
      assert.deepEqual(
        await page.evaluate(() => window.harness.resumeRecords()),
        [],
        'the record is cleared',
      );
      assertSameBytes(
        await apiAs(server(), carol).download(asset.asset_id),
        generateBytes(file.size, file.seed),
      );
    });

    test('a remembered upload whose asset is gone starts afresh', async (t) => {
      const page = await harnessPage(t, server());
      const file = { seed: 12, size: 11 * MiB, name: 'restarted.bin', lastModified: 1_700_000_000_000 };
      const args = {
        baseUrl: server().url,
        token: carol,
        file,
        options: { objectKey: 'videos/restarted.bin', multipart: true },
      };
      const { issued, reload, refusal } = await uploadPartOneThenStall(page, server(), args);
      if (skipWithoutMultipart(t, server(), refusal)) return;
      assert.equal(refusal, undefined, JSON.stringify(refusal));
      await reload();
      assert.equal((await apiAs(server(), carol).delete(issued.asset_id)).status, 204);

      const parts = recordPartUploads(page, server());
      const reissued = nextIssue(page);
      const { asset, error } = await page.evaluate((a) => window.harness.upload(a), args);

      assert.equal(error, undefined, JSON.stringify(error));
      assert.notEqual((await reissued).asset_id, issued.asset_id, 'a new asset');
      assert.equal(asset.asset_id, (await reissued).asset_id);
      assert.deepEqual(parts.sort(), ['1', '2', '3'], 'every part was sent');
      assertSameBytes(
        await apiAs(server(), carol).download(asset.asset_id),
        generateBytes(file.size, file.seed),
      );
    });
  });
}
