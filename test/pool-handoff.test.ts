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
import { loadSaFile } from '../src/sa/load.js';
import { buildPcap } from './helpers/capture-util.js';
import { tunGcmSa, writeSaFile } from './helpers/sa-yaml.js';
import { ether, ipPacket, Prng } from './tx-helpers.js';
import { writeFileSync } from 'node:fs';

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

describe('a cheap batch between dear ones', () => {
  it('goes to the worker too: batches of full-size and of small frames alternating, 2 workers', { skip: nativeAvailable() ? false : 'needs the addon\'s threads' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-handoff-'));
    try {
      const sa = loadSaFile(writeSaFile(join(dir, 'sa.yaml'), [tunGcmSa()]));
      const r = new Prng(31);
      // 64 frames of 1400-byte datagrams, 64 of 20, ...: with 64-frame batches, batches ~14x
      // apart in bytes, on either side of the threshold set below
      const frames = Array.from({ length: 64 * 60 }, (_, i) => ({
        sec: 1700000000, frac: i, data: ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: (i >> 6) % 2 === 0 ? 1400 : 20, dst: Buffer.from([10, 1, 1, 9]) })),
      }));
      const plain = join(dir, 'plain.pcap');
      writeFileSync(plain, buildPcap(frames));
      const input = join(dir, 'esp.pcap');
      await runCapture({ ...rxOptions(sa, plain, input, null, 0), path: 'tx', format: 'pcap', ivSeed: '01' });
      const base = rxOptions(sa, input, join(dir, 'a.pcapng'), join(dir, 'a.jsonl'), 0);
      await runCapture(base);
      // a 64 x 1400-byte batch's AES-GCM takes ~0.05 ms here, a 64 x 20-byte one ~0.004 ms
      process.env.IPSECOV2_HANDOFF_MS = '0.015';
      const o = { ...rxOptions(sa, input, join(dir, 'b.pcapng'), join(dir, 'b.jsonl'), 2), batchFrames: 64 };
      const res = await runCapture(o);
      assert.ok(readFileSync(o.output!).equals(readFileSync(base.output!)), 'pcapng differs');
      assert.ok(readFileSync(o.oob!).equals(readFileSync(base.oob!)), 'OOB differs');
      // the first batches inline (4 here, while the cost model learns), then every batch handed
      // over; before, the cheap half ran inline (23 of 62 here), each making the pipeline wait
      // for the worker's batch before it
      const st = res.stats;
      assert.ok(st.cryptoBatchesInline <= 8 && st.cryptoBatchesOnWorkers >= 50, JSON.stringify({ inline: st.cryptoBatchesInline, workers: st.cryptoBatchesOnWorkers }));
    } finally {
      delete process.env.IPSECOV2_HANDOFF_MS;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
