/**
 * Browser client for Cloud Asset Uploader.
 *
 * Files go straight from the browser to storage through the URLs the server signs: one
 * `PUT`, a form `POST`, or a multipart upload whose parts are sent in parallel, retried on
 * their own and resumed after a reload. The server is asked for the URLs, told when the
 * upload is done, and answers the completed asset.
 *
 * This file is self-contained (no imports) so that the server can serve it as one module at
 * `GET /client/uploader.js`. Besides {@link UploaderClient}, the pure functions the flow is
 * built from are exported for tests and for callers who build their own flow.
 *
 * @module @cloud-asset-uploader/client
 */

/** Version of this client; it matches the server's. */
export const VERSION = '0.1.0';

/**
 * Largest file whose SHA-256 is computed in the browser and declared: `crypto.subtle.digest`
 * needs the whole file in memory. Larger files declare no whole-file checksum; sent in parts,
 * each part is still declared with its own SHA-256 and checked by storage.
 */
export const CHECKSUM_MAX_SIZE = 256 * 1024 * 1024;

/** Prefix of the `localStorage` keys that remember unfinished multipart uploads. */
export const RESUME_KEY_PREFIX = 'cloud-asset-uploader:resume:';

const DEFAULT_CONCURRENCY = 4;
/**
 * Parts signed per request when each must first be hashed: the server then signs none up
 * front, so the client picks a batch small enough to start sending soon.
 */
const CHECKSUM_BATCH = 8;
const DEFAULT_RETRY = Object.freeze({ retries: 5, baseDelay: 500, maxDelay: 30_000 });
/** A part URL this close to its expiry is signed again before use. */
const URL_EXPIRY_MARGIN_MS = 5_000;
/** Request headers a browser sets itself and refuses to take from scripts. */
const BROWSER_HEADERS = new Set(['content-length', 'host']);

// ---------------------------------------------------------------------------------------
// Errors

/**
 * A request the server or storage refused, or that could not reach them.
 *
 * `code` is the server's stable problem `code` (e.g. `asset_not_found`), `storage_rejected`
 * when storage refused a request with its own (XML) error, or `network_error` when no answer
 * came. `status` is the HTTP status, 0 for network errors.
 */
export class UploaderError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: string, detail?: string, field?: string,
   *   storageCode?: string, retryAfter?: number | null, problem?: object, cause?: unknown}} [info]
   */
  constructor(message, info = {}) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    this.name = 'UploaderError';
    /** HTTP status, or 0 when no answer came. */
    this.status = info.status ?? 0;
    /** Stable machine-readable code. */
    this.code = info.code ?? 'network_error';
    /** Human-readable explanation. */
    this.detail = info.detail ?? message;
    /** The request field a `validation_failed` problem names. */
    this.field = info.field;
    /** Storage's own error code (e.g. `BadDigest`) when `code` is `storage_rejected`. */
    this.storageCode = info.storageCode;
    /** Milliseconds the answer's `Retry-After` asked to wait, if any. */
    this.retryAfter = info.retryAfter ?? null;
    /** The whole problem document, when the server sent one. */
    this.problem = info.problem;
    /** Whether sending the same request again may succeed. */
    this.retryable = this.status === 0 || isRetryableStatus(this.status);
  }
}

/** The error an aborted upload rejects with: a `DOMException` named `AbortError`. */
function abortError() {
  return new DOMException('The upload was aborted.', 'AbortError');
}

function throwIfAborted(signal) {
  if (signal?.aborted) throw abortError();
}

// ---------------------------------------------------------------------------------------
// Pure functions: retries, parts, resume fingerprints, storage errors

/**
 * Whether a response status is worth retrying: 408, 429 and every 5xx.
 * @param {number} status
 * @returns {boolean}
 */
export function isRetryableStatus(status) {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Milliseconds a `Retry-After` header asks to wait: delay-seconds or an HTTP date.
 * @param {string | null | undefined} value the header
 * @param {number} [now] current time in ms since the epoch
 * @returns {number | null} `null` when the header is absent or unreadable
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null) return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return null;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/**
 * Delay before retry number `attempt` (0-based): exponential backoff with full jitter, a
 * uniformly random wait between 0 and `min(maxDelay, baseDelay × 2^attempt)`.
 * @param {number} attempt
 * @param {{baseDelay?: number, maxDelay?: number}} [options] milliseconds
 * @param {() => number} [random] a source of numbers in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, options = {}, random = Math.random) {
  const { baseDelay = DEFAULT_RETRY.baseDelay, maxDelay = DEFAULT_RETRY.maxDelay } = options;
  return random() * Math.min(maxDelay, baseDelay * 2 ** attempt);
}

/**
 * Delay before retrying after `error`: its `Retry-After` when the answer had one, else
 * {@link backoffDelay}.
 * @param {number} attempt 0-based
 * @param {{retryAfter?: number | null}} error
 * @param {{baseDelay?: number, maxDelay?: number}} [options]
 * @param {() => number} [random]
 * @returns {number} milliseconds
 */
