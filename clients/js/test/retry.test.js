import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  backoffDelay,
  isRetryableStatus,
  parseRetryAfter,
  retryDelay,
  retrySchedule,
} from '../src/uploader.js';

test('408, 429 and 5xx are retried; other statuses are not', () => {
  for (const status of [408, 429, 500, 502, 503, 504])
    assert.equal(isRetryableStatus(status), true, `${status}`);
  for (const status of [200, 400, 401, 403, 404, 409, 413, 415])
    assert.equal(isRetryableStatus(status), false, `${status}`);
});

test('Retry-After in seconds becomes milliseconds', () => {
  assert.equal(parseRetryAfter('0'), 0);
  assert.equal(parseRetryAfter('120'), 120_000);
  assert.equal(parseRetryAfter(' 7 '), 7_000);
});

test('Retry-After as an HTTP date is the time left until then, never negative', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now), 0);
});

test('an absent or unreadable Retry-After is null', () => {
  for (const value of [null, undefined, '', 'soon', '-5', '1.5', '12abc']) {
    assert.equal(parseRetryAfter(value), null, JSON.stringify(value));
  }
});

test('backoff grows exponentially up to the cap, jittered over the whole range', () => {
  const options = { baseDelay: 100, maxDelay: 1000 };
  const top = () => 0.999999;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((n) => Math.round(backoffDelay(n, options, top))),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.equal(
    backoffDelay(3, options, () => 0),
    0,
    'full jitter reaches zero',
  );
  assert.equal(
    backoffDelay(3, options, () => 0.5),
    400,
  );
});

test('the schedule has one delay per retry, each within its bound', () => {
  const schedule = retrySchedule({ retries: 6, baseDelay: 50, maxDelay: 400 });
  assert.equal(schedule.length, 6);
  schedule.forEach((delay, n) => {
    assert.ok(delay >= 0 && delay <= Math.min(400, 50 * 2 ** n), `retry ${n}: ${delay}`);
  });
});

test('a Retry-After the answer carried wins over the backoff', () => {
  assert.equal(
    retryDelay(4, { retryAfter: 2500 }, { baseDelay: 1 }, () => 0.5),
    2500,
  );
  assert.equal(
    retryDelay(4, { retryAfter: 0 }, { baseDelay: 1000 }, () => 0.5),
    0,
  );
  assert.equal(
    retryDelay(2, { retryAfter: null }, { baseDelay: 100, maxDelay: 10_000 }, () => 0.5),
    200,
  );
});
