// Typed usage of the package, through its own name: `npm run typecheck` fails when
// index.d.ts, package.json's `exports` and the documented usage disagree.
import {
  UploaderClient,
  UploaderError,
  ProgressTracker,
  isChecksumRefusal,
  planParts,
  parseRetryAfter,
  reusableParts,
  retrySchedule,
  resumeFingerprint,
  type Asset,
  type Progress,
} from '@cloud-asset-uploader/client';

declare const input: HTMLInputElement;

async function uploadChosenFile(): Promise<string | undefined> {
  const client = new UploaderClient({
    baseUrl: 'https://uploads.example.com',
    getToken: async () => 'token',
  });
  const file = input.files?.[0];
  if (!file) return undefined;
  const controller = new AbortController();
  try {
    const asset: Asset = await client.upload(file, {
      objectKey: `photos/${file.name}`,
      concurrency: 2,
      signal: controller.signal,
      onProgress: ({ loaded, total, speed, eta }: Progress) => {
        console.log(loaded / total, speed, eta ?? 'unknown');
      },
    });
    const composite: string | null = asset.composite_sha256;
    console.log(composite ?? 'not in parts', asset.part_size ?? 0);
    const { url } = await client.access(asset.asset_id, { expiresIn: 300 });
    for await (const item of client.list({ status: 'complete', limit: 50 })) {
      console.log(item.object_key, item.stored_size);
    }
    for await (const each of client.pages({ limit: 100 })) {
      console.log(each.items.length, each.next_cursor ?? 'last page');
    }
    const page = await client.listPage({ prefix: 'photos/' });
    if (page.next_cursor) await client.listPage({ cursor: page.next_cursor });
    await client.delete(asset.asset_id);
    return url;
  } catch (error) {
    if (isChecksumRefusal(error)) return 'the file changed while it was read';
    if (error instanceof UploaderError) return `${error.status} ${error.code}: ${error.detail}`;
    if (error instanceof DOMException && error.name === 'AbortError') return 'cancelled';
    throw error;
  }
}

const parts: number[] = planParts(12, 5).map((part) => part.size);
const wait: number | null = parseRetryAfter('120');
const schedule: number[] = retrySchedule({ retries: 3, baseDelay: 100 });
const key: string = resumeFingerprint({ name: 'a.bin', size: 1, lastModified: 0 }, 'a.bin', 'https://x');
const progress: Progress = new ProgressTracker(10).update(1, 5);
const reused: Map<number, string> = reusableParts(
  planParts(12, 5),
  [{ part_number: 1, size: 5, etag: '"a"', checksum_sha256: null }],
  {},
  new Map([[1, 'AAA=']]),
);
new UploaderClient({ apiKey: 'key' });
// @ts-expect-error: `token` is a string, not a number
new UploaderClient({ token: 1 });

export { uploadChosenFile, parts, wait, schedule, key, progress, reused };