export function retryDelay(attempt, error, options = {}, random = Math.random) {
  return error?.retryAfter ?? backoffDelay(attempt, options, random);
}

/**
 * The whole schedule of waits for `retries` retries, as {@link backoffDelay} draws them.
 * @param {{retries?: number, baseDelay?: number, maxDelay?: number}} [options]
 * @param {() => number} [random]
 * @returns {number[]} milliseconds, one per retry
 */
export function retrySchedule(options = {}, random = Math.random) {
  const { retries = DEFAULT_RETRY.retries } = options;
  return Array.from({ length: retries }, (_, attempt) => backoffDelay(attempt, options, random));
}

/**
 * Byte ranges of a multipart upload: part n (1-based) starts at `(n - 1) × partSize`, every
 * part but the last has `partSize` bytes.
 * @param {number} size file size in bytes
 * @param {number} partSize
 * @returns {{partNumber: number, start: number, end: number, size: number}[]}
 */
export function planParts(size, partSize) {
  if (!(partSize > 0)) throw new RangeError('partSize must be positive');
  const parts = [];
  for (let start = 0, partNumber = 1; start < size; start += partSize, partNumber += 1) {
    const end = Math.min(size, start + partSize);
    parts.push({ partNumber, start, end, size: end - start });
  }
  return parts;
}

/**
 * The `localStorage` key under which an unfinished upload of this file is remembered: the
 * same file (name, size, last modification) to the same object key on the same server.
 * @param {{name?: string, size: number, lastModified?: number}} file
 * @param {string} objectKey
 * @param {string} baseUrl
 * @returns {string}
 */
export function resumeFingerprint(file, objectKey, baseUrl) {
  const parts = [baseUrl, objectKey, file.name, file.size, file.lastModified ?? 0];
  return RESUME_KEY_PREFIX + JSON.stringify(parts);
}

/**
 * Storage's XML error (`<Error><Code>…</Code><Message>…</Message></Error>`), if it is one.
 * @param {string} text
 * @returns {{code: string, message: string} | null}
 */
export function parseStorageError(text) {
  const code = /<Code>([^<]*)<\/Code>/.exec(text ?? '');
  if (!code) return null;
  const message = /<Message>([^<]*)<\/Message>/.exec(text);
  return { code: code[1], message: message ? message[1] : '' };
}

/**
 * Which parts a resumed upload can skip: those storage holds with their planned size, whose
 * ETag is known, from storage's listing or else as remembered when the part was sent (some
 * S3-compatible stores list parts without ETags). A part whose SHA-256 both storage reports
 * and the client has computed again is skipped only if the two agree. Returns part number →
 * ETag.
 * @param {{partNumber: number, size: number}[]} plan
 * @param {{part_number: number, size: number, etag?: string | null,
 *   checksum_sha256?: string | null}[]} uploaded
 * @param {Record<string, string>} [remembered] part number → ETag
 * @param {Map<number, string>} [computed] part number → base64 SHA-256 of the file's bytes
 * @returns {Map<number, string>}
 */
export function reusableParts(plan, uploaded, remembered = {}, computed = new Map()) {
  const sizes = new Map(plan.map((p) => [p.partNumber, p.size]));
  const reusable = new Map();
  for (const part of uploaded ?? []) {
    const etag = part.etag || remembered[part.part_number];
    const ours = computed.get(part.part_number);
    const differs = Boolean(part.checksum_sha256 && ours && part.checksum_sha256 !== ours);
    if (etag && !differs && sizes.get(part.part_number) === part.size) reusable.set(part.part_number, etag);
  }
  return reusable;
}

/**
 * Whether storage refused a part because its bytes do not match the SHA-256 signed into its
 * URL: S3's `BadDigest`, or the local backend's `checksum_mismatch`.
 * @param {unknown} error
 * @returns {boolean}
 */
export function isChecksumRefusal(error) {
  return (
    error instanceof UploaderError &&
    error.status === 400 &&
    (error.storageCode === 'BadDigest' || error.code === 'checksum_mismatch')
  );
}

// ---------------------------------------------------------------------------------------
// Progress

/**
 * Byte progress of one upload over parallel requests, with a smoothed speed and an ETA.
 *
 * `loaded` counts confirmed bytes plus what requests in flight have sent. A failed attempt's
 * in-flight bytes are dropped, but the reported `loaded` never goes backwards: it holds
 * until the retry has caught up.
 */
