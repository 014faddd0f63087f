// The README's Uppy page, taken from README.md as a reader would copy it, and the three things
// a test must change to run it here: the import map's CDN URLs (esm.sh is out of reach), the
// API's address and the token.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { installedVersion, uppyModule } from './bundle.mjs';

const README = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../README.md');
const SECTION = '## Using Uppy';
/** An esm.sh package URL: name, exact version, then a sub-path and query if any. */
const ESM_SH = /^https:\/\/esm\.sh\/((?:@[^/@]+\/)?[^/@?]+)@([^/?]+)(.*)$/;

/** The page: the first ```html block of the README's "Using Uppy" section. */
export function readmeUppyPage() {
  const readme = readFileSync(README, 'utf8');
  const start = readme.indexOf(`\n${SECTION}\n`);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section`);
  const end = readme.indexOf('\n## ', start + SECTION.length + 2);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const block = section.match(/\n```html\n([\s\S]*?)\n```\n/);
  if (!block) throw new Error(`README.md's "${SECTION}" has no \`\`\`html block`);
  return block[1];
}

/** `text` with `pattern` (a string or a RegExp) replaced by `replacement`; it must occur once. */
function replaceOnce(text, pattern, replacement, what) {
  const found =
    typeof pattern === 'string'
      ? text.split(pattern).length - 1
      : (text.match(new RegExp(pattern, 'g')) ?? []).length;
  if (found !== 1) throw new Error(`the page has ${found} ${what}, expected one`);
  return text.replace(pattern, () => replacement);
}

/**
 * The page with every import-map URL pointing at `modules` instead of https://esm.sh (same
 * package paths and query, so `/esm/@uppy/aws-s3?external=@uppy/core` stands for
 * `https://esm.sh/@uppy/aws-s3@6.3.1?external=@uppy/core`), and `API` and `TOKEN` set.
 * Each URL must pin exactly the version installed in `tests/browser/uppy`.
 * @param {string} html the README's page
 * @param {{modules: string, api: string, token: string}} options `modules`: where `/{package}` is served
 * @returns {{html: string, imports: Record<string, string>}} the page, and its import map as
 *   the README has it
 */
export function localisedPage(html, { modules, api, token }) {
  const map = html.match(/<script type="importmap">([\s\S]*?)<\/script>/);
  if (!map) throw new Error('the page has no <script type="importmap">');
  const { imports } = JSON.parse(map[1]);
  let mapped = map[1];
  for (const [specifier, url] of Object.entries(imports)) {
    const [, name, version, rest] = url.match(ESM_SH) ?? [];
    if (!name) throw new Error(`${specifier} maps to ${url}, not to a pinned https://esm.sh package`);
    const installed = installedVersion(name);
    if (version !== installed)
      throw new Error(`${specifier} pins ${name}@${version}, the tests have ${installed}`);
    mapped = replaceOnce(mapped, JSON.stringify(url), JSON.stringify(`${modules}/${name}${rest}`), url);
  }
  let page = html.replace(map[1], () => mapped);
  page = replaceOnce(page, /const API = '[^']*'/, `const API = '${api}'`, '`const API`');
  page = replaceOnce(page, /const TOKEN = '[^']*'/, `const TOKEN = '${token}'`, '`const TOKEN`');
  return { html: page, imports };
}

/**
 * Answers `{prefix}{specifier}?external=...` (`prefix` ends in `/`) with that module bundled
 * from the installed packages, as esm.sh answers `/{specifier}@{version}?external=...`: a
 * package named in `external`, or a sub-path of it, stays a bare import.
 */
export function esmModules(prefix) {
  const cache = new Map();
  return async (url) => {
    const specifier = decodeURIComponent(url.pathname.slice(prefix.length));
    const external = url.searchParams.get('external')?.split(',') ?? [];
    const key = `${specifier}?${external}`;
    if (!cache.has(key)) cache.set(key, uppyModule(specifier, { external }));
    return { type: 'text/javascript', body: await cache.get(key) };
  };
}
