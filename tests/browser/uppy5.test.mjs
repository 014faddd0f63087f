// Uppy 5 (@uppy/aws-s3 5.x in `endpoint` mode) in Chromium against `/uppy/s3/...` with an
// `Authorization` header, on both backends: a small file (one signed PUT, its size being known)
// and a multipart one end as complete assets with the original bytes.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { apiAs } from './support/api.mjs';
import { generateBytes } from './support/bytes.mjs';
import { assertSameBytes } from './support/checks.mjs';
import { startSuite } from './support/suite.mjs';
import { mintToken } from './support/tokens.mjs';
import { uppyBundle } from './uppy/bundle.mjs';

const MiB = 1024 * 1024;
const alice = mintToken('alice');

let suite;
let bundle;
before(async () => {
  bundle = await uppyBundle('uppy5');
  suite = await startSuite({ backends: ['s3', 'local'] });
});
after(() => suite?.stop());

/** Uploads one generated file with Uppy 5 in a fresh page; returns what Uppy reported. */
async function uploadWithUppy5(t, { api, token, file, multipart }) {
  const page = await suite.context.newPage();
  t.after(() => page.close());
  await page.goto(`${suite.pages.url}/harness.html`);
  await page.waitForFunction(() => window.harness);
  await page.addScriptTag({ content: bundle });
  return page.evaluate(
    async ({ api, token, file, multipart }) => {
      const { Uppy, AwsS3 } = window.UppyUnderTest;
      const events = { successes: [], errors: [] };
      const headers = { authorization: `Bearer ${token}` };
      const uppy = new Uppy().use(AwsS3, { endpoint: `${api}/uppy`, headers, shouldUseMultipart: multipart });
      uppy.on('file-added', (added) => uppy.setFileMeta(added.id, { size: added.size }));
      uppy.addPostProcessor(async (ids) => {
        for (const id of ids) {
          const { error, response: uploaded, s3Multipart } = uppy.getFile(id);
          const key = uploaded?.body?.key ?? s3Multipart?.key;
          if (error || !key) continue;
          const url = `${api}/uppy/s3/complete?key=${encodeURIComponent(key)}`;
          const response = await fetch(url, { method: 'POST', headers });
          if (!response.ok) throw new Error((await response.json()).message);
        }
      });
      uppy.on('upload-success', (done, response) => events.successes.push(response.body));
      uppy.on('upload-error', (failed, error) => events.errors.push(error.message));
      uppy.addFile({ name: file.name, type: file.type, data: window.harness.file(file) });
      const result = await uppy.upload();
      return { ...events, failed: result.failed.length };
    },
    { api, token, file, multipart },
  );
}

for (const backend of ['s3', 'local']) {
  describe(`Uppy 5, ${backend} backend`, () => {
    const server = () => suite.servers[backend];

    for (const [what, size, multipart] of [
      ['a small file goes in one signed PUT', 200 * 1024 + 9, false],
      ['a multipart file goes in 5 MiB parts', 5 * MiB + 99, true],
    ]) {
      test(
        `with an Authorization header, ${what} and ends complete with the same bytes`,
        { timeout: 60_000 },
        async (t) => {
          const file = { seed: size, size, name: `uppy5-${size}.bin`, type: 'application/octet-stream' };

          const outcome = await uploadWithUppy5(t, { api: server().url, token: alice, file, multipart });

          assert.deepEqual(outcome.errors, []);
          assert.equal(outcome.successes.length, 1, 'upload-success fired');
          const listed = await apiAs(server(), alice).list();
          const asset = listed.body.items.find((a) => a.object_key === file.name);
          assert.equal(asset?.status, 'complete', JSON.stringify(listed.body));
          assertSameBytes(await apiAs(server(), alice).download(asset.asset_id), generateBytes(size, size));
        },
      );
    }
  });
}