export class ProgressTracker {
  /**
   * @param {number} total bytes
   * @param {{now?: () => number, halfLife?: number}} [options] a clock in ms, and the
   *   half-life in ms of the speed's exponentially weighted moving average
   */
  constructor(total, options = {}) {
    this.total = total;
    this.now = options.now ?? (() => Date.now());
    this.halfLife = options.halfLife ?? 2000;
    this.confirmed = 0;
    this.inFlight = new Map();
    this.loaded = 0;
    this.speed = 0;
    this.lastTime = this.now();
    this.lastLoaded = 0;
  }

  /** Request `key` has sent `loaded` bytes so far. */
  update(key, loaded) {
    this.inFlight.set(key, loaded);
    return this.sample();
  }

  /** Request `key` succeeded: its `size` bytes are stored. */
  confirm(key, size) {
    this.inFlight.delete(key);
    this.confirmed += size;
    return this.sample();
  }

  /** Request `key` failed: what it had sent no longer counts. */
  fail(key) {
    this.inFlight.delete(key);
    return this.sample();
  }

  /** @returns {{loaded: number, total: number, speed: number, eta: number | null}} */
  sample() {
    let current = this.confirmed;
    for (const bytes of this.inFlight.values()) current += bytes;
    this.loaded = Math.max(this.loaded, Math.min(this.total, current));
    const now = this.now();
    const elapsed = now - this.lastTime;
    if (elapsed > 0) {
      const instant = ((this.loaded - this.lastLoaded) / elapsed) * 1000;
      const weight = this.lastLoaded === 0 && this.speed === 0 ? 1 : 1 - 2 ** (-elapsed / this.halfLife);
      this.speed += weight * (instant - this.speed);
      this.lastTime = now;
      this.lastLoaded = this.loaded;
    }
    return this.snapshot();
  }

  /** @returns {{loaded: number, total: number, speed: number, eta: number | null}} */
  snapshot() {
    const remaining = this.total - this.loaded;
    const eta = remaining === 0 ? 0 : this.speed > 0 ? remaining / this.speed : null;
    return { loaded: this.loaded, total: this.total, speed: this.speed, eta };
  }
}

// ---------------------------------------------------------------------------------------
// Transport

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const done = () => {
      signal?.removeEventListener('abort', aborted);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const aborted = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    signal?.addEventListener('abort', aborted, { once: true });
  });
}

/**
 * Whether `headers` (an object of signed headers) names `name`, in any case.
 * @param {Record<string, string> | undefined} headers
 * @param {string} name
 */
function hasHeader(headers, name) {
  return Object.keys(headers ?? {}).some((key) => key.toLowerCase() === name);
}

/**
 * Runs `attempt` until it succeeds, retrying retryable {@link UploaderError}s after
 * {@link retryDelay}.
 */
async function withRetry(attempt, { signal, retry = DEFAULT_RETRY } = {}) {
  for (let n = 0; ; n += 1) {
    throwIfAborted(signal);
    try {
      return await attempt(n);
    } catch (error) {
      if (signal?.aborted) throw abortError();
      if (!(error instanceof UploaderError) || !error.retryable || n >= retry.retries) throw error;
      await sleep(retryDelay(n, error, retry), signal);
    }
  }
}

/** An error for a non-2xx answer: the server's problem, storage's XML error, or the status. */
function answerError(status, contentType, text, retryAfterHeader, source) {
  const retryAfter = parseRetryAfter(retryAfterHeader);
  if (/json/.test(contentType ?? '')) {
    try {
      const problem = JSON.parse(text);
      const detail = problem.detail ?? problem.title ?? `HTTP ${status}`;
      return new UploaderError(detail, {
        status,
        code: problem.code ?? `http_${status}`,
        detail,
        field: problem.field,
        retryAfter,
        problem,
      });
    } catch {
      // Not JSON after all: described by its status below.
    }
  }
  const xml = parseStorageError(text);
  if (source === 'storage' || xml) {
    const detail = xml ? `${xml.code}: ${xml.message}`.replace(/: $/, '') : `HTTP ${status}`;
    return new UploaderError(`Storage refused the request (${detail}).`, {
      status,
      code: 'storage_rejected',
      detail,
      storageCode: xml?.code,
      retryAfter,
    });
  }
  return new UploaderError(`The server answered HTTP ${status}.`, {
    status,
    code: `http_${status}`,
    retryAfter,
  });
}

/**
 * One request to storage through XMLHttpRequest, the only browser API that reports upload
 * progress. Resolves with the answer when it is 2xx, rejects with an {@link UploaderError}
 * otherwise; `onProgress` receives the body bytes sent, scaled to `bodySize`.
 */
