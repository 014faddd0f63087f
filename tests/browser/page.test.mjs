// The upload page, used the way a person uses it: paste a token, choose files, watch the
// progress bars fill, follow the download link, delete an asset; at phone width too.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { apiAs, fetchBytes } from './support/api.mjs';
import { generateBytes } from './support/bytes.mjs';
import { assertSameBytes, nextIssue } from './support/checks.mjs';
import { isPartRequest, isStorageRequest, startSuite } from './support/suite.mjs';
import { mintToken } from './support/tokens.mjs';

const MiB = 1024 * 1024;
/** Set to a path to save a screenshot of the page with completed uploads (docs/upload-page.png). */
const SCREENSHOT = process.env.UPLOADER_BROWSER_SCREENSHOT;

let suite;
before(async () => {
  suite = await startSuite({ backends: ['s3'] });
});
after(() => suite?.stop());

const server = () => suite.servers.s3;

/** A new page at the upload page's URL (plus `fragment`), failing the test on any script error. */
async function openUploadPage(t, fragment = '') {
  const page = await suite.context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    // Failed API answers are shown on the page; refused scripts or CSP violations are bugs.
    if (message.type() === 'error' && !/status of [45]\d\d/.test(message.text()))
      problems.push(message.text());
  });
  t.after(async () => {
    await page.unrouteAll({ behavior: 'ignoreErrors' });
    await page.close();
    assert.deepEqual(problems, [], 'no script errors or policy violations');
  });
  await page.goto(suite.pageUrl(server()) + fragment);
  return page;
}

async function useToken(page, token) {
  await page.getByLabel('Bearer token').check();
  await page.getByLabel('Token or API key').fill(token);
  await page.getByRole('button', { name: 'Use' }).click();
  await page.getByText('Using your bearer token').waitFor();
}

function uploadRow(page, key) {
  return page.locator('#uploads li').filter({ has: page.locator('.name', { hasText: key }) });
}

function assetRow(page, key) {
  return page.locator('#assets tbody tr').filter({ has: page.getByRole('cell', { name: key, exact: true }) });
}

test('a person uploads two files, sees them complete and listed, downloads one and deletes the other', async (t) => {
  const erin = mintToken('erin');
  const page = await openUploadPage(t);
  await useToken(page, erin);
  // Text that looks like text, so that the browser shows it rather than downloading it.
  const notes = Buffer.from(
    Buffer.from(generateBytes(110 * 1024, 21))
      .toString('base64')
      .replace(/(.{76})/g, '$1\n'),
  );
  const movie = Buffer.from(generateBytes(11 * MiB, 22));

  await page.getByLabel('Choose files').setInputFiles([
    { name: 'notes.txt', mimeType: 'text/plain', buffer: notes },
    { name: 'movie.bin', mimeType: 'application/octet-stream', buffer: movie },
  ]);

  for (const [key, bytes] of [
    ['notes.txt', notes],
    ['movie.bin', movie],
  ]) {
    const row = uploadRow(page, key);
    await row.getByText('Uploaded').waitFor();
    const [value, max] = await row.locator('progress').evaluate((bar) => [bar.value, bar.max]);
    assert.equal(value, max, `${key}: the bar is full`);
    assert.equal(max, bytes.length);
    assert.match(await row.locator('.bytes').textContent(), /^(\S+ \S+) of \1$/, `${key}: all bytes counted`);
    const link = row.getByRole('link', { name: `Download ${key}` });
    assertSameBytes(await fetchBytes(await link.getAttribute('href')), bytes, `${key} downloaded`);
  }
  await assetRow(page, 'notes.txt').getByRole('cell', { name: 'complete' }).waitFor();
  await assetRow(page, 'movie.bin').getByRole('cell', { name: 'complete' }).waitFor();
  if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // Following the link opens the download in a new tab, with the same bytes.
  const [download] = await Promise.all([
    suite.context.waitForEvent(
      'response',
      (r) => isStorageRequest(suite, server(), r.url()) && r.request().method() === 'GET',
    ),
    uploadRow(page, 'notes.txt').getByRole('link', { name: 'Download notes.txt' }).click(),
  ]);
  assertSameBytes(await download.body(), notes, 'the clicked download');
  await download.frame().page().close();

  const api = apiAs(server(), erin);
  const movieId = (await api.list()).body.items.find((a) => a.object_key === 'movie.bin').asset_id;
  await assetRow(page, 'movie.bin').getByRole('button', { name: 'Delete movie.bin' }).click();
  await assetRow(page, 'movie.bin').waitFor({ state: 'detached' });
  await page.getByText('movie.bin deleted').waitFor({ state: 'attached' });
  assert.equal((await api.asset(movieId)).status, 404, 'deleted on the server');
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.getByText('1 asset shown.').waitFor();
});

