// The published Uppy (@uppy/core + @uppy/aws-s3 6.3.x, in companionEndpoint mode) in Chromium
// against the Uppy routes, on both backends: a small file (form POST, completed by key in a
// post-processor) and a multipart one end as complete assets with the original bytes; an
// upload over the token's size limit is refused and Uppy reports it; the README's page, as
// pasted, uploads chosen files; another owner's token can neither list, complete nor abort an
// upload in flight, which its owner's Uppy then completes.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { apiAs, mintUploadToken } from './support/api.mjs';
import { generateBytes } from './support/bytes.mjs';
import { assertSameBytes } from './support/checks.mjs';
import { isPartRequest, isStorageRequest, startSuite } from './support/suite.mjs';
import { mintToken } from './support/tokens.mjs';
import { uppyBundle } from './uppy/bundle.mjs';
import { esmModules, localisedPage, readmeUppyPage } from './uppy/readme-page.mjs';

const MiB = 1024 * 1024;
const alice = mintToken('alice');
const bob = mintToken('bob');

let suite;
let bundle;
before(async () => {
  bundle = await uppyBundle();
  suite = await startSuite({ backends: ['s3', 'local'] });
  suite.pages.serve('/esm/', esmModules('/esm/'));
});
after(() => suite?.stop());

/** A page with Uppy loaded; closed after the test. */
async function uppyPage(t) {
  const page = await suite.context.newPage();
  t.after(() => page.close());
  await page.goto(`${suite.pages.url}/harness.html`);
  await page.waitForFunction(() => window.harness);
  await page.addScriptTag({ content: bundle });
  return page;
}

/**
 * Uploads one generated file with Uppy in the page, as the README's page does; returns what
 * Uppy reported.
 */
function uploadWithUppy(page, { endpoint, file, multipart }) {
  return page.evaluate(
    async ({ endpoint, file, multipart }) => {
      const { Uppy, AwsS3 } = window.UppyUnderTest;
      const events = { successes: [], errors: [] };
      const uppy = new Uppy().use(AwsS3, { companionEndpoint: endpoint, shouldUseMultipart: multipart });
      uppy.on('file-added', (added) => uppy.setFileMeta(added.id, { size: added.size }));
      uppy.addPostProcessor(async (ids) => {
        for (const id of ids) {
          const { error, response: uploaded } = uppy.getFile(id);
          const key = uploaded?.body?.key;
          if (error || !key) continue;
          const response = await fetch(`${endpoint}/s3/complete?key=${encodeURIComponent(key)}`, {
            method: 'POST',
          });
          if (!response.ok) throw new Error((await response.json()).message);
        }
      });
      uppy.on('upload-success', (done, response) => events.successes.push(response.body));
      uppy.on('upload-error', (failed, error) => events.errors.push(error.message));
      const data = window.harness.file(file);
      uppy.addFile({ name: file.name, type: file.type, data });
      const result = await uppy.upload();
      return { ...events, failed: result.failed.length };
    },
    { endpoint, file, multipart },
  );
}

