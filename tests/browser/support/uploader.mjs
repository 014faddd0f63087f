// The server under test: the real binary, started on a free port with the settings a browser
// test needs, its JSON log drained (and kept for failure messages).

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { S3_CREDENTIALS } from './services.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');

/** The binary: UPLOADER_BIN, else the debug build in CARGO_TARGET_DIR (or target/). */
export const UPLOADER_BIN =
  process.env.UPLOADER_BIN ||
  path.resolve(repo, process.env.CARGO_TARGET_DIR || 'target', 'debug', 'cloud-asset-uploader');

const START_TIMEOUT_MS = 60_000;
/** Servers still running, stopped at exit even when the test process is interrupted. */
const running = new Set();
process.once('exit', () => running.forEach((child) => child.kill('SIGKILL')));
/** Part size and multipart threshold: the smallest S3 allows, so a few MiB go in parts. */
export const PART_SIZE = 5 * 1024 * 1024;
/** Secret of the HS256 tokens the tests mint. */
export const JWT_SECRET = 'browser-tests-hs256-secret-0123456789abcdef';

/**
 * Starts the server with the `s3` or `local` backend.
 * @param {{backend: 's3' | 'local', databaseUrl: string, s3Endpoint: string, bucket: string,
 *   allowedOrigin: string}} options
 * @returns {Promise<{url: string, backend: string, localRoot: string | null, logs: string[],
 *   stop: () => Promise<void>}>}
 */
export async function startUploader({ backend, databaseUrl, s3Endpoint, bucket, allowedOrigin }) {
  const workdir = await mkdtemp(path.join(tmpdir(), `uploader-${backend}-`));
  const localRoot = backend === 'local' ? path.join(workdir, 'objects') : null;
  const env = {
    PATH: process.env.PATH,
    UPLOADER_CONFIG_DIR: path.join(repo, 'config'),
    UPLOADER_LOG__FORMAT: 'json',
    UPLOADER_LOG__LEVEL: 'info',
    UPLOADER_SERVER__BIND: '127.0.0.1:0',
    UPLOADER_DATABASE__URL: databaseUrl,
    UPLOADER_STORAGE__BACKEND: backend,
    UPLOADER_STORAGE__BUCKET: bucket,
    UPLOADER_STORAGE__S3__ENDPOINT: s3Endpoint,
    UPLOADER_STORAGE__S3__CREATE_BUCKET: 'true',
    UPLOADER_STORAGE__LOCAL__ROOT: localRoot ?? path.join(workdir, 'unused'),
    UPLOADER_STORAGE__LOCAL__SIGNING_KEY: 'browser-tests-local-signing-key-0123456789',
    AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    UPLOADER_UPLOADS__MULTIPART_PART_SIZE: String(PART_SIZE),
    UPLOADER_UPLOADS__MULTIPART_THRESHOLD: String(PART_SIZE),
    UPLOADER_UPLOADS__DEFAULT_EXPIRES_IN: '300',
    UPLOADER_RATE_LIMIT__ENABLED: 'false',
    UPLOADER_AUTH__MODE: 'jwt',
    UPLOADER_AUTH__JWT__HS256_SECRET: JWT_SECRET,
    UPLOADER_CORS__ALLOWED_ORIGINS: allowedOrigin,
    UPLOADER_LIFECYCLE__SWEEPER_ENABLED: 'false',
    UPLOADER_METRICS__ENABLED: 'false',
  };
  const child = spawn(UPLOADER_BIN, ['serve'], { cwd: workdir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const logs = [];
  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `the ${backend} server did not listen within ${START_TIMEOUT_MS} ms:\n${logs.join('\n')}`,
          ),
        ),
      START_TIMEOUT_MS,
    );
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      logs.push(line);
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      if (event.message === 'listening') {
        clearTimeout(timer);
        resolve(event.address);
      }
    });
    createInterface({ input: child.stderr }).on('line', (line) => logs.push(line));
    child.once('error', (error) => reject(new Error(`cannot start ${UPLOADER_BIN}: ${error.message}`)));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the ${backend} server exited with ${code}:\n${logs.join('\n')}`));
    });
  });
  const address = await listening;
  const port = address.split(':').pop();
  // The API is reached as `localhost`, pages as `127.0.0.1`: two origins.
  return {
    url: `http://localhost:${port}`,
    backend,
    localRoot,
    logs,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(workdir, { recursive: true, force: true });
    },
  };
}