test('an upload cancelled from the keyboard leaves nothing behind, and Retry sends it again', async (t) => {
  const grace = mintToken('grace');
  const page = await openUploadPage(t);
  await useToken(page, grace);
  const video = Buffer.from(generateBytes(11 * MiB, 23));
  let heldOne;
  let release;
  const held = new Promise((resolve) => {
    heldOne = resolve;
  });
  const released = new Promise((resolve) => {
    release = resolve;
  });
  await page.route(
    (url) => isStorageRequest(suite, server(), url.href) && isPartRequest(url.href),
    async (route) => {
      heldOne();
      await released;
      return route.abort().catch(() => {});
    },
  );
  const issued = nextIssue(page);

  await page
    .getByLabel('Choose files')
    .setInputFiles([{ name: 'clip.bin', mimeType: 'video/mp4', buffer: video }]);
  const row = uploadRow(page, 'clip.bin');
  await held;
  await row.getByRole('button', { name: 'Cancel clip.bin' }).focus();
  await page.keyboard.press('Enter');
  await row.getByText('Cancelled').waitFor();

  const first = await issued;
  assert.equal(
    (await apiAs(server(), grace).asset(first.asset_id)).status,
    404,
    'the cancelled asset is deleted',
  );
  assert.deepEqual(await page.evaluate(() => Object.keys(localStorage)), [], 'no resume record is kept');

  release();
  await page.unrouteAll({ behavior: 'wait' });
  const retried = nextIssue(page);
  await row.getByRole('button', { name: 'Retry clip.bin' }).focus();
  await page.keyboard.press('Enter');
  await row.getByText('Uploaded').waitFor();
  const link = row.getByRole('link', { name: 'Download clip.bin' });
  assertSameBytes(await fetchBytes(await link.getAttribute('href')), video);
  assert.notEqual((await retried).asset_id, first.asset_id);
});

test('a delegated token in the link is used, kept for the tab only, and never sent in a URL', async (t) => {
  const heidi = mintToken('heidi');
  const urls = [];
  suite.context.on('request', (r) => urls.push(r.url()));
  const page = await openUploadPage(t, `#token=${encodeURIComponent(heidi)}`);

  await page.getByText('Using the upload token from the link').waitFor();
  assert.equal(new URL(page.url()).hash, '', 'the token left the address bar');
  assert.match(
    await page.evaluate(() => sessionStorage.getItem('cloud-asset-uploader:credentials')),
    /"source":"link"/,
  );
  const sentWith = page.waitForRequest(
    (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/upload',
  );
  await page.getByLabel('Key prefix').fill('shared/');
  await page
    .getByLabel('Choose files')
    .setInputFiles([{ name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('hello\n') }]);
  await uploadRow(page, 'shared/hello.txt').getByText('Uploaded').waitFor();

  assert.equal((await sentWith).headers().authorization, `Bearer ${heidi}`);
  assert.equal(
    (await apiAs(server(), heidi).list()).body.items[0]?.object_key,
    'shared/hello.txt',
    "the asset is the token owner's",
  );
  assert.ok(
    urls.every((url) => !url.includes(heidi.split('.')[2])),
    'no URL carried the token',
  );
  assert.deepEqual(await page.evaluate(() => Object.values(localStorage)), [], 'nothing in localStorage');
});

test('at phone width the page fits the screen and its controls stay reachable', async (t) => {
  const page = await openUploadPage(t);
  await page.setViewportSize({ width: 375, height: 740 });
  await useToken(page, mintToken('erin'));
  await page.locator('#assets tbody tr').first().waitFor();

  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  for (const name of ['Choose files', 'Key prefix', 'Token or API key']) {
    const box = await page.getByLabel(name).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 375, `${name} is on screen`);
  }
});
