/**
 * The addon's crypto threads (pool.ts NativeRunner, native/ipsecov2_native.c "Crypto threads"):
 * with workers allowed and the addon loaded they run the crypto instead of worker_threads. Output
 * must be byte-identical to an inline run and to worker_threads, jobs the addon defers (single DES)
 * must still be done, a batch waited for must keep the event loop alive, and closing with
 * batches queued must drop them cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCryptoRunner, defaultThreads } from '../src/pipeline/pool.js';
import { JOB_FIELDS, J, JobBatch, NOT_RUN, runJobs, SlotTable, type SlotDef } from '../src/offload/jobs.js';
import { nativeAvailable } from '../src/crypto/native.js';
import { runCapture } from '../src/pipeline/run.js';
import { loadSaFile } from '../src/sa/load.js';
import { makeSyntheticEsp, rxOptions } from './helpers/synthetic-esp.js';
import { writeSaFile } from './helpers/sa-yaml.js';
import { captureBytes } from './fuzz/lib.js';
import { ether, ipPacket, Prng } from './tx-helpers.js';

const skip = nativeAvailable() ? false : 'needs the native addon';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ipsecov2');

/** A batch of `n` jobs on slot 0 (no transform: each job's result is Internal, as inline). */
function batchOf(n: number): JobBatch {
  const b = new JobBatch(64, Math.max(n, 1));
  for (let i = 0; i < n; i++) b.addJob();
  return b;
}
const NO_TRANSFORM = new Map<number, SlotDef>([[0, { slot: 0, esp: null, ah: null }]]);

test('native threads: the default with the addon; worker_threads with IPSECOV2_JS_WORKERS=1', { skip }, () => {
  assert.equal(defaultThreads(), process.env.IPSECOV2_JS_WORKERS === '1' || process.env.IPSECOV2_FAULT ? 'js' : 'native');
  const v = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8', env: { ...process.env, IPSECOV2_JS_WORKERS: '' } });
  assert.match(v.stdout, /workers: native threads/);
  const j = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8', env: { ...process.env, IPSECOV2_JS_WORKERS: '1' } });
  assert.match(j.stdout, /workers: worker_threads/);
});

test('native threads: the first batch inline, the rest on a thread; results written by the thread', { skip }, async () => {
  const runner = createCryptoRunner(2, { threads: 'native' });
  try {
    const first = batchOf(3);
    await runner.run(first, NO_TRANSFORM);
    assert.equal(runner.started, 0, 'a capture of one batch starts no thread');
    assert.equal(runner.depth, 1, 'a batch run inline is taken at once');
    const want = batchOf(5);
    runJobs(new SlotTable(), want.data, want.meta, want.count);
    for (let k = 0; k < 50; k++) {
      const b = batchOf(5);
      await runner.run(b, NO_TRANSFORM);
      assert.deepEqual([...b.meta.subarray(0, 5 * JOB_FIELDS)], [...want.meta.subarray(0, 5 * JOB_FIELDS)]);
    }
    assert.equal(runner.started, 1);
    if (process.platform === 'linux') {
      // named for top -H and perf
      const names = readdirSync('/proc/self/task').map((t) => { try { return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim(); } catch { return ''; } });
      assert.ok(names.includes('ipsecov2-crypto'), names.join(','));
    }
    assert.equal(runner.batchesInline, 1);
    assert.equal(runner.batchesOnWorkers, 50);
    assert.equal(runner.depth, 2);
    assert.equal(runner.faults, 0);
  } finally {
    await runner.close();
  }
});

