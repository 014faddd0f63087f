// Types of @cloud-asset-uploader/client (src/uploader.js), checked by `npm run typecheck`.

/** Version of this client; it matches the server's. */
export const VERSION: string;
/** Largest file whose SHA-256 is computed in the browser and declared (256 MiB). */
export const CHECKSUM_MAX_SIZE: number;
/** Prefix of the `localStorage` keys that remember unfinished multipart uploads. */
export const RESUME_KEY_PREFIX: string;

/** An asset as `GET /api/assets/{asset_id}` answers it. */
export interface Asset {
  asset_id: string;
  object_key: string;
  status: 'pending' | 'complete';
  content_type: string | null;
  content_length: number | null;
  stored_size: number | null;
  checksum_sha256: string | null;
  /**
   * For an asset stored in parts each signed with its SHA-256: base64 of the SHA-256 of the
   * parts' concatenated raw SHA-256 digests, then `-` and the number of parts (S3's
   * `COMPOSITE` checksum). `null` otherwise.
   */
  composite_sha256: string | null;
  /** Size of every part but the last, when `composite_sha256` is set; else `null`. */
  part_size: number | null;
  created_at: string;
  upload_expires_at: string;
  completed_at: string | null;
}

/** One page of `GET /api/assets`. */
export interface AssetPage {
  items: Asset[];
  /** Pass as `cursor` for the next page; `null` on the last page. */
  next_cursor: string | null;
}

/** A signed download URL (`GET /api/access`). */
export interface Access {
  asset_id: string;
  url: string;
  expires_at: string;
}

/** Progress of one upload, in bytes. */
export interface Progress {
  /** Bytes stored or in flight; never decreases. */
  loaded: number;
  total: number;
  /** Smoothed speed in bytes per second. */
  speed: number;
  /** Seconds left at the current speed; `null` while unknown. */
  eta: number | null;
}

/** Retry policy: `retries` retries, backoff with full jitter between 0 and `min(maxDelay, baseDelay × 2^n)` ms. */
export interface RetryOptions {
  retries?: number;
  baseDelay?: number;
  maxDelay?: number;
}

export interface ClientOptions {
  /** Server origin (and path prefix, if any); defaults to the page's origin. */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Sent as `X-Api-Key`. */
  apiKey?: string;
  /** Awaited before every request; its answer is sent as a bearer token (short-lived tokens). */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  retry?: RetryOptions;
}

export interface UploadOptions {
  /** The asset's name; defaults to the file's name. */
  objectKey?: string;
  /** Declared media type; defaults to `file.type`. */
  contentType?: string;
  /**
   * `false`: declare no checksum at all. A string: this base64 SHA-256 of the whole file.
   * Otherwise the SHA-256 is computed for files up to {@link CHECKSUM_MAX_SIZE}. Unless
   * `false`, a file sent in parts also has each part's SHA-256 computed and signed into its
   * URL, so storage refuses a part whose bytes differ (needs WebCrypto).
   */
  checksum?: boolean | string;
  /** `true` asks for parts, `false` forbids them; by default the server decides by size. */
  multipart?: boolean;
  /** `false` declares no size (and no checksum): S3 then signs a form `POST`. Default `true`. */
  declareSize?: boolean;
  /** Parts sent at once (default 4). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
  /** On abort, keep the pending asset (and the resume record) instead of deleting it. */
  keepOnAbort?: boolean;
  /** `false`: neither continue an earlier multipart upload of this file nor remember this one. */
  resume?: boolean;
  /** Lifetime of the signed URLs in seconds. */
  expiresIn?: number;
}

export interface ListOptions {
  status?: 'pending' | 'complete';
  prefix?: string;
  /** Page size, 1–1000. */
  limit?: number;
  signal?: AbortSignal;
}

export class UploaderClient {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  /** Uploads the file and resolves with the completed asset. */
  upload(file: Blob & { name?: string; lastModified?: number }, options?: UploadOptions): Promise<Asset>;
  access(assetId: string, options?: { expiresIn?: number; signal?: AbortSignal }): Promise<Access>;
  get(assetId: string, options?: { signal?: AbortSignal }): Promise<Asset>;
  delete(assetId: string, options?: { signal?: AbortSignal }): Promise<void>;
  /** One page of the caller's assets. */
  listPage(options?: ListOptions & { cursor?: string }): Promise<AssetPage>;
  /** Every asset of the caller, item by item, fetching pages as needed. */
  list(options?: ListOptions): AsyncGenerator<Asset, void, undefined>;
  /** Every page of the caller's assets, fetched as the iteration asks for them. */
  pages(options?: ListOptions): AsyncGenerator<AssetPage, void, undefined>;
}

export interface UploaderErrorInfo {
  status?: number;
  code?: string;
  detail?: string;
  field?: string;
  storageCode?: string;
  retryAfter?: number | null;
  problem?: object;
  cause?: unknown;
}

/** A request the server or storage refused, or that could not reach them. */
export class UploaderError extends Error {
  constructor(message: string, info?: UploaderErrorInfo);
  readonly name: 'UploaderError';
  /** HTTP status, 0 when no answer came. */
  status: number;
  /**
   * The problem's `code`, `storage_rejected` for storage's own errors, `checksum_mismatch`
   * for a part whose bytes differ from its signed SHA-256, `network_error`, …
   */
  code: string;
  detail: string;
  field?: string;
  storageCode?: string;
  /** Milliseconds the answer's `Retry-After` asked to wait. */
  retryAfter: number | null;
  problem?: object;
  retryable: boolean;
}

/** A planned part of a multipart upload. */
export interface PlannedPart {
  partNumber: number;
  start: number;
  end: number;
  size: number;
}

/** A part storage already holds (`uploaded` of `POST /api/upload/{id}/parts`). */
export interface StoredPart {
  part_number: number;
  size: number;
  etag?: string | null;
  /** The part's base64 SHA-256, when it was signed with one. */
  checksum_sha256?: string | null;
}

export function isRetryableStatus(status: number): boolean;
export function parseRetryAfter(value: string | null | undefined, now?: number): number | null;
export function backoffDelay(attempt: number, options?: RetryOptions, random?: () => number): number;
export function retryDelay(
  attempt: number,
  error: { retryAfter?: number | null },
  options?: RetryOptions,
  random?: () => number,
): number;
export function retrySchedule(options?: RetryOptions, random?: () => number): number[];
export function planParts(size: number, partSize: number): PlannedPart[];
export function resumeFingerprint(
  file: { name?: string; size: number; lastModified?: number },
  objectKey: string,
  baseUrl: string,
): string;
export function parseStorageError(text: string): { code: string; message: string } | null;
export function reusableParts(
  plan: PlannedPart[],
  uploaded: StoredPart[] | undefined,
  remembered?: Record<string, string>,
  computed?: Map<number, string>,
): Map<number, string>;
/** Whether storage refused a part for its checksum (S3's `BadDigest`, or `checksum_mismatch`). */
export function isChecksumRefusal(error: unknown): boolean;

/** Byte progress over parallel requests, with a smoothed speed and an ETA. */
export class ProgressTracker {
  constructor(total: number, options?: { now?: () => number; halfLife?: number });
  readonly total: number;
  update(key: string | number, loaded: number): Progress;
  confirm(key: string | number, size: number): Progress;
  fail(key: string | number): Progress;
  sample(): Progress;
  snapshot(): Progress;
}
