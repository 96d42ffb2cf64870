/**
 * Read batches (run.ts DEFAULT_BATCH_FRAMES, IPSECOV2_BATCH_FRAMES): their size changes how much
 * of V8's young generation survives, never the output. Byte-identical outputs for batch sizes
 * from 1 frame to more than the capture, inline and at 2 workers; the CLI's default and the
 * override, as --json reports them.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_BATCH_FRAMES } from '../src/pipeline/run.js';
import { repoRoot } from './helpers/capture-util.js';
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

  function rx(env: string | undefined, workers: number, tag: string): { pcapng: Buffer; oob: Buffer; json: Record<string, unknown> } {
    const out = join(dir, `${tag}.pcapng`);
    const oob = join(dir, `${tag}.jsonl`);
    const r = spawnSync(process.execPath, [BIN, 'rx', '--sa', esp.saFile, '--any-direction', esp.input, '-w', out, '--oob', oob, '--workers', String(workers), '--json'], {
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', IPSECOV2_BATCH_FRAMES: env },
    });
    assert.equal(r.status, 0, r.stderr);
    return { pcapng: readFileSync(out), oob: readFileSync(oob), json: JSON.parse(r.stderr.trim().split('\n').pop()!) as Record<string, unknown> };
  }

  it(`defaults to ${DEFAULT_BATCH_FRAMES} frames; IPSECOV2_BATCH_FRAMES overrides it; the output never changes`, () => {
    const ref = rx(undefined, 0, 'ref');
    assert.equal(ref.json.batchFrames, DEFAULT_BATCH_FRAMES);
    assert.equal(ref.json.framesIn, 1500 + Math.ceil(1500 / 70)); // every 70th frame twice (a replay)
    const outcomes = ref.json.outcomes as Record<string, number>;
    assert.ok((outcomes.CRYPTO_SUCCESS ?? 0) > 900 && Object.keys(outcomes).length > 2, JSON.stringify(outcomes));
    for (const [env, want] of [['1', 1], ['7', 7], ['1024', 1024], ['65536', 65536], ['0', DEFAULT_BATCH_FRAMES], ['x', DEFAULT_BATCH_FRAMES], ['65537', DEFAULT_BATCH_FRAMES]] as const) {
      for (const w of [0, 2]) {
        const got = rx(env, w, `b${env}-${w}`);
        assert.equal(got.json.batchFrames, want, `IPSECOV2_BATCH_FRAMES=${env}`);
        assert.ok(got.pcapng.equals(ref.pcapng), `capture differs at IPSECOV2_BATCH_FRAMES=${env}, ${w} workers`);
        assert.ok(got.oob.equals(ref.oob), `OOB differs at IPSECOV2_BATCH_FRAMES=${env}, ${w} workers`);
      }
    }
  });
});
