// What each test file shares: containers, the servers under test, the static origin and one
// browser, started once in `before` and stopped in `after`.

import { randomBytes } from 'node:crypto';

import { launchBrowser } from './browser.mjs';
import { startServices } from './services.mjs';
import { startStaticServer } from './static.mjs';
import { startUploader } from './uploader.mjs';

/**
 * Where pages load the client from. `static`: clients/js/src/uploader.js from the test's
 * static server. `server`: `GET /client/uploader.js` of the API server under test — the
 * default once the server embeds the client.
 */
export const CLIENT_SOURCE = process.env.UPLOADER_BROWSER_CLIENT_SOURCE || 'server';
/**
 * Where the upload page comes from. `static`: clients/js/page/ from the static server (a
 * third origin, with a Content-Security-Policy like the server's). `server`: `GET /upload`
 * of the API server — the default once the server serves the page.
 */
export const PAGE_SOURCE = process.env.UPLOADER_BROWSER_PAGE_SOURCE || 'server';

/**
 * What the local backend cannot do yet; a test of a feature listed here is skipped on the
 * local backend when the server answers that it lacks it (and runs when it does not).
 * Remove an entry once the server supports it there.
 */
export const LOCAL_LACKS = new Set([]);

const unique = (prefix) => `${prefix}-${randomBytes(4).toString('hex')}`;

/**
 * Starts everything a test file needs.
 * @param {{backends?: ('s3' | 'local')[]}} [options]
 */
export async function startSuite({ backends = ['s3', 'local'] } = {}) {
  const cleanups = [];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  };
  try {
    const services = await startServices();
    cleanups.push(services.stop);
    const pages = await startStaticServer();
    cleanups.push(pages.close);
    const servers = {};
    await Promise.all(
      backends.map(async (backend) => {
        const name = unique(`b${backend}`).replace('-', '_');
        servers[backend] = await startUploader({
          backend,
          databaseUrl: await services.createDatabase(name),
          s3Endpoint: services.s3Endpoint,
          bucket: unique(`browser-${backend}`),
          allowedOrigin: pages.url,
        });
        cleanups.push(servers[backend].stop);
      }),
    );
    const browser = await launchBrowser();
    cleanups.push(browser.close);
    const apiOrigins = Object.values(servers).flatMap((s) => [
      s.url,
      s.url.replace('localhost', '127.0.0.1'),
    ]);
    pages.connectSrc = [...apiOrigins, services.s3Endpoint];
    return {
      services,
      pages,
      servers,
      context: browser.context,
      stop,
      /** The URL pages import the client from, for the API `server`. */
      clientUrl: (server) => (CLIENT_SOURCE === 'server' ? server.url : pages.url) + '/client/uploader.js',
      /** The upload page, talking to `server`. */
      pageUrl(server) {
        pages.pageApi = server.url;
        return PAGE_SOURCE === 'server' ? `${server.url}/upload` : `${pages.url}/upload`;
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Whether a request goes to `server`'s storage: S3, or the local backend's /storage routes. */
export function isStorageRequest(suite, server, url) {
  const target = new URL(url);
  if (server.backend === 's3') return target.origin === suite.services.s3Endpoint;
  return target.pathname.startsWith('/storage/');
}

/** Whether a storage request uploads a part of a multipart upload. */
export function isPartRequest(url) {
  return new URL(url).searchParams.has('partNumber');
}
