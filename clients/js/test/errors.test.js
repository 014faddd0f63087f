import { test } from 'node:test';
import assert from 'node:assert/strict';

import { UploaderError, isChecksumRefusal, parseStorageError } from '../src/uploader.js';

test("storage's XML error gives its code and message", () => {
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code>' +
    '<Message>The SHA-256 you specified did not match the calculated checksum.</Message></Error>';
  assert.deepEqual(parseStorageError(xml), {
    code: 'BadDigest',
    message: 'The SHA-256 you specified did not match the calculated checksum.',
  });
  assert.deepEqual(parseStorageError('<Error><Code>AccessDenied</Code></Error>'), {
    code: 'AccessDenied',
    message: '',
  });
});

test('anything else is not a storage error', () => {
  for (const text of ['', 'Bad Gateway', '{"code":"x"}', undefined])
    assert.equal(parseStorageError(text), null);
});

test('an UploaderError carries status, code and detail, and knows whether to retry', () => {
  const refused = new UploaderError('No such asset.', { status: 404, code: 'asset_not_found' });
  assert.equal(refused.name, 'UploaderError');
  assert.ok(refused instanceof Error);
  assert.deepEqual(
    [refused.status, refused.code, refused.detail, refused.retryable],
    [404, 'asset_not_found', 'No such asset.', false],
  );
  assert.equal(new UploaderError('busy', { status: 503, code: 'storage_unavailable' }).retryable, true);
  const offline = new UploaderError('unreachable');
  assert.deepEqual([offline.status, offline.code, offline.retryable], [0, 'network_error', true]);
});

test("a checksum refusal is S3's BadDigest or the local backend's checksum_mismatch, at 400", () => {
  const s3 = new UploaderError('refused', {
    status: 400,
    code: 'storage_rejected',
    storageCode: 'BadDigest',
  });
  const local = new UploaderError('refused', { status: 400, code: 'checksum_mismatch' });
  assert.equal(isChecksumRefusal(s3), true);
  assert.equal(isChecksumRefusal(local), true);
  const others = [
    new UploaderError('denied', { status: 403, code: 'storage_rejected', storageCode: 'AccessDenied' }),
    new UploaderError('bad', { status: 400, code: 'storage_rejected', storageCode: 'InvalidArgument' }),
    new UploaderError('busy', { status: 503, code: 'checksum_mismatch' }),
    Object.assign(new Error('BadDigest'), { status: 400, storageCode: 'BadDigest' }),
  ];
  for (const error of others) assert.equal(isChecksumRefusal(error), false, error.message);
});
