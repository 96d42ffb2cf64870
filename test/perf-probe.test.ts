/**
 * Where a batch's crypto runs when workers are allowed (pipeline/mode-probe.ts, pool.ts): the
 * probe's phases and votes with made-up periods, the pool running batches inline while its first
 * worker starts and when the probe says so, and a run whose batches alternate between the two
 * writing the same bytes as an inline run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { INLINE, ModeProbe, UNTAGGED_INLINE, UNTAGGED_POOL, type Mode } from '../src/pipeline/mode-probe.js';
import { createCryptoRunner } from '../src/pipeline/pool.js';
import { JobBatch, type SlotDef } from '../src/offload/jobs.js';
import { runCapture } from '../src/pipeline/run.js';
import { makeSyntheticEsp, rxOptions } from './helpers/synthetic-esp.js';

/** Hands out n batches; `period(mode)` is each one's sample. Returns the modes in order. */
function drive(p: ModeProbe, n: number, period: (m: Mode) => number, heavy = false): Mode[] {
  const modes: Mode[] = [];
  for (let i = 0; i < n; i++) {
    const tag = p.next(heavy);
    const m = p.modeOf(tag);
    modes.push(m);
    p.sample(tag, period(m));
  }
  return modes;
}

const str = (ms: Mode[]): string => ms.map((m) => (m === INLINE ? 'i' : 'p')).join('');

test('probe: warm-up on the workers, then phases workers-inline, inline-workers, workers-inline; inline chosen when faster', () => {
  const p = new ModeProbe({ phase: 4, pairs: 3, every: 6, warmup: 2 });
  const modes = drive(p, 2 + 24 + 6 + 24, (m) => (m === INLINE ? 1 : 2));
  assert.equal(str(modes.slice(0, 2)), 'pp', 'warm-up');
  assert.equal(str(modes.slice(2, 26)), 'ppppiiiiiiiippppppppiiii', 'probe phases');
  assert.equal(str(modes.slice(26, 32)), 'iiiiii', 'settled on inline');
  assert.equal(str(modes.slice(32)), 'ppppiiiiiiiippppppppiiii', 'probes again');
  assert.equal(p.probes, 2);
  assert.equal(p.inlineChosen, 2);
});

test('probe: the workers chosen when faster; a pair that disagrees is outvoted', () => {
  const p = new ModeProbe({ phase: 4, pairs: 3, every: 5, warmup: 0 });
  let k = 0;
  // in the first pair inline looks faster, in the other two the workers are
  const modes = drive(p, 24 + 5, (m) => (k++ < 8 ? (m === INLINE ? 1 : 2) : m === INLINE ? 3 : 2));
  assert.equal(str(modes.slice(24)), 'ppppp');
  assert.equal(p.probes, 1);
  assert.equal(p.inlineChosen, 0);
});

test('probe: the first and last batch of a phase are not counted (their periods straddle the switch)', () => {
  const p = new ModeProbe({ phase: 4, pairs: 1, every: 3, warmup: 0 });
  let i = 0;
  // inner batches: inline faster; edge batches: inline hugely slower (ignored)
  const modes = drive(p, 8 + 3, (m) => {
    const idx = i++ % 4;
    if (idx === 0 || idx === 3) return m === INLINE ? 1000 : 1;
    return m === INLINE ? 1 : 2;
  });
  assert.equal(str(modes.slice(8)), 'iii');
});

test('probe: a heavy crypto (against the main thread\'s work) is never probed inline', () => {
  const p = new ModeProbe({ phase: 4, pairs: 3, every: 10, warmup: 0 });
  const modes = drive(p, 40, () => 1, true);
  assert.equal(str(modes), 'p'.repeat(40));
  assert.equal(p.probes, 0);
});

test('probe: until the last sample is in, the batches keep the last phase\'s mode', () => {
  const p = new ModeProbe({ phase: 3, pairs: 1, every: 4, warmup: 0 });
  const tags: number[] = [];
  for (let i = 0; i < 6; i++) tags.push(p.next(false));
  assert.equal(str(tags.map((t) => p.modeOf(t))), 'pppiii');
  // no sample yet: the next batches stay inline, untagged
  assert.equal(p.next(false), UNTAGGED_INLINE);
  for (const t of tags) p.sample(t, p.modeOf(t) === INLINE ? 5 : 1);
  assert.equal(p.next(false), UNTAGGED_POOL, 'decided: the workers');
  assert.equal(p.probes, 1);
});

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
  const runner = createCryptoRunner(1, { probe: { warmup: 1000 } });
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

test('pool: without the probe (IPSECOV2_NO_POOL_PROBE=1), every batch goes to the worker once it is ready', async () => {
  const runner = createCryptoRunner(1, { probe: false });
  try {
    await untilOnWorker(runner);
    const inline = runner.batchesInline;
    for (let i = 0; i < 40; i++) {
      await oneBatch(runner);
      runner.took(false, 1);
    }
    assert.equal(runner.batchesInline, inline, 'no batch inline after the worker is ready');
    assert.equal(runner.probes, 0);
  } finally {
    await runner.close();
  }
});

test('pool: the probe moves batches inline when they are taken faster there', async () => {
  const runner = createCryptoRunner(1, { probe: { warmup: 0, phase: 3, pairs: 1, every: 1000 } });
  try {
    await untilOnWorker(runner);
    // the probe has begun (its first phase on the worker): inline batches are taken at once,
    // worker batches 20 ms apart
    for (let i = 0; i < 8; i++) {
      await oneBatch(runner);
      if (runner.depth === 2) await new Promise((r) => setTimeout(r, 20));
      runner.took(false, 1);
    }
    assert.equal(runner.probes, 1);
    assert.equal(runner.probesChoseInline, 1);
    const before = runner.batchesInline;
    await oneBatch(runner);
    runner.took(false, 1);
    assert.equal(runner.batchesInline, before + 1, 'settled inline');
  } finally {
    await runner.close();
  }
});

test('rx: batches alternating between inline and the worker write the same bytes as an inline run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-probe-'));
  try {
    const { sa, input } = await makeSyntheticEsp(dir, 12000);
    const inline = rxOptions(sa, input, join(dir, 'a.pcapng'), join(dir, 'a.jsonl'), 0);
    await runCapture(inline);
    const want = [readFileSync(inline.output!), readFileSync(inline.oob!)];
    let mixed = false;
    // the worker must be ready before the run ends for batches to move to it: a few tries on a slow machine
    for (let t = 0; t < 4 && !mixed; t++) {
      const o = { ...rxOptions(sa, input, join(dir, 'b.pcapng'), join(dir, 'b.jsonl'), 1), batchFrames: 2, pool: { probe: { warmup: 0, phase: 3, pairs: 1, every: 2 } } };
      const res = await runCapture(o);
      mixed = res.stats.cryptoBatchesInline > 2 && res.stats.cryptoBatchesOnWorkers > 2 && res.stats.poolProbes > 0;
      assert.ok(readFileSync(o.output!).equals(want[0]!), 'pcapng differs');
      assert.ok(readFileSync(o.oob!).equals(want[1]!), 'OOB differs');
    }
    assert.ok(mixed, 'no run mixed inline and worker batches');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