/** Generated files written to a fresh directory, removed after the test: `[{name, size, path}]`. */
async function filesOnDisk(t, files) {
  const dir = await mkdtemp(path.join(tmpdir(), 'uppy-files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return Promise.all(
    files.map(async ({ name, size }) => {
      await writeFile(path.join(dir, name), generateBytes(size, size));
      return { name, size, path: path.join(dir, name) };
    }),
  );
}

/** Rejects as soon as the page alerts or throws, with what it said. */
function pageTrouble(page) {
  const trouble = new Promise((resolve, reject) => {
    page.on('dialog', (dialog) => {
      reject(new Error(`the page alerted: ${dialog.message()}`));
      dialog.dismiss().catch(() => {});
    });
    page.on('pageerror', (error) => reject(new Error(`the page threw: ${error.message}`)));
  });
  trouble.catch(() => {});
  return trouble;
}

/** What each Uppy route answers `endpoint` about upload `uploadId`, asked from the page. */
function tryUpload(page, { endpoint, uploadId, key }) {
  return page.evaluate(
    async ({ endpoint, uploadId, key }) => {
      const upload = `${endpoint}/s3/multipart/${encodeURIComponent(uploadId)}`;
      const query = `?key=${encodeURIComponent(key)}`;
      const answers = {};
      for (const [what, url, init] of [
        ['list', upload + query, { method: 'GET' }],
        ['sign', `${upload}/1${query}`, { method: 'GET' }],
        ['complete', `${upload}/complete${query}`, { method: 'POST', body: JSON.stringify({ parts: [] }) }],
        ['abort', upload + query, { method: 'DELETE' }],
      ]) {
        const response = await fetch(url, init);
        const type = response.headers.get('content-type');
        answers[what] = { status: response.status, type, body: await response.json() };
      }
      return answers;
    },
    { endpoint, uploadId, key },
  );
}

for (const backend of ['s3', 'local']) {
  describe(`Uppy 6, ${backend} backend`, () => {
    const server = () => suite.servers[backend];

    for (const [what, size, multipart] of [
      ['a small file goes by form POST', 300 * 1024 + 3, false],
      ['a multipart file goes in 5 MiB parts', 5 * MiB + 4321, true],
    ]) {
      test(`${what} and ends as a complete asset with the same bytes`, { timeout: 60_000 }, async (t) => {
        const page = await uppyPage(t);
        const token = await mintUploadToken(server(), alice, { expires_in: 600 });
        const file = { seed: size, size, name: `uppy-${size}.bin`, type: 'application/octet-stream' };

        const outcome = await uploadWithUppy(page, {
          endpoint: `${server().url}/uppy/${token}`,
          file,
          multipart,
        });

        assert.deepEqual(outcome.errors, []);
        assert.equal(outcome.successes.length, 1, 'upload-success fired');
        const listed = await apiAs(server(), alice).list();
        const asset = listed.body.items.find((a) => a.object_key === file.name);
        assert.equal(asset?.status, 'complete', JSON.stringify(listed.body));
        const downloaded = await apiAs(server(), alice).download(asset.asset_id);
        assertSameBytes(downloaded, generateBytes(size, size));
      });
    }

    test(
      'a file over the token size limit is refused and Uppy reports the error',
      { timeout: 60_000 },
      async (t) => {
        const page = await uppyPage(t);
        const token = await mintUploadToken(server(), alice, { expires_in: 600, max_size: 1000 });
        const file = { seed: 7, size: 2000, name: 'too-big.bin', type: 'application/octet-stream' };

        const outcome = await uploadWithUppy(page, {
          endpoint: `${server().url}/uppy/${token}`,
          file,
          multipart: false,
        });

        assert.equal(outcome.failed, 1);
        assert.equal(outcome.errors.length, 1, 'upload-error fired');
        assert.deepEqual(outcome.successes, []);
        const listed = await apiAs(server(), alice).list();
        assert.ok(!listed.body.items.some((a) => a.object_key === file.name && a.status === 'complete'));
      },
    );

    test(
      "the README's page, as pasted, uploads the chosen files to complete assets with the same bytes",
      { timeout: 60_000 },
      async (t) => {
        const token = await mintUploadToken(server(), alice, { expires_in: 600 });
        const { html, imports } = localisedPage(readmeUppyPage(), {
          modules: `${suite.pages.url}/esm`,
          api: server().url,
          token,
        });
        assert.ok(
          imports['@uppy/core'] && imports['@uppy/aws-s3'],
          `the import map: ${JSON.stringify(imports)}`,
        );
        const route = `/readme-uppy-${backend}.html`;
        suite.pages.serve(route, async () => ({ type: 'text/html; charset=utf-8', body: html }));
        const files = await filesOnDisk(t, [
          { name: `readme-${backend}-a.bin`, size: 150 * 1024 + 11 },
          { name: `readme-${backend}-b.bin`, size: 20 * 1024 + 3 },
        ]);
        const page = await suite.context.newPage();
        t.after(() => page.close());
        const trouble = pageTrouble(page);
        await page.goto(suite.pages.url + route);

        await page.locator('#files').setInputFiles(files.map((f) => f.path));

        const listed = page.locator('#done li');
        await Promise.race([listed.nth(files.length - 1).waitFor({ timeout: 20_000 }), trouble]);
        assert.deepEqual((await listed.allTextContents()).sort(), files.map((f) => f.name).sort());
        const assets = (await apiAs(server(), alice).list()).body.items;
        for (const file of files) {
          const asset = assets.find((a) => a.object_key === file.name);
          assert.equal(asset?.status, 'complete', `${file.name}: ${JSON.stringify(asset)}`);
          const downloaded = await apiAs(server(), alice).download(asset.asset_id);
          assertSameBytes(downloaded, generateBytes(file.size, file.size), file.name);
        }
      },
    );

    test(
      "another owner's token, or another token of the owner, cannot list, sign, complete or abort an upload in flight, which then completes",
      { timeout: 60_000 },
      async (t) => {
        const page = await uppyPage(t);
        const [own, anotherOwners, sameOwnersOther] = await Promise.all(
          [alice, bob, alice].map((owner) => mintUploadToken(server(), owner, { expires_in: 600 })),
        );
        const endpoint = (token) => `${server().url}/uppy/${token}`;
        const size = 5 * MiB + 17;
        const file = {
          seed: size,
          size,
          name: `uppy-intruded-${backend}.bin`,
          type: 'application/octet-stream',
        };
        // The first part is held in the browser until the intruders have tried.
        let partHeld;
        const held = new Promise((resolve) => (partHeld = resolve));
        let release;
        const released = new Promise((resolve) => (release = resolve));
        await page.route(
          (url) => isStorageRequest(suite, server(), url.href) && isPartRequest(url.href),
          async (route) => {
            if (route.request().method() !== 'OPTIONS') {
              partHeld();
              await released;
            }
            return route.continue();
          },
        );
        const created = page.waitForResponse(
          (r) => r.request().method() === 'POST' && new URL(r.url()).pathname.endsWith('/s3/multipart'),
        );
        const outcome = uploadWithUppy(page, { endpoint: endpoint(own), file, multipart: true });
        outcome.catch(() => {}); // awaited below, unless an assertion fails first
        try {
          const { uploadId, key } = await (await created).json();
          await held;

          for (const [who, token, status, code] of [
            ['another owner', anotherOwners, 404, 'asset_not_found'],
            ['another token of the same owner', sameOwnersOther, 403, 'token_scope'],
          ]) {
            const answers = await tryUpload(page, { endpoint: endpoint(token), uploadId, key });
            for (const [what, answer] of Object.entries(answers)) {
              assert.equal(answer.status, status, `${who}, ${what}: ${JSON.stringify(answer)}`);
              assert.match(answer.type, /^application\/problem\+json/, `${who}, ${what}`);
              assert.equal(answer.body.code, code, `${who}, ${what}`);
              assert.equal(typeof answer.body.message, 'string', `${who}, ${what}: Uppy shows the message`);
            }
          }
        } finally {
          release();
        }

        const result = await outcome;
        assert.deepEqual(result.errors, []);
        assert.equal(result.successes.length, 1, 'upload-success fired');
        const assets = (await apiAs(server(), alice).list()).body.items;
        const asset = assets.find((a) => a.object_key === file.name);
        assert.equal(asset?.status, 'complete', JSON.stringify(asset));
        assertSameBytes(await apiAs(server(), alice).download(asset.asset_id), generateBytes(size, size));
      },
    );
  });
}
