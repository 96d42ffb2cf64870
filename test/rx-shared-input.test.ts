/**
 * rx jobs whose bytes are in the reader's input chunk (shared memory) name it as their source
 * (J.SRC, offload/jobs.ts) instead of the main thread copying them: the crypto step copies them,
 * inline or on a worker, with the addon or node:crypto. Checked here: the jobs a file's frames
 * make do name the chunk (ESP; AH jobs, whose bytes are changed first, are copied), and the output
 * of every combination is byte-identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCapture } from '../src/capture/reader.js';
import { J, JOB_FIELDS, JobBatch, MAX_SRCS } from '../src/offload/jobs.js';
import { RxBatch, RxEngine } from '../src/offload/rx.js';
import { SaTimeline } from '../src/pipeline/timeline.js';
import { envFor } from './tx-helpers.js';
import { sharedChunk, sharedMemoryOf } from '../src/capture/shared-memory.js';
import { nativeAvailable } from '../src/crypto/native.js';
import { makeSyntheticEsp } from './helpers/synthetic-esp.js';

const BIN = join(fileURLToPath(new URL('../..', import.meta.url)), 'bin', 'ipsecov2');

test('JobBatch.srcIndex: an input chunk gets an index (the same one again), other memory -1, at most MAX_SRCS', { skip: nativeAvailable() ? false : 'no addon: chunks are plain memory' }, () => {
  const jobs = new JobBatch(64, 4);
  const a = sharedChunk(64).buffer;
  const b = sharedChunk(64).buffer;
  assert.equal(jobs.srcIndex(a), 0);
  assert.equal(jobs.srcIndex(b), 1);
  assert.equal(jobs.srcIndex(a), 0);
  assert.equal(jobs.srcIndex(new ArrayBuffer(8)), -1);
  assert.equal(jobs.srcIndex(new SharedArrayBuffer(8)), -1, 'shared memory without an alias: not an input chunk');
  assert.equal(jobs.srcViews.length, 2);
  assert.ok(jobs.srcs.every((x) => x instanceof SharedArrayBuffer), 'workers get the shared memory');
  assert.ok(jobs.srcViews.every((v) => !(v.buffer instanceof SharedArrayBuffer)), 'this thread reads the plain alias');
  for (let i = 2; i < MAX_SRCS; i++) assert.equal(jobs.srcIndex(sharedChunk(64).buffer), i);
  assert.equal(jobs.srcIndex(sharedChunk(64).buffer), -1, 'list full: the caller copies');
  jobs.reset();
  assert.equal(jobs.srcs.length, 0);
  assert.equal(jobs.srcIndex(b), 0);
});

test('sharedChunk: the alias and the shared memory are the same bytes; without the addon, plain memory', () => {
  const c = sharedChunk(4096);
  const sab = sharedMemoryOf(c.buffer);
  if (!nativeAvailable()) {
    assert.equal(sab, undefined);
    return;
  }
  assert.ok(sab instanceof SharedArrayBuffer);
  assert.ok(!(c.buffer instanceof SharedArrayBuffer));
  c[100] = 0xa5;
  assert.equal(new Uint8Array(sab)[100], 0xa5);
  new Uint8Array(sab)[4095] = 0x3c;
  assert.equal(c[4095], 0x3c);
});

test('rx: ESP jobs of frames read from a file name the input chunk; the bytes are not copied on the main thread', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-src-'));
  try {
    const { sa, input } = await makeSyntheticEsp(dir, 300);
    const t = new SaTimeline(sa, null, []);
    const eng = new RxEngine(sa.nic, { inPlace: false, anyDirection: true, esn: 'infer', replayWindow: null, natPorts: t.natPorts }, envFor(t));
    eng.linkTypes = [1];
    const reader = await openCapture(input);
    try {
      const frames = (await reader.nextBatch(200))!;
      const batch = new RxBatch();
      const n = eng.prepare(frames, 0, batch);
      assert.equal(n, frames.length);
      const m = batch.jobs.meta;
      let named = 0;
      for (let j = 0; j < batch.jobs.count; j++) {
        const b = j * JOB_FIELDS;
        if (m[b + J.SRC] === 0) continue;
        named++;
        const src = batch.jobs.srcViews[m[b + J.SRC]! - 1]!;
        const so = m[b + J.SRC_OFF]!;
        const len = m[b + J.LEN]!;
        // the region (ESP header to ICV) is where the job says, and not in the job data yet
        assert.equal(src[so + 0], 0x00);
        assert.equal(src[so + 2], 0xc0, 'SPI 0x0000c0..');
        assert.ok(so + len <= src.length);
        assert.ok(batch.jobs.data.subarray(m[b + J.OFF]!, m[b + J.OFF]! + len).every((x) => x === 0), 'job data untouched before the crypto step');
      }
      assert.ok(batch.jobs.count > 100);
      assert.equal(named, nativeAvailable() ? batch.jobs.count : 0, 'every ESP job names the chunk (with the addon)');
      assert.ok(batch.jobs.srcs.every((s) => s instanceof SharedArrayBuffer));
      // then the crypto step copies and opens: 2 of 3 frames go to an SA, all but the corrupted open
      eng.runInline(batch);
      let ok = 0;
      eng.process(batch, (c) => { if (c.oob.cryptoDone && c.oob.cryptoStatus === 0) ok++; });
      assert.ok(ok > 100, `${ok} frames decrypted`);
    } finally {
      await reader.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rx: same bytes with the addon or node:crypto, inline or on a worker, from a file or standard input', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-src-'));
  try {
    const { saFile, input } = await makeSyntheticEsp(dir, 6000);
    const run = (name: string, workers: number, env: NodeJS.ProcessEnv, stdin = false): Buffer[] => {
      const out = join(dir, `${name}.pcapng`);
      const oob = join(dir, `${name}.jsonl`);
      const r = spawnSync(process.execPath, [BIN, 'rx', '--sa', saFile, '--any-direction', stdin ? '-' : input, '-w', out, '--oob', oob, '--workers', String(workers), '--json'], {
        encoding: 'utf8', input: stdin ? readFileSync(input) : undefined, env: { ...process.env, NO_COLOR: '1', ...env },
      });
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
      const j = JSON.parse(r.stderr.trim().split('\n').pop()!) as { framesIn: number; cryptoBatchesOnWorkers: number };
      if (workers > 0) assert.ok(j.cryptoBatchesOnWorkers > 0, `${name}: no batch went to the worker`);
      return [readFileSync(out), readFileSync(oob)];
    };
    const every = { IPSECOV2_POOL_EVERY_BATCH: '1' };
    const ref = run('native-inline', 0, {});
    const variants: [string, number, NodeJS.ProcessEnv, boolean?][] = [
      ['native-worker', 1, every],
      ['native-worker-stdin', 1, every, true],
      ['js-inline', 0, { IPSECOV2_NO_NATIVE: '1' }],
      ['js-worker', 1, { ...every, IPSECOV2_NO_NATIVE: '1' }],
    ];
    for (const [name, w, env, stdin] of variants) {
      const got = run(name, w, env, stdin);
      assert.ok(got[0]!.equals(ref[0]!), `${name}: pcapng differs`);
      assert.ok(got[1]!.equals(ref[1]!), `${name}: OOB differs`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
