/**
 * Batches too cheap to hand over run inline (pool.ts PoolRunner.runInline, HANDOFF_MS): the pool's
 * cost model (CryptoCost), and the rule through whole runs on both kinds of worker, with the
 * threshold set by IPSECOV2_HANDOFF_MS; the output never depends on where a batch ran.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCapture } from '../src/pipeline/run.js';
import { COST_WINDOW, CryptoCost, HANDOFF_MS } from '../src/pipeline/pool.js';
import { nativeAvailable } from '../src/crypto/native.js';
import { makeSyntheticEsp, rxOptions, type SyntheticEsp } from './helpers/synthetic-esp.js';

describe('CryptoCost', () => {
  it('knows nothing before a batch is timed, then scales the least recent cost per byte', () => {
    const c = new CryptoCost();
    assert.equal(c.estimateMs(1000), Infinity);
    c.observe(1, 0); // no bytes: no information
    assert.equal(c.estimateMs(1000), Infinity);
    c.observe(0.5, 10000);
    assert.equal(c.estimateMs(20000), 1);
    // an outlier (the thread preempted) does not move it
    c.observe(5, 10000);
    assert.equal(c.estimateMs(20000), 1);
    c.observe(0.25, 10000);
    assert.equal(c.estimateMs(20000), 0.5);
    // a lasting change: once the cheaper samples have left the window
    for (let i = 0; i < COST_WINDOW; i++) c.observe(2, 10000);
    assert.equal(c.estimateMs(10000), 2);
    assert.ok(HANDOFF_MS > 0 && HANDOFF_MS < 1);
  });
});

describe('batches too cheap to hand over', () => {
  let dir = '';
  let esp: SyntheticEsp;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ipsecov2-handoff-'));
    esp = await makeSyntheticEsp(dir, 6000);
  });
  after(() => {
    delete process.env.IPSECOV2_HANDOFF_MS;
    delete process.env.IPSECOV2_JS_WORKERS;
    rmSync(dir, { recursive: true, force: true });
  });

  for (const threads of nativeAvailable() ? ['native', 'js'] : ['js']) {
    it(`${threads === 'native' ? 'addon threads' : 'worker_threads'}: inline under the threshold, handed over at 0; same bytes`, async () => {
      process.env.IPSECOV2_JS_WORKERS = threads === 'js' ? '1' : '';
      const base = rxOptions(esp.sa, esp.input, join(dir, 'a.pcapng'), join(dir, 'a.jsonl'), 0);
      await runCapture(base);
      const want = [readFileSync(base.output!), readFileSync(base.oob!)];
      const run = async (ms: string, tag: string): Promise<{ inline: number; workers: number; started: number }> => {
        process.env.IPSECOV2_HANDOFF_MS = ms;
        const o = { ...rxOptions(esp.sa, esp.input, join(dir, `${tag}.pcapng`), join(dir, `${tag}.jsonl`), 2), batchFrames: 128 };
        const r = await runCapture(o);
        assert.ok(readFileSync(o.output!).equals(want[0]!), `${tag}: pcapng differs`);
        assert.ok(readFileSync(o.oob!).equals(want[1]!), `${tag}: OOB differs`);
        return { inline: r.stats.cryptoBatchesInline, workers: r.stats.cryptoBatchesOnWorkers, started: r.stats.workersStarted };
      };
      // every batch's crypto is expected under 1 s: all inline, no worker even started
      const cheap = await run('1000', 'cheap');
      assert.ok(cheap.inline > 40, `${cheap.inline} batches inline`);
      assert.equal(cheap.workers, 0);
      assert.equal(cheap.started, 0);
      // 0: every batch but the first is handed over (worker_threads: the worker is started, and
      // batches run inline only until it is ready, which on a short run may be never)
      const all = await run('0', 'all');
      assert.ok(all.started > 0, JSON.stringify(all));
      if (threads === 'native') assert.deepEqual([all.inline, all.workers > 40], [1, true], JSON.stringify(all));
      // the default: wherever the cost model puts them, the same bytes
      const def = await run('', 'default');
      assert.equal(def.inline + def.workers, cheap.inline);
    });
  }
});
