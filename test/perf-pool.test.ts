/**
 * The worker pool's bounds (pool.ts): at most 3 batches in flight, and never more workers started
 * than could be busy with them, whatever --workers asks (each idle isolate would only cost memory);
 * none at all for a capture with one batch of crypto.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCryptoRunner } from '../src/pipeline/pool.js';
import { JobBatch, type SlotDef } from '../src/offload/jobs.js';
import { nativeAvailable } from '../src/crypto/native.js';

/** worker_threads, and the addon's crypto threads where it is built (the same bounds). */
const KINDS = nativeAvailable() ? (['js', 'native'] as const) : (['js'] as const);

for (const threads of KINDS) for (const [asked, depth, most] of [[1, 2, 1], [2, 3, 2], [4, 3, 3], [8, 3, 3]] as const) {
  test(`pool (${threads}): --workers ${asked} starts 1 worker, at most ${most} when the pipeline waits; batches in flight: workers + 1, at most ${depth}`, async () => {
    const runner = createCryptoRunner(asked, { everyBatch: true, threads });
    try {
      assert.equal(runner.depth, 2);
      // the first worker starts with the first batch that has a job
      assert.equal(runner.started, 0);
      const defs = new Map<number, SlotDef>([[0, { slot: 0, esp: null, ah: null }]]);
      const batch = async (): Promise<void> => {
        const jobs = new JobBatch(64, 4);
        jobs.addJob();
        await runner.run(jobs, defs);
      };
      await batch();
      assert.equal(runner.started, 1);
      // batches that were ready when taken: no growth
      for (let i = 0; i < 8; i++) runner.took(false);
      assert.equal(runner.started, 1);
      // waited for in 3 of the last 4 batches, every worker past its start-up: one more worker
      runner.took(true);
      runner.took(true);
      assert.equal(runner.started, 1);
      runner.took(true);
      assert.equal(runner.started, Math.min(2, most));
      assert.equal(runner.depth, Math.min(3, depth));
      for (let i = 0; i < 4; i++) await batch(); // round robin: the new worker returns one too
      // after adding one, 4 more batches are counted before the next
      runner.took(true);
      runner.took(false);
      runner.took(true);
      assert.equal(runner.started, Math.min(2, most));
      runner.took(true);
      assert.equal(runner.started, Math.min(3, most));
      assert.equal(runner.depth, depth);
      assert.equal(runner.faults, 0);
    } finally {
      await runner.close();
    }
  });
}

for (const threads of KINDS) test(`pool (${threads}): waits for a worker whose crypto is cheap against the main thread's work add no worker`, async () => {
  const runner = createCryptoRunner(2, { everyBatch: true, threads });
  try {
    const jobs = new JobBatch(64, 4);
    jobs.addJob();
    await runner.run(jobs, new Map<number, SlotDef>([[0, { slot: 0, esp: null, ah: null }]]));
    assert.equal(runner.started, 1);
    // the worker's batch took well under a millisecond of crypto; the main thread 50 ms of its own
    for (let i = 0; i < 8; i++) runner.took(true, 50);
    assert.equal(runner.started, 1);
    // the same waits with crypto as costly as the main thread's work (a tiny own share): one more
    for (let i = 0; i < 4; i++) runner.took(true, 0);
    assert.equal(runner.started, 2);
  } finally {
    await runner.close();
  }
});

test('pool: waits while a worker is still starting do not add workers', async () => {
  // worker_threads only: a native thread is ready as soon as it exists
  const runner = createCryptoRunner(2, { everyBatch: true, threads: 'js' });
  try {
    const jobs = new JobBatch(64, 4);
    jobs.addJob();
    const done = runner.run(jobs, new Map<number, SlotDef>([[0, { slot: 0, esp: null, ah: null }]]));
    // the worker has not returned anything yet
    for (let i = 0; i < 8; i++) runner.took(true);
    assert.equal(runner.started, 1);
    await done;
  } finally {
    await runner.close();
  }
});

for (const threads of KINDS) test(`pool (${threads}): by default the first batch with crypto runs inline; the workers start with the second`, async () => {
  const runner = createCryptoRunner(2, { threads });
  try {
    const defs = new Map<number, SlotDef>([[0, { slot: 0, esp: null, ah: null }]]);
    const empty = new JobBatch(64, 4);
    await runner.run(empty, defs);
    const started = (): number => runner.started;
    assert.equal(started(), 0, 'a batch without crypto starts nothing');
    const first = new JobBatch(64, 4);
    first.addJob();
    await runner.run(first, defs);
    assert.equal(started(), 0, 'the first batch ran on the main thread');
    const second = new JobBatch(64, 4);
    second.addJob();
    await runner.run(second, defs);
    assert.equal(started(), 1, 'one worker; more only when the pipeline waits for it');
    assert.equal(runner.faults, 0);
  } finally {
    await runner.close();
  }
});