test('native threads: many batches in flight on two threads, taken in order, all complete', { skip }, async () => {
  const runner = createCryptoRunner(2, { threads: 'native', everyBatch: true });
  try {
    await runner.run(batchOf(1), NO_TRANSFORM);
    for (let i = 0; i < 4; i++) runner.took(true, 0); // the crypto as dear as the main thread's work: grow
    assert.equal(runner.started, 2);
    assert.equal(runner.depth, 3);
    const inflight: { b: JobBatch; done: PromiseLike<void> }[] = [];
    for (let k = 0; k < 400; k++) {
      const b = batchOf(1 + (k % 7));
      inflight.push({ b, done: runner.run(b, NO_TRANSFORM) });
      while (inflight.length >= runner.depth) {
        const h = inflight.shift()!;
        await h.done;
        for (let i = 0; i < h.b.count; i++) assert.equal(h.b.meta[i * JOB_FIELDS + J.RESULT], NOT_RUN | (NOT_RUN << 4), "written by the thread (addJob leaves 0)");
      }
      // now and then let the threads get ahead, so batches are found done without waiting
      if (k % 50 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    for (const h of inflight) await h.done;
  } finally {
    await runner.close();
  }
});

test('native threads: a batch waited for keeps the event loop alive until it is done', { skip }, () => {
  // In a child with nothing else on its event loop: if the wait did not hold the loop, Node
  // would exit with the promise pending (exit code 13) before the result came.
  const code = `
    import { createCryptoRunner } from ${JSON.stringify(join(ROOT, 'dist/src/pipeline/pool.js'))};
    import { JobBatch } from ${JSON.stringify(join(ROOT, 'dist/src/offload/jobs.js'))};
    const defs = new Map([[0, { slot: 0, esp: { encryption: 'aes-cbc-128', encryptionKey: new Uint8Array(16).fill(1), integrity: 'hmac-sha512-256', integrityKey: new Uint8Array(64).fill(2), icvLength: 32 }, ah: null }]]);
    const r = createCryptoRunner(1, { threads: 'native', everyBatch: true });
    let total = 0;
    for (let k = 0; k < 20; k++) {
      const b = new JobBatch(1 << 21, 1024);
      for (let i = 0; i < 1024; i++) { const j = b.addJob(); const o = b.alloc(1500); b.meta[j * 14 + 0] = 0; b.meta[j * 14 + 2] = 2; b.meta[j * 14 + 3] = o; b.meta[j * 14 + 4] = 1500; b.meta[j * 14 + 5] = 0; b.meta[j * 14 + 7] = -1; }
      await r.run(b, defs);
      total += b.count;
    }
    await r.close();
    console.log('done', total, r.started);
  `;
  const c = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, IPSECOV2_NO_HEAP_TUNING: '1' } });
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stdout.trim(), 'done 20480 1');
});

test('native threads: a batch awaited twice resolves both; process.exit() during a batch ends cleanly', { skip }, () => {
  const code = `
    import { createCryptoRunner } from ${JSON.stringify(join(ROOT, 'dist/src/pipeline/pool.js'))};
    import { JobBatch } from ${JSON.stringify(join(ROOT, 'dist/src/offload/jobs.js'))};
    const defs = new Map([[0, { slot: 0, esp: { encryption: '3des-cbc', encryptionKey: new Uint8Array(24).fill(3), integrity: 'hmac-sha512-256', integrityKey: new Uint8Array(64).fill(2), icvLength: 32 }, ah: null }]]);
    const r = createCryptoRunner(1, { threads: 'native', everyBatch: true });
    const heavy = () => {
      const b = new JobBatch(1 << 21, 1024);
      for (let i = 0; i < 1024; i++) { const j = b.addJob(); const o = b.alloc(1520); b.meta[j * 14 + 2] = 2; b.meta[j * 14 + 3] = o; b.meta[j * 14 + 4] = 1520; b.meta[j * 14 + 7] = -1; }
      return b;
    };
    const b = heavy();
    const p = r.run(b, defs);
    await Promise.all([p, p]);
    console.log('both', b.meta[10] !== 0);
    // batches still running or queued on the thread at exit(): the process ends with its status (the
    // addon also joins the thread at exit, before OpenSSL's cleanup; no crash was seen without that)
    void r.run(heavy(), defs);
    void r.run(heavy(), defs);
    process.exit(3);
  `;
  const c = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(c.status, 3, c.stderr);
  assert.equal(c.signal, null);
  assert.equal(c.stdout.trim(), 'both true');
});

test('native threads: close with batches queued drops them; the process ends normally', { skip }, () => {
  const code = `
    import { createCryptoRunner } from ${JSON.stringify(join(ROOT, 'dist/src/pipeline/pool.js'))};
    import { JobBatch } from ${JSON.stringify(join(ROOT, 'dist/src/offload/jobs.js'))};
    const defs = new Map([[0, { slot: 0, esp: null, ah: null }]]);
    const r = createCryptoRunner(1, { threads: 'native', everyBatch: true });
    const keep = [];
    for (let k = 0; k < 50; k++) { const b = new JobBatch(64, 4); b.addJob(); keep.push(b); void r.run(b, defs); }
    await r.close();
    console.log('closed', r.started);
  `;
  const c = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  assert.equal(c.stdout.trim(), 'closed 1');
});

test('native threads: the addon refuses bad arguments with a TypeError, and a closed thread', { skip }, async () => {
  const { createRequire } = await import('node:module');
  const a = createRequire(import.meta.url)(join(ROOT, 'build/Release/ipsecov2_native.node')) as {
    tableNew(): object; threadWords: number;
    threadNew(t: unknown, cb: unknown, w: unknown): object; threadRun(...x: unknown[]): void; threadClose(h: unknown): void; threadWait(h: unknown, id: unknown): void;
  };
  const t = a.tableNew();
  const words = new Int32Array(new SharedArrayBuffer(a.threadWords * 4));
  assert.throws(() => a.threadNew({}, () => undefined, words), TypeError);
  assert.throws(() => a.threadNew(t, () => undefined, new Int32Array(4)), TypeError);
  const h = a.threadNew(t, () => undefined, words);
  assert.throws(() => a.threadRun(h, 1, new Uint8Array(8), new Uint8Array(8), 0), TypeError);
  assert.throws(() => a.threadRun(h, 1, new Uint8Array(8), new Int32Array(14), 2), RangeError); // more jobs than meta holds, as runBatch
  assert.throws(() => a.threadWait(h, 0), TypeError);
  a.threadClose(h);
  a.threadClose(h); // twice: nothing more to do
  assert.throws(() => a.threadRun(h, 1, new Uint8Array(8), new Int32Array(14), 1), TypeError);
});

