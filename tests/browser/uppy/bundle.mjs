// Installs the pinned Uppy packages (once) and bundles them with esbuild for the test page:
// `uppy/` holds Uppy 6, `uppy5/` Uppy 5.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const browser = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The bundle's source: `window.UppyUnderTest = { Uppy, AwsS3 }`.
 * @param {'uppy' | 'uppy5'} [dir] which Uppy
 * @returns {Promise<string>}
 */
export async function uppyBundle(dir = 'uppy') {
  const here = path.join(browser, dir);
  if (!existsSync(path.join(here, 'node_modules/@uppy/aws-s3'))) {
    const installed = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: here,
      stdio: 'inherit',
    });
    if (installed.status !== 0) throw new Error(`npm ci in tests/browser/${dir} failed`);
  }
  const { build } = await import(path.join(here, 'node_modules/esbuild/lib/main.js'));
  const result = await build({
    entryPoints: [path.join(here, 'entry.mjs')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    write: false,
    logLevel: 'error',
  });
  return result.outputFiles[0].text;
}
