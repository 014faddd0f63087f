// The pages' own origin: a tiny static server on 127.0.0.1, while the API answers on
// localhost and storage on its own port, so every call the browser makes is cross-origin.

import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const client = path.join(repo, 'clients/js');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
};

/** URL path → file. The page and the client keep the paths the API server serves them at. */
const FILES = {
  '/harness.html': path.join(here, '../fixtures/harness.html'),
  '/harness.js': path.join(here, '../fixtures/harness.js'),
  '/support/bytes.mjs': path.join(here, 'bytes.mjs'),
  '/client/uploader.js': path.join(client, 'src/uploader.js'),
  '/upload': path.join(client, 'page/index.html'),
  '/upload/page.js': path.join(client, 'page/page.js'),
  '/upload/page.css': path.join(client, 'page/page.css'),
};

/**
 * What a test makes on demand under a path prefix: the answer to a GET of `url`, or null (404).
 * @typedef {(url: URL) => Promise<{type: string, body: string} | null>} Maker
 */

/** Answers with what `make` makes of `url`; a failure is a 500 saying why, also on stderr. */
async function answerMade(res, make, url) {
  try {
    const made = await make(url);
    if (!made) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': made.type, 'cache-control': 'no-store' }).end(made.body);
  } catch (error) {
    console.error(`static server: ${url.pathname}: ${error.stack}`);
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
  }
}

/**
 * Starts the static server. Set `pageApi` (the API the upload page talks to) and `connectSrc`
 * (origins the page's Content-Security-Policy lets it reach) before opening `/upload`;
 * `serve(prefix, make)` answers GETs of the paths under `prefix` with what `make` makes.
 * @returns {Promise<{url: string, pageApi: string, connectSrc: string[],
 *   serve: (prefix: string, make: Maker) => void, close: () => Promise<void>}>}
 */
export async function startStaticServer() {
  const makers = new Map();
  const state = { url: '', pageApi: '', connectSrc: [], serve: (prefix, make) => makers.set(prefix, make) };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const route = url.pathname;
    const make = [...makers].find(([prefix]) => route.startsWith(prefix))?.[1];
    if (make && req.method === 'GET') return answerMade(res, make, url);
    const file = FILES[route];
    if (!file || req.method !== 'GET') {
      res.writeHead(404).end();
      return;
    }
    let body = await readFile(file, 'utf8');
    const headers = {
      'content-type': TYPES[path.extname(file)] ?? 'text/html; charset=utf-8',
      'cache-control': 'no-store',
    };
    if (route === '/upload') {
      // The one difference from the page the API serves: it names the API's origin.
      const meta = /<meta name="uploader-api" content="" ?\/?>/;
      if (!meta.test(body)) throw new Error('index.html lost its <meta name="uploader-api" content="">');
      body = body.replace(meta, `<meta name="uploader-api" content="${state.pageApi}" />`);
      headers['content-security-policy'] =
        `default-src 'self'; connect-src 'self' ${state.connectSrc.join(' ')}`;
    }
    res.writeHead(200, headers).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${server.address().port}`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    });
  return state;
}
