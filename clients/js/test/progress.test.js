import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ProgressTracker } from '../src/uploader.js';

function clock() {
  let now = 0;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
}

test('loaded adds confirmed parts and the bytes in flight', () => {
  const time = clock();
  const tracker = new ProgressTracker(30, { now: time.now });
  time.advance(100);
  tracker.update(1, 4);
  time.advance(100);
  assert.equal(tracker.update(2, 3).loaded, 7);
  time.advance(100);
  assert.equal(tracker.confirm(1, 10).loaded, 13);
  time.advance(100);
  const done = tracker.confirm(2, 10);
  assert.equal(done.loaded, 20);
  assert.equal(tracker.confirm(3, 10).loaded, 30);
  assert.equal(tracker.snapshot().eta, 0);
});

test('a failed attempt never moves progress backwards, and its retry catches up', () => {
  const time = clock();
  const tracker = new ProgressTracker(20, { now: time.now });
  const seen = [];
  const record = (p) => seen.push(p.loaded);
  time.advance(10);
  record(tracker.update(1, 8));
  time.advance(10);
  record(tracker.update(2, 6));
  time.advance(10);
  record(tracker.fail(1)); // 8 in-flight bytes are lost
  time.advance(10);
  record(tracker.update(1, 5));
  time.advance(10);
  record(tracker.update(1, 9));
  time.advance(10);
  record(tracker.confirm(2, 10));
  time.advance(10);
  record(tracker.confirm(1, 10));
  assert.deepEqual(seen, [8, 14, 14, 14, 15, 19, 20]);
  for (let i = 1; i < seen.length; i += 1) assert.ok(seen[i] >= seen[i - 1]);
});

test('loaded never exceeds the total', () => {
  const tracker = new ProgressTracker(10, { now: clock().now });
  tracker.update('a', 9);
  assert.equal(tracker.update('b', 9).loaded, 10);
});

test('speed is an exponentially weighted average and gives the ETA', () => {
  const time = clock();
  const tracker = new ProgressTracker(10_000, { now: time.now, halfLife: 1000 });
  time.advance(1000);
  let p = tracker.update(1, 1000); // 1000 B/s, the first sample sets the speed
  assert.equal(p.speed, 1000);
  assert.equal(p.eta, 9);
  time.advance(1000);
  p = tracker.update(1, 4000); // 3000 B/s, weighted by half after one half-life
  assert.equal(p.speed, 2000);
  assert.equal(p.eta, 3);
});

test('samples in the same millisecond count towards the next one', () => {
  const time = clock();
  const tracker = new ProgressTracker(1000, { now: time.now, halfLife: 1000 });
  time.advance(500);
  tracker.update(1, 100);
  assert.equal(tracker.update(2, 100).speed, 200, 'same instant: no division by zero, no change yet');
  time.advance(500);
  // 150 bytes since the last counted sample (100 of them from the same-instant one) in 0.5 s.
  const expected = 200 + (1 - 2 ** -0.5) * (300 - 200);
  assert.ok(Math.abs(tracker.update(2, 150).speed - expected) < 1e-9);
});

test('the ETA is unknown until bytes move', () => {
  const tracker = new ProgressTracker(100, { now: clock().now });
  assert.deepEqual(tracker.snapshot(), { loaded: 0, total: 100, speed: 0, eta: null });
});
