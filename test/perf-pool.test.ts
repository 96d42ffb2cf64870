/**
 * The worker pool's bounds (pool.ts): at most 3 batches in flight, and never more workers started
 * than could be busy with them, whatever --workers asks (each idle isolate would only cost memory).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCryptoRunner } from '../src/pipeline/pool.js';
import { JobBatch, type SlotDef } from '../src/offload/jobs.js';

for (const [asked, depth, started] of [[1, 2, 1], [2, 3, 2], [4, 3, 3], [8, 3, 3]] as const) {
  test(`pool: --workers ${asked} keeps ${depth} batches in flight and starts ${started} worker(s)`, async () => {
    const runner = createCryptoRunner(asked);
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