function storageRequest({ method, url, headers = {}, body, bodySize, signal, onProgress }) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const xhr = new XMLHttpRequest();
    const aborted = () => xhr.abort();
    const settle = (fn, value) => {
      signal?.removeEventListener('abort', aborted);
      fn(value);
    };
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) {
      if (!BROWSER_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (event) => {
      if (!event.lengthComputable || event.total === 0) return;
      onProgress?.(Math.min(bodySize, Math.round((event.loaded / event.total) * bodySize)));
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        return settle(resolve, { status: xhr.status, header: (name) => xhr.getResponseHeader(name) });
      }
      const error = answerError(
        xhr.status,
        xhr.getResponseHeader('content-type'),
        xhr.responseText,
        xhr.getResponseHeader('retry-after'),
        'storage',
      );
      settle(reject, error);
    };
    xhr.onerror = () =>
      settle(reject, new UploaderError('Storage could not be reached.', { code: 'network_error' }));
    xhr.onabort = () => settle(reject, abortError());
    signal?.addEventListener('abort', aborted, { once: true });
    xhr.send(body);
  });
}

/** Whether this context has WebCrypto (`crypto.subtle` needs a secure context). */
function hasWebCrypto() {
  return Boolean(globalThis.crypto?.subtle);
}

/** SHA-256 of the blob, base64 (as S3's `x-amz-checksum-sha256`); null without WebCrypto. */
async function sha256Base64(blob) {
  if (!hasWebCrypto()) return null;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  return btoa(String.fromCharCode(...digest));
}

/**
 * The base64 SHA-256 of each part of one file, computed once and one part at a time, so that
 * only one part's bytes are in memory however many batches ask at once.
 */
class PartHasher {
  constructor(file, partSize, signal) {
    this.file = file;
    this.partSize = partSize;
    this.signal = signal;
    /** Part number → promise of its checksum. */
    this.started = new Map();
    /** Part number → checksum, for the parts hashed so far. */
    this.digests = new Map();
    this.queue = Promise.resolve();
  }

  /** @param {number} partNumber @returns {Promise<string>} */
  checksum(partNumber) {
    if (!this.started.has(partNumber)) {
      const hashing = this.queue.then(() => this.#hash(partNumber));
      this.queue = hashing.catch(() => {});
      hashing.catch(() => this.started.delete(partNumber));
      this.started.set(partNumber, hashing);
    }
    return this.started.get(partNumber);
  }

  async #hash(partNumber) {
    throwIfAborted(this.signal);
    const start = (partNumber - 1) * this.partSize;
    const checksum = await sha256Base64(
      this.file.slice(start, Math.min(this.file.size, start + this.partSize)),
    );
    throwIfAborted(this.signal);
    if (checksum === null) {
      const error = new UploaderError('This upload needs part checksums, but WebCrypto is unavailable.', {
        code: 'checksum_unavailable',
      });
      error.retryable = false;
      throw error;
    }
    this.digests.set(partNumber, checksum);
    return checksum;
  }
}

// ---------------------------------------------------------------------------------------
// Resume records

/** Unfinished multipart uploads in `localStorage`; every failure to reach it is ignored. */
const resumeStore = {
  get(key) {
    try {
      const entry = JSON.parse(globalThis.localStorage?.getItem(key) ?? 'null');
      const valid =
        entry &&
        typeof entry.assetId === 'string' &&
        typeof entry.uploadId === 'string' &&
        entry.partSize > 0 &&
        entry.batch > 0;
      return valid ? { ...entry, etags: { ...entry.etags } } : null;
    } catch {
      return null;
    }
  },
  set(key, entry) {
    try {
      globalThis.localStorage?.setItem(key, JSON.stringify(entry));
    } catch {
      // Full or forbidden storage only costs the ability to resume.
    }
  },
  remove(key) {
    try {
      globalThis.localStorage?.removeItem(key);
    } catch {
      // As above.
    }
  },
};

// ---------------------------------------------------------------------------------------
// Part URLs

/**
 * Signed part URLs of one multipart upload: the ones already given, and more signed through
 * `POST /api/upload/{id}/parts` in batches of at most `batch` parts still to send, when a
 * part has none or its URL is about to expire. The batch `lookahead` parts further on is
 * signed in advance, so that hashing and signing it overlap the parts being sent.
 */
class PartUrls {
  /**
   * @param {(numbers: number[]) => Promise<{parts: object[], expires_at: string}>} sign
   * @param {number[]} todo the part numbers still to send, in the order they are sent
   * @param {number} batch
   * @param {number} lookahead
   */
  constructor(sign, todo, batch, lookahead) {
    this.sign = sign;
    this.todo = todo;
    this.order = new Map(todo.map((n, i) => [n, i]));
    this.batch = batch;
    this.lookahead = lookahead;
    this.urls = new Map();
    this.pending = new Map();
    /** Parts stored: never signed again. */
    this.sent = new Set();
  }

  add(parts, expiresAt) {
    const expires = Date.parse(expiresAt);
    for (const part of parts)
      this.urls.set(part.part_number, { url: part.url, headers: part.headers ?? {}, expires });
  }

  forget(partNumber) {
    this.urls.delete(partNumber);
  }

