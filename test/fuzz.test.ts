/**
 * A short seeded fuzzing pass in CI (the long runs: `npm run fuzz -- --iterations 1000000`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzFiles, fuzzFrames } from './fuzz/lib.js';

test('fuzz: 20000 mutated frames through the decoders and the rx engine (seed 1)', () => {
  const r = fuzzFrames(1, 20000);
  assert.equal(r.iterations, 20000);
  // The corpus is valid, so unmutated frames must decrypt: some successes and some failures.
  assert.ok((r.statuses.CRYPTO_SUCCESS ?? 0) > 0, JSON.stringify(r.statuses));
  assert.ok(Object.keys(r.statuses).length >= 3, JSON.stringify(r.statuses));
});

test('fuzz: 300 mutated capture files through the readers and the pipeline (seed 2)', async () => {
  const r = await fuzzFiles(2, 300);
  assert.equal(r.files, 300);
  assert.ok(r.frames > 0);
});
