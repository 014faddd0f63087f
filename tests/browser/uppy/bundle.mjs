// Installs the pinned Uppy packages (once) and bundles them with esbuild for the test pages:
// `uppy/` holds Uppy 6, `uppy5/` Uppy 5.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const browser = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** `tests/browser/{dir}`, its pinned packages installed. */
function installed(dir) {
  const here = path.join(browser, dir);
  if (!existsSync(path.join(here, 'node_modules/@uppy/aws-s3'))) {
    const run = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: here,
      stdio: 'inherit',
    });
    if (run.status !== 0) throw new Error(`npm ci in tests/browser/${dir} failed`);
  }
  return here;
}

async function bundle(here, options) {
  const { build } = await import(path.join(here, 'node_modules/esbuild/lib/main.js'));
  const result = await build({
    bundle: true,
    platform: 'browser',
    write: false,
    logLevel: 'error',
    ...options,
  });
  return result.outputFiles[0].text;
}

/**
 * The bundle's source: `window.UppyUnderTest = { Uppy, AwsS3 }`.
 * @param {'uppy' | 'uppy5'} [dir] which Uppy
 * @returns {Promise<string>}
 */
export async function uppyBundle(dir = 'uppy') {
  const here = installed(dir);
  return bundle(here, { entryPoints: [path.join(here, 'entry.mjs')], format: 'iife' });
}

/**
 * The version of package `name` installed in `tests/browser/{dir}`.
 * @param {string} name e.g. `@uppy/core`
 * @param {'uppy' | 'uppy5'} [dir]
 */
export function installedVersion(name, dir = 'uppy') {
  const manifest = path.join(installed(dir), 'node_modules', name, 'package.json');
  if (!existsSync(manifest)) throw new Error(`${name} is not installed in tests/browser/${dir}`);
  return JSON.parse(readFileSync(manifest, 'utf8')).version;
}

/**
 * What `import '{specifier}'` gives, as one ES module, the way a CDN serves a package: the
 * imports of packages named in `external` are left bare for the page's import map to resolve.
 * @param {string} specifier e.g. `@uppy/aws-s3`, `@uppy/core/utils`
 * @param {{external?: string[], dir?: 'uppy' | 'uppy5'}} [options]
 * @returns {Promise<string>}
 */
export async function uppyModule(specifier, { external = [], dir = 'uppy' } = {}) {
  const here = installed(dir);
  return bundle(here, { entryPoints: [specifier], absWorkingDir: here, format: 'esm', external });
}
