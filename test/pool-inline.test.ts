/**
 * With worker_threads, the pool runs a batch's crypto on the main thread for the first batch and
 * while its first worker starts (pool.ts), then hands every batch to the workers; a run whose
 * batches moved from inline to the worker writes the same bytes as an inline run. (The addon's
 * crypto threads start at once: test/native-threads.test.ts.) These batches are tiny: the pool
 * would keep them inline as too cheap to hand over (handoffMs, test/pool-handoff.test.ts) but for
 * handoffMs 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createCryptoRunner } from '../src/pipeline/pool.js';
import { JobBatch, type SlotDef } from '../src/offload/jobs.js';
import { runCapture } from '../src/pipeline/run.js';
import { makeSyntheticEsp, rxOptions } from './helpers/synthetic-esp.js';

const DEFS = new Map<number, SlotDef>([[0, { slot: 0, esp: null, ah: null }]]);

async function oneBatch(runner: ReturnType<typeof createCryptoRunner>): Promise<void> {
  const jobs = new JobBatch(64, 4);
  jobs.addJob();
  await runner.run(jobs, DEFS);
}

/** Run batches (each taken at once) until one went to the worker (it is ready). */
async function untilOnWorker(runner: ReturnType<typeof createCryptoRunner>): Promise<void> {
  await oneBatch(runner);
  runner.took(false, 1);
  while (runner.batchesOnWorkers === 0) {
    await new Promise((r) => setTimeout(r, 5));
    await oneBatch(runner);
    runner.took(false, 1);
  }
}

test('pool: batches run inline while the first worker starts, on the worker once it is ready', async () => {
  const runner = createCryptoRunner(1, { threads: 'js', handoffMs: 0 });
  try {
    await oneBatch(runner); // the first: inline, no worker
    assert.equal(runner.started, 0);
    await oneBatch(runner); // starts the worker, runs inline (it is not ready yet)
    assert.equal(runner.started, 1);
    assert.equal(runner.batchesInline, 2);
    assert.equal(runner.depth, 1, 'a batch that ran inline is taken at once');
    runner.took(false, 1);
    runner.took(false, 1);
    // the worker says it is ready within a few event-loop turns
    for (let i = 0; i < 200 && runner.batchesOnWorkers === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      await oneBatch(runner);
      runner.took(false, 1);
    }
    assert.ok(runner.batchesOnWorkers > 0, 'a batch went to the worker');
    assert.equal(runner.depth, 2);
  } finally {
    await runner.close();
  }
});

test('pool: once the worker is ready, every batch goes to it', async () => {
  const runner = createCryptoRunner(1, { threads: 'js', handoffMs: 0 });
  try {
    await untilOnWorker(runner);
    const inline = runner.batchesInline;
    for (let i = 0; i < 40; i++) {
      await oneBatch(runner);
      runner.took(false, 1);
    }
    assert.equal(runner.batchesInline, inline, 'no batch inline after the worker is ready');
    assert.equal(runner.batchesOnWorkers, 41);
  } finally {
    await runner.close();
  }
});

test('rx: batches that moved from inline to the worker write the same bytes as an inline run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-inline-'));
  try {
    const { sa, input } = await makeSyntheticEsp(dir, 48000);
    const inline = rxOptions(sa, input, join(dir, 'a.pcapng'), join(dir, 'a.jsonl'), 0);
    await runCapture(inline);
    const want = [readFileSync(inline.output!), readFileSync(inline.oob!)];
    let mixed = false;
    process.env.IPSECOV2_JS_WORKERS = '1';
    // 2-frame batches are too cheap to hand over (pool.ts HANDOFF_MS): every one is, here
    process.env.IPSECOV2_HANDOFF_MS = '0';
    // the worker must be ready before the run ends for batches to move to it: a few tries on a slow machine
    for (let t = 0; t < 4 && !mixed; t++) {
      const o = { ...rxOptions(sa, input, join(dir, 'b.pcapng'), join(dir, 'b.jsonl'), 1), batchFrames: 2 };
      const res = await runCapture(o);
      // the first batch and those while the worker started inline, the rest on the worker
      mixed = res.stats.cryptoBatchesInline > 1 && res.stats.cryptoBatchesOnWorkers > 2;
      assert.ok(readFileSync(o.output!).equals(want[0]!), 'pcapng differs');
      assert.ok(readFileSync(o.oob!).equals(want[1]!), 'OOB differs');
    }
    assert.ok(mixed, 'no run mixed inline and worker batches');
  } finally {
    delete process.env.IPSECOV2_JS_WORKERS;
    delete process.env.IPSECOV2_HANDOFF_MS;
    rmSync(dir, { recursive: true, force: true });
  }
});
