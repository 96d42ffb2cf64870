/**
 * Read batches (run.ts SMALL_FRAME_BATCH / LARGE_FRAME_BATCH, IPSECOV2_BATCH_FRAMES): their size
 * changes the speed, never the output. Byte-identical outputs for batch sizes from 1 frame to
 * more than the capture, inline and at 2 workers; by default the batch size follows the frames'
 * size (--json readBatches), and IPSECOV2_BATCH_FRAMES fixes it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LARGE_FRAME_BATCH, SMALL_FRAME_BATCH, SMALL_FRAME_BYTES } from '../src/pipeline/run.js';
import { buildPcap, bytesOf, repoRoot } from './helpers/capture-util.js';
import { makeSyntheticEsp, type SyntheticEsp } from './helpers/synthetic-esp.js';

const BIN = join(repoRoot(), 'bin', 'ipsecov2');

describe('read batch size', () => {
  let dir = '';
  let esp: SyntheticEsp;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ipsecov2-batch-'));
    esp = await makeSyntheticEsp(dir, 1500);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function rx(env: string | undefined, workers: number, tag: string, input = esp.input): { pcapng: Buffer; oob: Buffer; json: Record<string, unknown> } {
    const out = join(dir, `${tag}.pcapng`);
    const oob = join(dir, `${tag}.jsonl`);
    const r = spawnSync(process.execPath, [BIN, 'rx', '--sa', esp.saFile, '--any-direction', input, '-w', out, '--oob', oob, '--workers', String(workers), '--json'], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', IPSECOV2_BATCH_FRAMES: env },
    });
    assert.equal(r.status, 0, r.stderr);
    return { pcapng: readFileSync(out), oob: readFileSync(oob), json: JSON.parse(r.stderr.trim().split('\n').pop()!) as Record<string, unknown> };
  }

  it('by default follows the frames\' size; IPSECOV2_BATCH_FRAMES fixes it; the output never changes', () => {
    const ref = rx(undefined, 0, 'ref');
    const frames = 1500 + Math.ceil(1500 / 70); // every 70th frame twice (a replay)
    assert.equal(ref.json.framesIn, frames);
    // small frames (under SMALL_FRAME_BYTES on average): SMALL_FRAME_BATCH a batch
    assert.equal(ref.json.batchFrames, 0);
    assert.equal(ref.json.readBatches, Math.ceil(frames / SMALL_FRAME_BATCH));
    const outcomes = ref.json.outcomes as Record<string, number>;
    assert.ok((outcomes.CRYPTO_SUCCESS ?? 0) > 900 && Object.keys(outcomes).length > 2, JSON.stringify(outcomes));
    for (const [env, want] of [['1', 1], ['7', 7], ['1024', 1024], ['65536', 65536], ['0', 0], ['x', 0], ['65537', 0]] as const) {
      for (const w of [0, 2]) {
        const got = rx(env, w, `b${env}-${w}`);
        assert.equal(got.json.batchFrames, want, `IPSECOV2_BATCH_FRAMES=${env}`);
        if (want > 0) assert.equal(got.json.readBatches, Math.ceil(frames / want));
        assert.ok(got.pcapng.equals(ref.pcapng), `capture differs at IPSECOV2_BATCH_FRAMES=${env}, ${w} workers`);
        assert.ok(got.oob.equals(ref.oob), `OOB differs at IPSECOV2_BATCH_FRAMES=${env}, ${w} workers`);
      }
    }
  });

  it('large frames: the first read takes SMALL_FRAME_BATCH, the rest LARGE_FRAME_BATCH', () => {
    const n = 3000;
    const big = join(dir, 'big.pcap');
    writeFileSync(big, buildPcap(Array.from({ length: n }, (_, i) => ({ sec: i, frac: 0, data: bytesOf(SMALL_FRAME_BYTES + 700, i) }))));
    const r = rx(undefined, 0, 'big', big);
    assert.equal(r.json.framesIn, n);
    // (a batch also ends where the reader's 1 MiB input chunk does: a few more)
    const batches = r.json.readBatches as number;
    const least = 1 + Math.ceil((n - SMALL_FRAME_BATCH) / LARGE_FRAME_BATCH);
    assert.ok(batches >= least && batches <= least + 4, `${batches} read batches`);
    const fixed = rx('256', 0, 'big256', big);
    assert.ok((fixed.json.readBatches as number) >= Math.ceil(n / 256) && (fixed.json.readBatches as number) > batches + 4);
    assert.ok(fixed.pcapng.equals(r.pcapng) && fixed.oob.equals(r.oob));
  });
});