test('rx: native threads, worker_threads and inline write the same bytes (ICV failures, replays, pass-through)', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-nthreads-'));
  try {
    const { sa, input } = await makeSyntheticEsp(dir, 30000);
    const base = rxOptions(sa, input, join(dir, 'a.pcapng'), join(dir, 'a.jsonl'), 0);
    await runCapture(base);
    const want = [readFileSync(base.output!), readFileSync(base.oob!)];
    for (const [threads, w] of [['native', 2], ['js', 2], ['native', 1]] as const) {
      const prev = process.env.IPSECOV2_JS_WORKERS;
      process.env.IPSECOV2_JS_WORKERS = threads === 'js' ? '1' : '';
      // worker_threads: every batch to the worker, not inline while it starts (a slow machine)
      process.env.IPSECOV2_POOL_EVERY_BATCH = threads === 'js' ? '1' : '';
      // 64-frame batches are too cheap to hand over (pool.ts HANDOFF_MS): every one is, here
      process.env.IPSECOV2_HANDOFF_MS = '0';
      try {
        const o = { ...rxOptions(sa, input, join(dir, 'b.pcapng'), join(dir, 'b.jsonl'), w), batchFrames: 64 };
        const res = await runCapture(o);
        assert.ok(res.stats.cryptoBatchesOnWorkers > 400, `${threads}: batches on the threads`);
        assert.equal(res.stats.workerKind, threads === 'js' ? 'worker_threads' : 'native');
        assert.ok(readFileSync(o.output!).equals(want[0]!), `${threads} ${w}: pcapng differs`);
        assert.ok(readFileSync(o.oob!).equals(want[1]!), `${threads} ${w}: OOB differs`);
      } finally {
        if (prev === undefined) delete process.env.IPSECOV2_JS_WORKERS;
        else process.env.IPSECOV2_JS_WORKERS = prev;
        delete process.env.IPSECOV2_POOL_EVERY_BATCH;
        delete process.env.IPSECOV2_HANDOFF_MS;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rx/tx: jobs the addon defers (single DES) are done on the main thread; same bytes as inline', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-nthreads-des-'));
  try {
    const saFile = writeSaFile(join(dir, 'sa.yaml'), [
      { name: 'des', mode: 'tunnel', dst: '10.1.1.0/24', tunnel: { src: '192.0.2.2', dst: '192.0.2.1' }, esp: 'spi: 0x0000d001, encryption: des-cbc, encryptionKey: "0123456789abcdef", integrity: hmac-sha1-96, integrityKey: "' + '3c'.repeat(20) + '"' },
      { name: 'gcm', mode: 'tunnel', dst: '10.2.2.0/24', tunnel: { src: '192.0.2.2', dst: '192.0.2.1' }, esp: 'spi: 0x0000d002, encryption: aes-gcm-128, encryptionKey: "' + '11'.repeat(20) + '"' },
    ]);
    const sa = loadSaFile(saFile);
    const r = new Prng(11);
    const dsts = [Buffer.from([10, 1, 1, 5]), Buffer.from([10, 2, 2, 5])];
    const plain = Array.from({ length: 6000 }, (_, i) => ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: 20 + (i % 200), dst: dsts[i % 2]! })));
    writeFileSync(join(dir, 'plain.pcap'), await captureBytes(plain, 'pcap'));
    const outs: Buffer[][] = [];
    for (const w of [0, 2]) {
      const tx = { ...rxOptions(sa, join(dir, 'plain.pcap'), join(dir, `esp${w}.pcap`), join(dir, `tx${w}.jsonl`), w), path: 'tx' as const, format: 'pcap' as const, ivSeed: '0a0b', batchFrames: 128 };
      await runCapture(tx);
      const rx = { ...rxOptions(sa, join(dir, `esp${w}.pcap`), join(dir, `rx${w}.pcapng`), join(dir, `rx${w}.jsonl`), w), batchFrames: 128 };
      const res = await runCapture(rx);
      assert.deepEqual(res.stats.outcomes.toJSON(), { CRYPTO_SUCCESS: 6000 });
      if (w > 0) assert.ok(res.stats.cryptoBatchesOnWorkers > 10);
      outs.push([readFileSync(tx.output!), readFileSync(tx.oob!), readFileSync(rx.output!), readFileSync(rx.oob!)]);
    }
    for (let k = 0; k < 4; k++) assert.ok(outs[0]![k]!.equals(outs[1]![k]!), `output ${k} differs`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
