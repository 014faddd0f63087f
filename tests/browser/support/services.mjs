// The containers a test file needs: one Postgres and one S3 stand-in (MinIO or the offline
// image), started with the docker CLI on random host ports and removed when the file ends.

import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Images, replaceable like the Rust suite's: UPLOADER_TEST_POSTGRES_IMAGE / _MINIO_IMAGE. */
const POSTGRES_IMAGE = process.env.UPLOADER_TEST_POSTGRES_IMAGE || 'postgres:17-alpine';
const MINIO_IMAGE = process.env.UPLOADER_TEST_MINIO_IMAGE || 'minio/minio:RELEASE.2025-02-28T09-55-16Z';
/** Label on every container, so strays are easy to find: docker ps -f label=… */
const LABEL = 'cloud-asset-uploader-browser-tests=1';
/** MinIO's default root credentials, which the stand-in keeps. */
export const S3_CREDENTIALS = { accessKeyId: 'minioadmin', secretAccessKey: 'minioadmin' };
const STARTUP_TIMEOUT_MS = 60_000;

async function docker(...args) {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Containers still running, removed at exit even when the test process is interrupted. */
const running = new Set();
process.once('exit', () => {
  if (running.size) execFileSync('docker', ['rm', '-f', ...running], { stdio: 'ignore' });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(signal, () => process.exit(130));

async function startContainer(image, port, env, command) {
  const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const id = await docker(
    'run',
    '-d',
    '--rm',
    '-p',
    `127.0.0.1::${port}`,
    '--label',
    LABEL,
    ...envArgs,
    image,
    ...command,
  );
  running.add(id);
  const mapped = await docker('port', id, `${port}/tcp`);
  return { id, port: Number(mapped.split('\n')[0].split(':').pop()) };
}

/** Polls `probe` until it resolves true; a readiness check, bounded by a timeout. */
async function until(what, probe) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`${what} did not become ready within ${STARTUP_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts Postgres and S3 and waits until both answer.
 * @returns {Promise<{createDatabase: (name: string) => Promise<string>, s3Endpoint: string,
 *   s3Files: () => Promise<string[]>, stop: () => Promise<void>}>}
 */
export async function startServices() {
  const [pg, s3] = await Promise.all([
    startContainer(POSTGRES_IMAGE, 5432, { POSTGRES_PASSWORD: 'postgres' }, ['-c', 'fsync=off']),
    startContainer(MINIO_IMAGE, 9000, {}, ['server', '/data']),
  ]);
  const s3Endpoint = `http://127.0.0.1:${s3.port}`;
  const stop = async () => {
    await docker('rm', '-f', pg.id, s3.id).catch(() => undefined);
    running.delete(pg.id);
    running.delete(s3.id);
  };
  try {
    await Promise.all([
      // Over TCP, so the image's first, socket-only start during initialisation does not count.
      until('Postgres', async () =>
        (await docker('exec', pg.id, 'pg_isready', '-h', '127.0.0.1', '-U', 'postgres')).includes(
          'accepting',
        ),
      ),
      until('S3', async () => (await fetch(`${s3Endpoint}/minio/health/ready`)).ok),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    s3Endpoint,
    /** Creates a database and returns its URL. */
    async createDatabase(name) {
      await docker(
        'exec',
        '-e',
        'PGPASSWORD=postgres',
        pg.id,
        'psql',
        '-h',
        '127.0.0.1',
        '-U',
        'postgres',
        '-c',
        `CREATE DATABASE ${name}`,
      );
      return `postgres://postgres:postgres@127.0.0.1:${pg.port}/${name}`;
    },
    /** Every file in the S3 container's data directory: objects, parts and their metadata. */
    async s3Files() {
      const out = await docker('exec', s3.id, 'find', '/data', '-type', 'f');
      return out.split('\n').filter(Boolean);
    },
    stop,
  };
}
