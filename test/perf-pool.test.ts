/**
 * The worker pool's bounds (pool.ts): at most 3 batches in flight, and never more workers started
 * than could be busy with them, whatever --workers asks (each idle isolate would only cost memory);
 * none at all for a capture with one batch of crypto.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCryptoRunner } from '../src/pipeline/pool.js';
import { JobBatch, type SlotDef } from '../src/offload/jobs.js';

for (const [asked, depth, started] of [[1, 2, 1], [2, 3, 2], [4, 3, 3], [8, 3, 3]] as const) {
  test(`pool: --workers ${asked} keeps ${depth} batches in flight and starts ${started} worker(s)`, async () => {
    const runner = createCryptoRunner(asked, false);
    try {
      assert.equal(runner.depth, depth);
      // workers start with the first batch that has a job
      assert.equal((runner as unknown as { started: number }).started, 0);
      const jobs = new JobBatch(64, 4);
      jobs.addJob();
      const defs = new Map<number, SlotDef>([[0, { slot: 0, esp: null, ah: null }]]);
      await runner.run(jobs, defs);
      assert.equal((runner as unknown as { started: number }).started, started);
      assert.equal(runner.faults, 0);
    } finally {
      await runner.close();
    }
  });
}

test('pool: by default the first batch with crypto runs inline; the workers start with the second', async () => {
  const runner = createCryptoRunner(2);
  try {
    const defs = new Map<number, SlotDef>([[0, { slot: 0, esp: null, ah: null }]]);
    const empty = new JobBatch(64, 4);
    await runner.run(empty, defs);
    const started = (): number => (runner as unknown as { started: number }).started;
    assert.equal(started(), 0, 'a batch without crypto starts nothing');
    const first = new JobBatch(64, 4);
    first.addJob();
    await runner.run(first, defs);
    assert.equal(started(), 0, 'the first batch ran on the main thread');
    const second = new JobBatch(64, 4);
    second.addJob();
    await runner.run(second, defs);
    assert.equal(started(), 2);
    assert.equal(runner.faults, 0);
  } finally {
    await runner.close();
  }
});