  done(partNumber) {
    this.urls.delete(partNumber);
    this.sent.add(partNumber);
  }

  /** Whether part `n` needs signing and nobody is signing it. */
  unsigned(n) {
    return !this.sent.has(n) && !this.fresh(n) && !this.pending.has(n);
  }

  fresh(partNumber) {
    const known = this.urls.get(partNumber);
    return known && !(known.expires - Date.now() < URL_EXPIRY_MARGIN_MS);
  }

  /** @returns {Promise<{url: string, headers: Record<string, string>}>} what to send the part with */
  async get(partNumber) {
    const index = this.order.get(partNumber) ?? this.todo.length;
    this.#signFrom(partNumber, index);
    const ahead = index + this.lookahead;
    if (ahead < this.todo.length) this.#signFrom(this.todo[ahead], ahead);
    await this.pending.get(partNumber);
    return this.urls.get(partNumber);
  }

  /** Signs part `todo[index]` and the unsigned parts after it, unless it is signed or being signed. */
  #signFrom(partNumber, index) {
    if (!this.unsigned(partNumber)) return;
    const numbers = [partNumber];
    for (let i = index + 1; i < this.todo.length && numbers.length < this.batch; i += 1) {
      if (this.unsigned(this.todo[i])) numbers.push(this.todo[i]);
    }
    const signing = this.sign(numbers).then((answer) => this.add(answer.parts, answer.expires_at));
    const cleanup = () => numbers.forEach((n) => this.pending.delete(n));
    signing.then(cleanup, cleanup);
    numbers.forEach((n) => this.pending.set(n, signing));
  }
}

// ---------------------------------------------------------------------------------------
// The client

/**
 * A client of one Cloud Asset Uploader server.
 *
 * @example
 * const client = new UploaderClient({ baseUrl: 'https://uploads.example.com', token });
 * const asset = await client.upload(file, { onProgress: ({ loaded, total }) => show(loaded / total) });
 */
