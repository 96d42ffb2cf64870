/**
 * Helper threads as SCHED_BATCH (src/pipeline/priority.ts): only when the run asks for it (the
 * CLI does), never the main thread, off with IPSECOV2_NO_HELPER_BATCH=1; the output is the same.
 * The tests run in order in this file's own process: scheduling policies, once set, stay set.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCapture, type RunOptions } from '../src/pipeline/run.js';
import { nativeAvailable, setThreadBatch } from '../src/crypto/native.js';
import { loadRxManifest, RX_DIR, rxSa } from './helpers/rx-fixtures.js';

const SCHED_BATCH = 3;
const linuxNative = process.platform === 'linux' && nativeAvailable();

/** Scheduling policy of each thread of this process (field 41 of /proc/self/task/<tid>/stat). */
function policies(): Map<number, number> {
  const m = new Map<number, number>();
  for (const t of readdirSync('/proc/self/task')) {
    try {
      const st = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      m.set(Number(t), Number(f[38]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return m;
}

/** May this process make a thread SCHED_BATCH (a container's seccomp profile could refuse)? Run after the tests that expect no change. */
function kernelAllows(): boolean {
  const helper = [...policies().keys()].find((t) => t !== process.pid);
  return helper !== undefined && setThreadBatch(helper);
}

function batchedHelpers(p: Map<number, number>): number {
  let n = 0;
  for (const [tid, pol] of p) if (tid !== process.pid && pol === SCHED_BATCH) n++;
  return n;
}

async function rx(dir: string, name: string, helperScheduling: boolean | undefined): Promise<{ out: Buffer; oob: Buffer; batched: number; during: Map<number, number> | null }> {
  const c = loadRxManifest().cases.find((x) => x.capture.startsWith('esp-aes-gcm-128-icv16-tunnel-v4'))!;
  let during: Map<number, number> | null = null;
  const opts: RunOptions = {
    path: 'rx', input: join(RX_DIR, c.capture), output: join(dir, `${name}.pcapng`), oob: join(dir, `${name}.jsonl`), format: 'pcapng',
    sa: rxSa(c.saFile), inPlace: false, dropFailed: false, anyDirection: false, esn: 'infer', replayWindow: null, workers: 1,
    ivSeed: null, mtu: 1500, progress: false, batchFrames: 4,
    // the policies while the run's threads (its crypto worker among them) are alive: at the last frame
    onRecord: () => { during = policies(); },
    ...(helperScheduling !== undefined ? { helperScheduling } : {}),
  };
  // every batch to the worker (it starts at once, even for three frames)
  process.env.IPSECOV2_POOL_EVERY_BATCH = '1';
  let res;
  try {
    res = await runCapture(opts);
  } finally {
    delete process.env.IPSECOV2_POOL_EVERY_BATCH;
  }
  return { out: readFileSync(join(dir, `${name}.pcapng`)), oob: readFileSync(join(dir, `${name}.jsonl`)), batched: res.stats.helperThreadsBatch, during };
}

describe('helper threads scheduled as SCHED_BATCH', () => {
  it('not unless the run asks: no thread changed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-sched-'));
    try {
      const r = await rx(dir, 'default', undefined);
      assert.equal(r.batched, 0);
      assert.equal(batchedHelpers(policies()), 0);
      const f = await rx(dir, 'off', false);
      assert.equal(f.batched, 0);
      assert.equal(batchedHelpers(policies()), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('IPSECOV2_NO_HELPER_BATCH=1 turns it off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-sched-'));
    process.env.IPSECOV2_NO_HELPER_BATCH = '1';
    try {
      const r = await rx(dir, 'env', true);
      assert.equal(r.batched, 0);
      assert.equal(batchedHelpers(policies()), 0);
    } finally {
      delete process.env.IPSECOV2_NO_HELPER_BATCH;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('asked: the helpers (the crypto worker among them) become SCHED_BATCH, the main thread does not; same output', { skip: linuxNative ? false : 'needs Linux and the addon' }, async (t) => {
    if (!kernelAllows()) { t.skip('the kernel refuses SCHED_BATCH to this process'); return; }
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-sched-'));
    try {
      const before = policies();
      const plain = await rx(dir, 'plain', false);
      const r = await rx(dir, 'batch', true);
      assert.ok(r.batched >= 2, `only ${r.batched} helper threads set`);
      const during = r.during!;
      assert.equal(during.get(process.pid), 0, 'the main thread must stay SCHED_OTHER');
      // a thread that did not exist before the runs: the crypto worker of this one
      const fresh = [...during].filter(([tid]) => !before.has(tid) && tid !== process.pid);
      assert.ok(fresh.length > 0, 'no new thread seen during the run');
      assert.ok(fresh.some(([, pol]) => pol === SCHED_BATCH), `new threads' policies: ${JSON.stringify(fresh)}`);
      assert.ok(batchedHelpers(policies()) >= 1);
      assert.equal(policies().get(process.pid), 0);
      assert.ok(r.out.equals(plain.out), 'pcapng differs');
      assert.ok(r.oob.equals(plain.oob), 'OOB differs');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('threadBatch refuses a bad thread id and leaves real-time threads alone', { skip: linuxNative ? false : 'needs Linux and the addon' }, () => {
    assert.throws(() => setThreadBatch(0), /thread id/);
    assert.throws(() => setThreadBatch(-5), /thread id/);
    assert.equal(setThreadBatch(0x7ffffff0), false); // no such thread
  });

  it('the CLI asks for it', { skip: linuxNative ? false : 'needs Linux and the addon' }, (t) => {
    if (!kernelAllows()) { t.skip('the kernel refuses SCHED_BATCH to this process'); return; }
    const c = loadRxManifest().cases.find((x) => x.capture.startsWith('esp-aes-gcm-128-icv16-tunnel-v4'))!;
    const bin = fileURLToPath(new URL('../../bin/ipsecov2', import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-sched-'));
    try {
      const sa = join(RX_DIR, c.saFile);
      const run = (env: NodeJS.ProcessEnv): { helperThreadsBatch: number } => {
        const p = spawnSync(process.execPath, [bin, 'rx', '--sa', sa, join(RX_DIR, c.capture), '-w', join(dir, 'o.pcapng'), '--workers', '1', '--json'], { encoding: 'utf8', env: { ...process.env, ...env } });
        assert.equal(p.status, 0, p.stderr);
        // the summary is the last line of standard error (warnings about the SA file come first)
        return JSON.parse(p.stderr.trim().split('\n').pop()!) as { helperThreadsBatch: number };
      };
      assert.ok(run({}).helperThreadsBatch > 0);
      assert.equal(run({ IPSECOV2_NO_HELPER_BATCH: '1' }).helperThreadsBatch, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