export class UploaderClient {
  /**
   * @param {{baseUrl?: string, token?: string, apiKey?: string,
   *   getToken?: () => string | null | Promise<string | null>,
   *   retry?: {retries?: number, baseDelay?: number, maxDelay?: number}}} [options]
   *   `baseUrl` defaults to the page's origin; `token` is sent as `Authorization: Bearer`,
   *   `apiKey` as `X-Api-Key`; `getToken` is awaited before every request (short-lived tokens).
   */
  constructor(options = {}) {
    const base = options.baseUrl ?? globalThis.location?.origin;
    if (!base) throw new TypeError('baseUrl is required outside a browser page');
    this.baseUrl = String(base).replace(/\/+$/, '');
    this.credentials = { token: options.token, apiKey: options.apiKey, getToken: options.getToken };
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  /**
   * Uploads `file` and resolves with the completed asset (`GET /api/assets/{id}`).
   *
   * Rejects with an {@link UploaderError}, or with an `AbortError` when `signal` aborts; the
   * pending asset is then deleted unless `keepOnAbort`.
   *
   * @param {Blob & {name?: string, lastModified?: number}} file
   * @param {import('./index.js').UploadOptions} [options]
   * @returns {Promise<import('./index.js').Asset>}
   */
  async upload(file, options = {}) {
    const objectKey = options.objectKey ?? file.name;
    if (!objectKey) throw new TypeError('objectKey is required for a file without a name');
    const outer = options.signal;
    throwIfAborted(outer);
    const inner = new AbortController();
    const forward = () => inner.abort();
    outer?.addEventListener('abort', forward, { once: true });
    const tracker = new ProgressTracker(file.size);
    const job = {
      file,
      objectKey,
      options,
      signal: inner.signal,
      tracker,
      assetId: null,
      fingerprint: options.resume === false ? null : resumeFingerprint(file, objectKey, this.baseUrl),
      /**
       * What resumes this upload after a reload:
       * `{assetId, uploadId, partSize, batch, partChecksums, etags}`.
       */
      record: null,
      /** Hashes the parts of an upload whose parts are signed with their SHA-256. */
      hasher: null,
      report: (progress) => options.onProgress?.(progress),
      stopOthers: () => inner.abort(),
    };
    try {
      job.report(tracker.snapshot());
      const parts = await this.#transfer(job);
      await this.#api('PUT', '/api/status', {
        body: { asset_id: job.assetId, uploaded_status: 'complete', ...(parts && { parts }) },
        signal: job.signal,
      });
      if (job.fingerprint) resumeStore.remove(job.fingerprint);
      return await this.get(job.assetId, { signal: job.signal });
    } catch (error) {
      if (!outer?.aborted) {
        // Storage holds parts the server will not assemble: continuing them cannot succeed.
        if (job.fingerprint && error?.code === 'upload_mismatch') resumeStore.remove(job.fingerprint);
        throw error;
      }
      await this.#afterAbort(job);
      throw abortError();
    } finally {
      outer?.removeEventListener('abort', forward);
    }
  }

  /**
   * A signed download URL for a complete asset.
   * @param {string} assetId
   * @param {{expiresIn?: number, signal?: AbortSignal}} [options]
   * @returns {Promise<{asset_id: string, url: string, expires_at: string}>}
   */
  access(assetId, options = {}) {
    const query = { asset_id: assetId, expires_in: options.expiresIn };
    return this.#api('GET', '/api/access', { query, signal: options.signal });
  }

  /**
   * One asset's metadata.
   * @param {string} assetId
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<import('./index.js').Asset>}
   */
  get(assetId, options = {}) {
    return this.#api('GET', `/api/assets/${encodeURIComponent(assetId)}`, { signal: options.signal });
  }

  /**
   * Deletes an asset and its stored object (aborting an unfinished multipart upload).
   * @param {string} assetId
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<void>}
   */
  async delete(assetId, options = {}) {
    await this.#api('DELETE', `/api/assets/${encodeURIComponent(assetId)}`, { signal: options.signal });
  }

  /**
   * One page of the caller's assets, oldest first. Pass `next_cursor` back as `cursor`.
   * @param {{status?: 'pending' | 'complete', prefix?: string, limit?: number, cursor?: string,
   *   signal?: AbortSignal}} [options]
   * @returns {Promise<{items: import('./index.js').Asset[], next_cursor: string | null}>}
   */
  listPage(options = {}) {
    const { status, prefix, limit, cursor, signal } = options;
    return this.#api('GET', '/api/assets', { query: { status, prefix, limit, cursor }, signal });
  }

  /**
   * Every asset of the caller, oldest first: an async iterator over **items**, fetching
   * pages of `limit` as it goes.
   * @param {{status?: 'pending' | 'complete', prefix?: string, limit?: number,
   *   signal?: AbortSignal}} [options]
   * @returns {AsyncGenerator<import('./index.js').Asset, void, undefined>}
   */
  async *list(options = {}) {
    for await (const page of this.pages(options)) yield* page.items;
  }

  /**
   * Every asset of the caller, oldest first: an async iterator over **pages**
   * (`{items, next_cursor}`), for callers that render a page at a time.
   * @param {{status?: 'pending' | 'complete', prefix?: string, limit?: number,
   *   signal?: AbortSignal}} [options]
   * @returns {AsyncGenerator<{items: import('./index.js').Asset[], next_cursor: string | null}, void, undefined>}
   */
  async *pages(options = {}) {
    let cursor;
    do {
      const page = await this.listPage({ ...options, cursor });
      yield page;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  // --- upload steps

  /** Sends the bytes; returns the part list a multipart upload completes with. */
  async #transfer(job) {
    const resumed = job.fingerprint ? await this.#resume(job) : null;
    if (resumed) return this.#sendParts(job, resumed.info, resumed.done);
    const issued = await this.#issue(job);
    job.assetId = issued.asset_id;
    const signed = issued.signed_info;
    if (signed.method === 'MULTIPART') {
      const partChecksums = signed.part_checksums === true;
      if (partChecksums) job.hasher = new PartHasher(job.file, signed.part_size, job.signal);
      // Within the server's limit per request (older servers do not state it).
      const limit = signed.max_parts_per_request > 0 ? signed.max_parts_per_request : Infinity;
      const batch = partChecksums
        ? Math.min(CHECKSUM_BATCH, limit)
        : Math.max(1, Math.min(signed.parts.length, limit));
      if (job.fingerprint) {
        job.record = {
          assetId: job.assetId,
          uploadId: signed.upload_id,
          partSize: signed.part_size,
          batch,
          partChecksums,
          etags: {},
        };
        resumeStore.set(job.fingerprint, job.record);
      }
      return this.#sendParts(job, { ...signed, batch, expires_at: issued.expires_at }, new Map());
    }
    if (signed.method === 'PUT') await this.#sendWhole(job, 'PUT', signed.url, signed.headers, job.file);
    else if (signed.method === 'POST')
      await this.#sendWhole(job, 'POST', signed.url, {}, formOf(signed.fields, job.file));
    else
      throw new UploaderError(`Unknown upload method ${signed.method}.`, {
        status: 0,
        code: 'unknown_method',
      });
    return null;
  }

  /**
   * `POST /api/upload`, declaring size, type and (for files that fit in memory) SHA-256, and
   * asking for parts signed with their SHA-256 unless checksums are off or WebCrypto missing.
   */
  async #issue(job) {
    const { file, options } = job;
    const declareSize = options.declareSize !== false;
    let checksum = typeof options.checksum === 'string' ? options.checksum : undefined;
    if (
      checksum === undefined &&
      options.checksum !== false &&
      declareSize &&
      file.size <= CHECKSUM_MAX_SIZE
    ) {
      checksum = (await sha256Base64(file)) ?? undefined;
      throwIfAborted(job.signal);
    }
    const contentType = options.contentType ?? (file.type || undefined);
    const body = {
      object_key: job.objectKey,
      ...(contentType && { content_type: contentType }),
      ...(declareSize && { content_length: file.size }),
      ...(checksum && declareSize && { checksum_sha256: checksum }),
      ...(options.checksum !== false && hasWebCrypto() && { part_checksums: true }),
      ...(options.multipart !== undefined && { multipart: options.multipart }),
      ...(options.expiresIn !== undefined && { expires_in: options.expiresIn }),
    };
    return this.#api('POST', '/api/upload', { body, signal: job.signal });
  }

  /**
   * The earlier multipart upload of this same file, if the server still has it pending with
   * the same upload id: its part layout, and the parts storage already holds.
   */
  async #resume(job) {
    const entry = resumeStore.get(job.fingerprint);
    if (!entry) return null;
    const plan = planParts(job.file.size, entry.partSize);
    // Signing a batch also lists what storage holds: the batch is of parts not known as sent,
    // the ones most likely still needed (and, in a checksummed upload, hashed for it).
    const unsent = plan.map((p) => p.partNumber).filter((n) => !entry.etags[n]);
    const numbers = (unsent.length > 0 ? unsent : [1]).slice(0, entry.batch);
    const forget = () => {
      resumeStore.remove(job.fingerprint);
      job.assetId = null;
      job.record = null;
      job.hasher = null;
      return null;
    };
    // An abort from here on deletes the earlier asset, as it would the upload's own.
    job.assetId = entry.assetId;
    job.record = entry;
    if (entry.partChecksums) job.hasher = new PartHasher(job.file, entry.partSize, job.signal);
    let info;
    try {
      info = await this.#signParts(job, numbers);
    } catch (error) {
      // Gone, complete, no longer in parts: the earlier upload cannot continue.
      if (!(error instanceof UploaderError) || error.retryable || error.status === 401) throw error;
      return forget();
    }
    const sameUpload =
      info.upload_id === entry.uploadId &&
      info.part_size === entry.partSize &&
      info.part_count === plan.length &&
      (info.part_checksums === true) === Boolean(entry.partChecksums);
    if (!sameUpload) return forget();
    const done = reusableParts(plan, info.uploaded, entry.etags, job.hasher?.digests);
    return { info: { ...info, batch: entry.batch }, done };
  }

  /**
   * `POST /api/upload/{id}/parts` for `partNumbers`: by number, or, when parts are signed
   * with their SHA-256, with each part's checksum, hashed here one part at a time.
   */
  async #signParts(job, partNumbers) {
    const parts = job.hasher
      ? await Promise.all(
          partNumbers.map(async (n) => ({ part_number: n, checksum_sha256: await job.hasher.checksum(n) })),
        )
      : undefined;
    const body = {
      ...(parts ? { parts } : { part_numbers: partNumbers }),
      ...(job.options.expiresIn !== undefined && { expires_in: job.options.expiresIn }),
    };
    return this.#api('POST', `/api/upload/${encodeURIComponent(job.assetId)}/parts`, {
      body,
      signal: job.signal,
    });
  }

  /** One signed request carrying the whole file, retried from the start when it fails. */
  async #sendWhole(job, method, url, headers, body) {
    const { file, tracker } = job;
    await withRetry(
      async () => {
        try {
          await storageRequest({
            method,
            url,
            headers,
            body,
            bodySize: file.size,
            signal: job.signal,
            onProgress: (loaded) => job.report(tracker.update('whole', loaded)),
          });
        } catch (error) {
          // A conditional PUT (`If-None-Match: *`) refused because the object exists: an
          // earlier attempt whose answer was lost stored it. Completion verifies it.
          if (error instanceof UploaderError && error.status === 412 && hasHeader(headers, 'if-none-match'))
            return;
          job.report(tracker.fail('whole'));
          throw error;
        }
      },
      { signal: job.signal, retry: this.retry },
    );
    job.report(tracker.confirm('whole', file.size));
  }

  /**
   * Sends every part not in `done`, `concurrency` at a time; returns the sorted part list.
   * The first failure that retries cannot fix stops the other parts.
   */
  async #sendParts(job, info, done) {
    const plan = planParts(job.file.size, info.part_size);
    if (plan.length !== info.part_count) {
      throw new UploaderError('The server planned another number of parts for this file.', {
        status: 0,
        code: 'part_plan_mismatch',
      });
    }
    const etags = new Map(done);
    for (const part of plan)
      if (etags.has(part.partNumber)) job.report(job.tracker.confirm(part.partNumber, part.size));
    const queue = plan.filter((part) => !etags.has(part.partNumber));
    const workers = Math.max(1, Math.min(job.options.concurrency ?? DEFAULT_CONCURRENCY, queue.length));
    const urls = new PartUrls(
      (numbers) => this.#signParts(job, numbers),
      queue.map((part) => part.partNumber),
      info.batch,
      Math.min(workers, info.batch),
    );
    urls.add(info.parts, info.expires_at);
    const worker = async () => {
      for (let part = queue.shift(); part; part = queue.shift()) {
        etags.set(part.partNumber, await this.#sendPart(job, part, urls));
      }
    };
    try {
      await Promise.all(Array.from({ length: workers }, worker));
    } catch (error) {
      job.stopOthers();
      throw error;
    }
    return plan.map((part) => ({ part_number: part.partNumber, etag: etags.get(part.partNumber) }));
  }

  /**
   * One part, with the headers signed for it, retried on its own; a 403 (an expired URL)
   * signs its URL once more. Bytes that do not match their signed checksum fail at once.
   */
  async #sendPart(job, part, urls) {
    const { tracker } = job;
    let resigned = false;
    return withRetry(
      async () => {
        const { url, headers } = await urls.get(part.partNumber);
        try {
          const answer = await storageRequest({
            method: 'PUT',
            url,
            headers,
            body: job.file.slice(part.start, part.end),
            bodySize: part.size,
            signal: job.signal,
            onProgress: (loaded) => job.report(tracker.update(part.partNumber, loaded)),
          });
          const etag = answer.header('etag');
          if (!etag) {
            throw new UploaderError(
              "Storage did not expose the ETag header (check the bucket's CORS ExposeHeaders).",
              {
                status: answer.status,
                code: 'etag_not_exposed',
              },
            );
          }
          job.report(tracker.confirm(part.partNumber, part.size));
          urls.done(part.partNumber);
          if (job.record) {
            job.record.etags[part.partNumber] = etag;
            resumeStore.set(job.fingerprint, job.record);
          }
          return etag;
        } catch (error) {
          job.report(tracker.fail(part.partNumber));
          if (isChecksumRefusal(error)) throw checksumMismatch(part.partNumber, error);
          if (error instanceof UploaderError && error.status === 403 && !resigned) {
            resigned = true;
            urls.forget(part.partNumber);
            error.retryable = true;
          }
          throw error;
        }
      },
      { signal: job.signal, retry: this.retry },
    );
  }

  /** After an abort: delete the pending asset and forget it, unless asked to keep it. */
  async #afterAbort(job) {
    if (job.options.keepOnAbort) return;
    if (job.fingerprint) resumeStore.remove(job.fingerprint);
    if (!job.assetId) return;
    try {
      await this.delete(job.assetId);
    } catch {
      // Already gone, or unreachable: the server sweeps abandoned pending assets itself.
    }
  }

  // --- API requests

  async #headers(json) {
    const headers = { accept: 'application/json, application/problem+json' };
    if (json) headers['content-type'] = 'application/json';
    const { token, apiKey, getToken } = this.credentials;
    const bearer = getToken ? await getToken() : token;
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (apiKey) headers['x-api-key'] = apiKey;
    return headers;
  }

  /** A JSON request to the API, retried on network errors, 408, 429 and 5xx. */
  #api(method, path, { body, query, signal } = {}) {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    return withRetry(
      async () => {
        const init = { method, headers: await this.#headers(body !== undefined), signal };
        if (body !== undefined) init.body = JSON.stringify(body);
        let response;
        try {
          response = await fetch(url, init);
        } catch (cause) {
          if (signal?.aborted) throw abortError();
          throw new UploaderError('The server could not be reached.', { code: 'network_error', cause });
        }
        const text = await response.text();
        if (!response.ok) {
          throw answerError(
            response.status,
            response.headers.get('content-type'),
            text,
            response.headers.get('retry-after'),
            'api',
          );
        }
        try {
          return text ? JSON.parse(text) : undefined;
        } catch (cause) {
          throw new UploaderError('The server answered something other than JSON.', {
            status: response.status,
            code: 'invalid_response',
            cause,
          });
        }
      },
      { signal, retry: this.retry },
    );
  }
}

/** The error for a part storage refused because its bytes differ from the ones hashed. */
function checksumMismatch(partNumber, refusal) {
  const detail =
    `Storage refused part ${partNumber}: its bytes differ from the SHA-256 computed when it ` +
    'was read (was the file changed during the upload?).';
  return new UploaderError(detail, {
    status: refusal.status,
    code: 'checksum_mismatch',
    detail,
    storageCode: refusal.storageCode,
    problem: refusal.problem,
    cause: refusal,
  });
}

function formOf(fields, file) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields ?? {})) form.append(name, value);
  form.append('file', file);
  return form;
}
