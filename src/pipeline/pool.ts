/**
 * Where the crypto step runs: inline on the main thread (--workers 0) or on a pool of workers:
 * - with the addon loaded, the addon's own crypto threads (NativeRunner, below): a batch is one C
 *   call, so a plain thread runs it without a V8 isolate; the main thread leaves the batch's
 *   buffers untouched until it is done;
 * - without it (or IPSECOV2_JS_WORKERS=1), worker_threads (WorkerRunner): batches travel as two
 *   owned ArrayBuffers that are transferred, not cloned, and come back the same way.
 * The pipeline processes results in submission order, so output never depends on the worker
 * count, the kind of worker, or on where a batch's crypto ran.
 *
 * With workers allowed, a batch's crypto still runs on the main thread:
 * - the first batch with crypto: with one batch there is nothing to overlap, and starting a
 *   worker (its own isolate) costs ~0.05 s here, far more than the batch's crypto (~1 ms for 1024
 *   frames). So a capture of one batch (up to 1024 frames) starts no worker;
 * - with worker_threads, while the first worker starts (until it reports ready), instead of
 *   waiting for it (the main thread sat idle ~90 ms of a 1 s run there);
 * - any batch whose crypto is expected to take less than HANDOFF_MS (CryptoCost: every batch is
 *   timed, inline or on a worker), which costs about as much to hand over: small frames' batches.
 * IPSECOV2_POOL_EVERY_BATCH=1 gives every batch with crypto to the workers (tests of the workers);
 * IPSECOV2_HANDOFF_MS sets the threshold (0: every batch but the first is handed over).
 *
 * Faults (worker_threads): a worker that dies (or reports an error) is replaced and its batch
 * retried once on another worker from a backup copy (rx: only the job table; the data is rebuilt
 * from the frames); if that fails too, the batch's frames get an internal-error result
 * (CRYPTO_GENERIC_ERROR in the OOB record) and the run goes on.
 */
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import { envFlag } from '../env.js';
import { JOB_FIELDS, J, JobBatch, runDeferredJobs, runJobs, SlotTable, WORKER_FAULT, type SlotDef } from '../offload/jobs.js';
import { nativeAvailable, type NativeSlotTable, type NativeThread } from '../crypto/native.js';

export interface CryptoRunner {
  /** How many batches may be in flight before the pipeline waits for the oldest (may grow with the pool). */
  readonly depth: number;
  /** Batches whose crypto failed for good (worker faults). */
  readonly faults: number;
  /**
   * Run a batch's jobs. `rebuild`, when given, rewrites the batch's job data into a buffer as
   * large as `jobs.data` from the job table `meta` (as sent): a retry then needs no backup copy
   * of the data, only of the (small) job table.
   */
  run(jobs: JobBatch, slotDefs: ReadonlyMap<number, SlotDef>, rebuild?: Rebuild): PromiseLike<void>;
  /**
   * The pipeline takes the results of its oldest batch; `waited`: it had to wait for them (the
   * crypto may be the slower side); `ownMs`: the main thread's own work since the previous batch.
   * The pool may add a worker (see WorkerRunner).
   */
  took(waited: boolean, ownMs?: number): void;
  /** Workers started so far (0 inline). */
  readonly started: number;
  /** What runs the batches not run inline (`--json` workerKind). */
  readonly kind: 'inline' | 'native' | 'worker_threads';
  /** Batches with crypto run on the main thread, and on workers. */
  readonly batchesInline: number;
  readonly batchesOnWorkers: number;
  /**
   * Of the batches on workers: those whose crypto the main thread took part in instead of
   * waiting for them (NativeRunner.help), and the jobs it ran there.
   */
  readonly batchesHelped: number;
  readonly jobsHelped: number;
  close(): Promise<void>;
}

export interface RunnerOptions {
  /**
   * Every batch with crypto goes to the workers: the first one and those while the first worker
   * starts (tests of the workers). Default: IPSECOV2_POOL_EVERY_BATCH=1.
   */
  everyBatch?: boolean;
  /**
   * Where the crypto runs with workers allowed: 'native', the addon's own threads (NativeRunner),
   * or 'js', worker_threads (WorkerRunner). Default: 'native' when the addon is loaded, unless
   * IPSECOV2_JS_WORKERS=1 or a worker fault is injected (IPSECOV2_FAULT: tests of the workers).
   */
  threads?: 'native' | 'js';
  /**
   * A batch whose crypto is expected to take less than this (ms) runs inline (PoolRunner.runInline);
   * 0 hands over every batch but the first. Default: IPSECOV2_HANDOFF_MS, else HANDOFF_MS.
   */
  handoffMs?: number;
  /**
   * The addon's threads: the main thread runs the jobs of a batch it would wait for that the
   * crypto thread has not taken yet (NativeRunner.help). Default: on, unless IPSECOV2_NO_HELP=1.
   */
  help?: boolean;
}

/** IPSECOV2_HANDOFF_MS when it is a number >= 0, else HANDOFF_MS. */
function envHandoffMs(): number {
  const v = process.env.IPSECOV2_HANDOFF_MS;
  const n = v !== undefined && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : HANDOFF_MS;
}

/** Writes a batch's job data again (see CryptoRunner.run). */
export type Rebuild = (data: Uint8Array, meta: Int32Array) => void;

export function createCryptoRunner(workers: number, o: RunnerOptions = { everyBatch: envFlag('IPSECOV2_POOL_EVERY_BATCH') }): CryptoRunner {
  if (workers <= 0) return new InlineRunner();
  return (o.threads ?? defaultThreads()) === 'native' && nativeAvailable() ? new NativeRunner(workers, o) : new WorkerRunner(workers, o);
}

/** What runs the crypto with workers allowed when RunnerOptions.threads does not say (see there). */
export function defaultThreads(): 'native' | 'js' {
  return nativeAvailable() && !envFlag('IPSECOV2_JS_WORKERS') && !process.env.IPSECOV2_FAULT ? 'native' : 'js';
}

/**
 * Detach an ArrayBuffer when a pool is created, before any hot code is optimized. V8's optimized code assumes no
 * ArrayBuffer was ever detached (a per-isolate "protector") until one is; the first batch
 * transferred to a worker used to do it mid-run, and every optimized function that touches a
 * typed array (22 of them) was thrown away and compiled again. Measured (GCM 1400 B, 200k
 * frames, 2 workers, interleaved, medians of 9): 0.95 -> 0.87 s; TurboFan compiles 121 -> 87.
 * Pass-through, which starts no worker, measured the same (2 GB, medians of 7: 3.19 / 3.21 s).
 */
let detached = false;
function detachOnce(): void {
  if (detached) return;
  detached = true;
  const ab = new ArrayBuffer(8);
  structuredClone(ab, { transfer: [ab] });
}

class InlineRunner implements CryptoRunner {
  readonly kind = 'inline';
  readonly depth = 1;
  readonly faults = 0;
  readonly started = 0;
  batchesInline = 0;
  readonly batchesOnWorkers = 0;
  readonly batchesHelped = 0;
  readonly jobsHelped = 0;
  /** The last batch's crypto time (ms): a pool's cost model reads it. */
  lastMs = 0;
  private readonly table = new SlotTable();

  /** This thread's table in the addon, with the slots of `jobs` defined (NativeRunner.help); null without the addon. */
  nativeTable(jobs: JobBatch, slotDefs: ReadonlyMap<number, SlotDef>): NativeSlotTable | null {
    defineMissing(this.table, jobs, slotDefs);
    return this.table.native;
  }

  run(jobs: JobBatch, slotDefs: ReadonlyMap<number, SlotDef>): Promise<void> {
    if (jobs.count === 0) return Promise.resolve();
    this.batchesInline++;
    defineMissing(this.table, jobs, slotDefs);
    const t0 = performance.now();
    runJobs(this.table, jobs.data, jobs.meta, jobs.count, jobs.srcViews);
    this.lastMs = performance.now() - t0;
    return Promise.resolve();
  }

  took(_waited: boolean, _ownMs?: number): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function bits4(x: number): number {
  return (x & 1) + ((x >> 1) & 1) + ((x >> 2) & 1) + ((x >> 3) & 1);
}

/** When a pool adds a worker (see WorkerRunner.ensureStarted): the waits of the last batches and the crypto's cost. */
class Growth {
  /** Of the last 4 batches taken by the pipeline, which had to be waited for (one bit each). */
  private waits = 0;
  /** A worker's crypto time per batch as reported, smoothed (ms). */
  private cryptoMs = 0;
  /** Batches taken since the last worker was added (at most 4 counted). */
  private taken = 0;

  /** A worker reports a batch's crypto time. */
  crypto(ms: number): void {
    this.cryptoMs = this.cryptoMs === 0 ? ms : 0.7 * this.cryptoMs + 0.3 * ms;
  }

  /** The pipeline took a batch (CryptoRunner.took); true: one more worker is wanted. */
  took(waited: boolean, ownMs: number | undefined, started: number): boolean {
    // a wait counts only when the crypto itself takes about as long as the main thread's work
    const slow = waited && (ownMs === undefined || this.cryptoMs / started >= 0.75 * ownMs);
    this.waits = ((this.waits << 1) | (slow ? 1 : 0)) & 0xf;
    if (this.taken < 4) this.taken++;
    return this.taken >= 4 && bits4(this.waits) >= 3;
  }

  /** A worker was added. */
  reset(): void {
    this.waits = 0;
    this.taken = 0;
  }
}

/**
 * A batch whose crypto is expected to take less than this (ms) runs inline even with workers
 * allowed: handing it over (the thread woken, its results taken back, the second core shared with
 * the main thread) costs about as much. Measured here (thirteenth session): 64 B AES-GCM frames,
 * 256 a batch, 0.033 ms of crypto a batch, 200k frames 0.358 s inline against 0.376 s with every
 * batch on a thread, 1.6M frames 1.30 against 1.64 s; 1400 B AES-GCM frames, ~700 a batch,
 * 0.66 ms a batch, 0.67 s inline against 0.60 s on a thread (one bench run, medians of 3).
 */
export const HANDOFF_MS = 0.15;

/** Bytes the crypto of a batch works on: the jobs' regions. */
function jobBytes(jobs: JobBatch): number {
  const m = jobs.meta;
  let n = 0;
  for (let i = 0; i < jobs.count; i++) n += m[i * JOB_FIELDS + J.LEN]!;
  return n;
}

/**
 * The crypto's cost per byte, from the last COST_WINDOW batches timed inline (InlineRunner.lastMs)
 * and on a worker (its own clock): what a pool expects a batch's crypto to take
 * (PoolRunner.runInline). The least of them, not their mean: a batch's time only ever grows by
 * what is not its crypto (the thread preempted, caches cold), and a mean followed such outliers
 * here (0.16-0.36 ms among 64 B batches of ~0.04 ms) up to handing over batches that were cheap.
 * A lasting change (another cipher's traffic) shows within COST_WINDOW batches.
 */
export class CryptoCost {
  /** ms per byte of the last batches (a ring); 0 = no sample. */
  private readonly perByte = new Float64Array(COST_WINDOW);
  private at = 0;
  private n = 0;

  observe(ms: number, bytes: number): void {
    if (bytes <= 0 || !(ms >= 0)) return;
    this.perByte[this.at] = ms / bytes;
    this.at = (this.at + 1) % COST_WINDOW;
    if (this.n < COST_WINDOW) this.n++;
  }

  /** Expected ms for `bytes`; Infinity before any batch was timed. */
  estimateMs(bytes: number): number {
    if (this.n === 0) return Infinity;
    let min = Infinity;
    for (let i = 0; i < this.n; i++) if (this.perByte[i]! < min) min = this.perByte[i]!;
    return min * bytes;
  }
}

/** Batches CryptoCost remembers. */
export const COST_WINDOW = 8;

function defineMissing(table: SlotTable, jobs: JobBatch, slotDefs: ReadonlyMap<number, SlotDef>): void {
  const m = jobs.meta;
  for (let i = 0; i < jobs.count; i++) {
    const s = m[i * JOB_FIELDS + J.ESP_SLOT]!;
    if (!table.has(s)) table.define(slotDefs.get(s)!);
  }
}

interface Pending {
  jobs: JobBatch;
  backup: Backup;
  /** Rewrites the job data for a retry (then the backup holds only the job table). */
  rebuild: Rebuild | null;
  /** Size of the data buffer as sent. */
  dataLen: number;
  resolve: () => void;
  tries: number;
  /** The jobs' bytes (the cost model's unit). */
  bytes: number;
}

/** A batch's job bytes as sent, kept for a retry; reused from batch to batch. */
interface Backup {
  /** null when the batch can be rebuilt. */
  data: Uint8Array | null;
  meta: Int32Array;
}

interface Slot {
  worker: Worker;
  known: Set<number>;
  busy: Map<number, Pending>;
  dead: boolean;
  /** It has said it is ready, or returned a batch (its start-up is over). */
  ready: boolean;
}

const WORKER_URL = new URL('./worker.js', import.meta.url);

let WorkerClass: typeof Worker | undefined;
/**
 * node:worker_threads, loaded when the first worker_threads pool is made: a run on the addon's
 * threads or inline never needs it, and loading it costs a few milliseconds of every start.
 */
function workerClass(): typeof Worker {
  return (WorkerClass ??= (createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads')).Worker);
}
const WORKER_YOUNG_GEN_MB = 4;

/** What WorkerRunner and NativeRunner share: the bounds, the batches run inline, the growth rule. */
abstract class PoolRunner<S> implements CryptoRunner {
  /** Batches in flight at most, whatever the pool grows to. */
  protected readonly maxDepth: number;
  /** Workers at most (see WorkerRunner's growth). */
  protected readonly size: number;
  protected readonly slots: S[] = [];
  /** Runs batches' crypto on this thread (see the file comment). */
  protected readonly inline = new InlineRunner();
  /** Every batch to the workers (RunnerOptions.everyBatch); else the first runs inline (and, with worker_threads, those while the first worker starts). */
  protected readonly everyBatch: boolean;
  protected firstDone = false;
  /** The last batch with crypto ran inline: the pipeline takes it at once (depth 1). */
  protected lastInline = false;
  protected readonly growth = new Growth();
  /** What a batch's crypto is expected to take (see cheap). */
  protected readonly cost = new CryptoCost();
  /** See RunnerOptions.handoffMs. */
  protected readonly handoffMs: number;
  batchesOnWorkers = 0;
  batchesHelped = 0;
  jobsHelped = 0;
  abstract readonly faults: number;
  abstract readonly kind: 'native' | 'worker_threads';

  constructor(n: number, o: RunnerOptions) {
    this.everyBatch = o.everyBatch === true;
    this.handoffMs = o.handoffMs ?? envHandoffMs();
    // One batch more than there are workers keeps every worker busy while the main thread
    // works. Never more than 3 in flight: the main thread (read, SA state, write) is the bound,
    // it keeps at most 2-3 workers busy (crypto is 0.3-1 µs a frame against 2-4 µs of main-thread
    // work), and each batch in flight pins 2 MB of job data and its frames' input chunks.
    this.maxDepth = Math.max(2, Math.min(n + 1, 3));
    // A worker beyond the batches that can be in flight could never be busy: not started (each
    // worker_thread costs an isolate, ~10 MB of RSS).
    this.size = Math.min(n, this.maxDepth);
  }

  get batchesInline(): number {
    return this.inline.batchesInline;
  }

  /** Workers started (WorkerRunner: replacements of dead ones not counted twice). */
  get started(): number {
    return this.slots.length;
  }

  /**
   * One batch more than the workers started so far (the pool grows on demand): a third batch in
   * flight for a single worker only held more memory and was measured slower (--workers 2 with
   * one worker started: 5-8 % slower than --workers 1 in the same bench run). 1 after a batch
   * that ran inline: the pipeline takes it (and any before it) at once, while its data is in
   * this core's cache.
   */
  get depth(): number {
    if (this.lastInline) return 1;
    return Math.min(Math.max(this.slots.length, 1) + 1, this.maxDepth);
  }

  /**
   * A batch of `bytes` whose crypto is expected to take less than handoffMs (never at 0), after
   * one that was too: a cheap batch between dear ones (the end of a read that the input chunk cut
   * short, frames of mixed sizes) goes to the worker too. Run inline, it made the pipeline wait
   * for the worker's batch before it (depth 1) every other batch: 1M frames alternating 1400 and
   * ~40-byte payloads, 2 workers, half the batches inline, 2.03 s against 1.76 s all handed over.
   */
  protected cheap(bytes: number): boolean {
    const cheap = this.cost.estimateMs(bytes) < this.handoffMs;
    const inline = cheap && this.lastCheap;
    this.lastCheap = cheap;
    return inline;
  }
  /** The batch before was cheap (see cheap()); true at the start. */
  private lastCheap = true;

  /**
   * Run `jobs` inline when `wanted` (the caller's decision: the first batch, no worker ready yet,
   * or cheap()) and time it for the cost model; null when it goes to a worker (the caller's part).
   */
  protected runInline(jobs: JobBatch, slotDefs: ReadonlyMap<number, SlotDef>, bytes: number, wanted: boolean): Promise<void> | null {
    const inline = !this.everyBatch && wanted;
    this.lastInline = inline;
    if (!inline) return null;
    const p = this.inline.run(jobs, slotDefs);
    this.cost.observe(this.inline.lastMs, bytes);
    return p;
  }

  abstract run(jobs: JobBatch, slotDefs: ReadonlyMap<number, SlotDef>, rebuild?: Rebuild): PromiseLike<void>;
  abstract took(waited: boolean, ownMs?: number): void;
  abstract close(): Promise<void>;
}

class WorkerRunner extends PoolRunner<Slot> {
  readonly kind = 'worker_threads';
  faults = 0;
  private next = 0;
  private seq = 0;
  private slotDefs: ReadonlyMap<number, SlotDef> = new Map();
  private closing = false;

  constructor(n: number, o: RunnerOptions) {
    super(n, o);
    detachOnce();
  }

  /**
   * At most `size` workers (PoolRunner). The first starts with the first batch the pool gets (pass-through
   * starts none); each further one only when the pipeline had to wait for crypto results in 3 of
   * the last 4 batches while every started worker was past its start-up, and the workers' own
   * crypto time per batch (they report it), shared among them, is at least 3/4 of the main
   * thread's own work per batch (`took`): where the main thread is the slower side (AES-GCM,
   * AES-CBC + SHA-1 on 2 cores here), a second worker would only take turns with the first on the
   * same cores (2 workers measured 5-13 % slower than 1), and a wait there is the machine pausing
   * the worker, not the crypto's cost (a 64 B GCM run once grew to 2 on waits alone: 3.72 s
   * against 3.20 s at one worker). With heavy ciphers (3DES + HMAC-SHA-512) the workers are the
   * slower side and the pool grows to `--workers` (2 workers: 3.66 -> 2.65 s on 50k frames).
   */
  private ensureStarted(): void {
    if (this.slots.length === 0) this.slots.push(this.spawn());
  }

  took(waited: boolean, ownMs?: number): void {
    if (this.slots.length === 0 || this.slots.length >= this.size) return;
    if (!this.growth.took(waited, ownMs, this.slots.length)) return;
    // waits while a worker is still starting say nothing about the crypto's speed
    for (const s of this.slots) if (!s.ready && !s.dead) return;
    this.slots.push(this.spawn());
    this.growth.reset();
  }

  /** Workers started so far (replacements included); passed to workers for fault injection. */
  private spawned = 0;

  private spawn(): Slot {
    // A crypto worker holds almost no JS heap: a small young generation keeps each isolate's
    // footprint (and so peak RSS with many workers) down.
    const worker = new (workerClass())(WORKER_URL, { env: process.env, workerData: { index: this.spawned++ }, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB } });
    const slot: Slot = { worker, known: new Set(), busy: new Map(), dead: false, ready: false };
    worker.on('message', (msg: { id: number; data: ArrayBuffer; meta: ArrayBuffer; ms?: number; error?: string; ready?: boolean }) => {
      slot.ready = true;
      if (msg.ready) return;
      const p = slot.busy.get(msg.id);
      if (!p) return;
      if (msg.ms !== undefined) {
        this.growth.crypto(msg.ms);
        this.cost.observe(msg.ms, p.bytes);
      }
      slot.busy.delete(msg.id);
      if (msg.error !== undefined) { this.retry(p); return; }
      p.jobs.data = new Uint8Array(msg.data);
      p.jobs.meta = new Int32Array(msg.meta);
      this.release(p.backup);
      p.resolve();
    });
    const onDeath = (): void => {
      if (slot.dead) return;
      slot.dead = true;
      if (this.closing) return;
      const idx = this.slots.indexOf(slot);
      if (idx >= 0) this.slots[idx] = this.spawn();
      for (const p of slot.busy.values()) this.retry(p);
      slot.busy.clear();
    };
    worker.on('error', onDeath);
    worker.on('exit', onDeath);
    return slot;
  }

  private retry(p: Pending): void {
    p.tries++;
    if (p.tries > 1) {
      // Second failure: give up on this batch, mark every job as an internal error. The backup
      // becomes the batch's buffers (not reused as a backup again).
      this.faults++;
      p.jobs.data = this.restoreData(p);
      p.jobs.meta = p.backup.meta;
      for (let i = 0; i < p.jobs.count; i++) p.jobs.meta[i * JOB_FIELDS + J.RESULT] = WORKER_FAULT;
      p.resolve();
      return;
    }
    // Restore from the backup copy and send again (to the next live worker).
    p.jobs.data = p.backup.data !== null ? p.backup.data.slice() : this.restoreData(p);
    p.jobs.meta = p.backup.meta.slice();
    this.dispatch(p);
  }

  /** The batch's job data as sent: the backup itself (last use), or rebuilt from the frames. */
  private restoreData(p: Pending): Uint8Array {
    if (p.backup.data !== null) return p.backup.data;
    const data = new Uint8Array(new ArrayBuffer(p.dataLen));
    p.rebuild!(data, p.backup.meta);
    return data;
  }

  /** Backups of finished batches, for the next ones (no 2 MB allocation per batch). */
  private readonly spareBackups: Backup[] = [];

  private release(b: Backup): void {
    if (this.spareBackups.length < this.maxDepth + 1) this.spareBackups.push(b);
  }

  /**
   * Copy the batch's used bytes and jobs into a backup as large as the batch's buffers (so
   * the offsets in a retried batch stay valid).
   */
  private backupOf(jobs: JobBatch, withData: boolean): Backup {
    let b = this.spareBackups.pop();
    if (b === undefined || (withData && (b.data === null || b.data.length !== jobs.data.length)) || b.meta.length !== jobs.meta.length) {
      b = { data: withData ? new Uint8Array(new ArrayBuffer(jobs.data.length)) : null, meta: new Int32Array(new ArrayBuffer(jobs.meta.length * 4)) };
    } else if (!withData) b.data = null;
    if (b.data !== null) b.data.set(jobs.data.subarray(0, jobs.used));
    b.meta.set(jobs.meta.subarray(0, jobs.count * JOB_FIELDS));
    return b;
  }

  run(jobs: JobBatch, slotDefs: ReadonlyMap<number, SlotDef>, rebuild?: Rebuild): Promise<void> {
    this.slotDefs = slotDefs;
    if (jobs.count === 0) return Promise.resolve(); // nothing to send: no message round trip
    // inline: the first batch, any while the first worker starts (see the file comment), and
    // any too cheap to hand over (PoolRunner.runInline)
    const bytes = jobBytes(jobs);
    let inline = false;
    if (!this.everyBatch) {
      if (!this.firstDone) {
        this.firstDone = true;
        inline = true;
      } else if (this.cheap(bytes)) {
        inline = true; // and starts no worker
      } else {
        this.ensureStarted();
        inline = !this.anyReady();
      }
    }
    const done = this.runInline(jobs, slotDefs, bytes, inline);
    if (done !== null) return done;
    this.batchesOnWorkers++;
    this.ensureStarted();
    return new Promise<void>((resolve) => {
      // Kept so a batch lost with a dying worker can be retried: the job table, and the data
      // (one memcpy of the used bytes) unless the batch can be rebuilt.
      const p: Pending = { jobs, backup: this.backupOf(jobs, rebuild === undefined), rebuild: rebuild ?? null, dataLen: jobs.data.length, resolve, tries: 0, bytes };
      this.dispatch(p);
    });
  }

  /** A live worker is past its start-up. */
  private anyReady(): boolean {
    for (const s of this.slots) if (s.ready && !s.dead) return true;
    return false;
  }

  private dispatch(p: Pending): void {
    const slot = this.pick();
    const id = ++this.seq;
    const defs: SlotDef[] = [];
    const m = p.jobs.meta;
    for (let i = 0; i < p.jobs.count; i++) {
      const s = m[i * JOB_FIELDS + J.ESP_SLOT]!;
      if (!slot.known.has(s)) { slot.known.add(s); defs.push(this.slotDefs.get(s)!); }
    }
    slot.busy.set(id, p);
    const data = p.jobs.data.buffer as ArrayBuffer;
    const meta = p.jobs.meta.buffer as ArrayBuffer;
    // the input chunks the jobs read from are shared memory: sent, not copied
    slot.worker.postMessage({ id, data, meta, count: p.jobs.count, defs, srcs: p.jobs.srcs }, [data, meta]);
  }

  private pick(): Slot {
    for (let k = 0; k < this.slots.length; k++) {
      const s = this.slots[(this.next + k) % this.slots.length]!;
      if (!s.dead) { this.next = (this.next + k + 1) % this.slots.length; return s; }
    }
    // All dead at once (should not happen: each death spawns a replacement).
    const idx = this.next % this.slots.length;
    this.slots[idx] = this.spawn();
    return this.slots[idx]!;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

interface ThreadSlot {
  thread: NativeThread;
  table: SlotTable;
}

/** A batch on a crypto thread: awaiting it (its `then`) is the moment the pipeline waits for it. */
class ThreadPending implements PromiseLike<void> {
  /** Resolves the promises handed to the awaiting code (one, in the pipeline). */
  private readonly waiters: (() => void)[] = [];
  settled = false;
  constructor(readonly runner: NativeRunner, readonly id: number, readonly jobs: JobBatch, readonly slotDefs: ReadonlyMap<number, SlotDef>, readonly slot: ThreadSlot, readonly bytes: number) {}

  then<A = void, B = never>(onOk?: ((v: void) => A | PromiseLike<A>) | null, onErr?: ((e: unknown) => B | PromiseLike<B>) | null): PromiseLike<A | B> {
    return new Promise<void>((res) => {
      if (this.settled || this.runner.settleIfDone(this) || this.runner.help(this)) { res(); return; }
      this.waiters.push(res);
      // found done after all (the thread finished meanwhile): settled now, no callback needed
      if (this.waiters.length === 1 && this.slot.thread.waitFor(this.id)) this.runner.settleIfDone(this);
    }).then(onOk, onErr);
  }

  /** The batch is done: deferred jobs run, the awaiting pipeline resumes. */
  settle(): void {
    this.settled = true;
    for (const r of this.waiters.splice(0)) r();
  }
}

/**
 * The crypto step on the addon's own threads (native/ipsecov2_native.c, "Crypto threads"): a
 * batch's crypto is one C call, so a plain thread runs it without a V8 isolate of its own (a
 * worker_thread costs ~50-80 ms of CPU to start and a structured-clone message each way per
 * batch). The buffers are not transferred: the main thread leaves a batch untouched until it is
 * done. A batch found done when the pipeline takes it needs no turn of the event loop. Same
 * batching, ordering and growth as WorkerRunner; there is no fault to recover from (a crash in
 * the addon ends the process, as it would inline).
 */
class NativeRunner extends PoolRunner<ThreadSlot> {
  readonly kind = 'native';
  readonly faults = 0;
  private next = 0;
  private seq = 0;
  private readonly pending = new Map<number, ThreadPending>();
  /** See RunnerOptions.help. */
  private readonly helps: boolean;
  /** close() was called: the threads are gone (a batch awaited after that is not helped). */
  private closed = false;

  constructor(n: number, o: RunnerOptions) {
    super(n, o);
    this.helps = o.help ?? !envFlag('IPSECOV2_NO_HELP');
  }

  /**
   * The pipeline is about to wait for batch `p`: the main thread runs the jobs of it that the
   * crypto thread has not taken yet instead (NativeThread.help), on its own table (the inline
   * runner's). Waiting, its core sat idle while the crypto thread shared the other with the
   * write thread, libuv's reads and V8's helpers (perf sched: 0.4-0.6 s of idle CPU in a 1.9 s
   * run of 2 GB of AES-GCM at 2 workers, the crypto thread preempted between batches); now it
   * does crypto that is due next anyway. Output is unchanged: every job runs exactly once, on
   * one of two tables made from the same definitions. True when `p` is done now.
   */
  help(p: ThreadPending): boolean {
    if (!this.helps || this.closed) return false;
    const table = this.inline.nativeTable(p.jobs, p.slotDefs);
    if (table === null) return false;
    const ran = p.slot.thread.help(p.id, table, p.jobs.data, p.jobs.meta, p.jobs.count, p.jobs.srcViews);
    if (ran > 0) {
      this.batchesHelped++;
      this.jobsHelped += ran;
    }
    return this.settleIfDone(p);
  }

  /** The thread's callback: the batch the pipeline waits for is done. */
  private readonly onDone = (id: number): void => {
    const p = this.pending.get(id);
    if (p !== undefined) this.settleIfDone(p);
  };

  /** Settle `p` if its batch is done (true). */
  settleIfDone(p: ThreadPending): boolean {
    if (p.settled) return true;
    const t = p.slot.thread;
    if (!t.isDone(p.id)) return false;
    this.pending.delete(p.id);
    const ms = t.msOf(p.id);
    this.growth.crypto(ms);
    // the cost model counts the jobs the thread left to this one (single DES) too: the batch's
    // crypto is both
    let deferredMs = 0;
    if (t.deferredOf(p.id) > 0) {
      const t0 = performance.now();
      runDeferredJobs(p.slot.table, p.jobs.data, p.jobs.meta, p.jobs.count, p.jobs.srcViews);
      deferredMs = performance.now() - t0;
    }
    this.cost.observe(ms + deferredMs, p.bytes);
    p.settle();
    return true;
  }

  private spawn(): ThreadSlot {
    const table = new SlotTable();
    return { thread: table.native!.startThread(this.onDone), table };
  }

  /** As WorkerRunner.took; a thread is ready as soon as it exists. */
  took(waited: boolean, ownMs?: number): void {
    if (this.slots.length === 0 || this.slots.length >= this.size) return;
    if (!this.growth.took(waited, ownMs, this.slots.length)) return;
    this.slots.push(this.spawn());
    this.growth.reset();
  }

  run(jobs: JobBatch, slotDefs: ReadonlyMap<number, SlotDef>): PromiseLike<void> {
    if (jobs.count === 0) return Promise.resolve();
    // the first batch inline (a capture of one batch starts no thread), and any too cheap to
    // hand over (PoolRunner.runInline)
    const bytes = jobBytes(jobs);
    const done = this.runInline(jobs, slotDefs, bytes, !this.firstDone || this.cheap(bytes));
    this.firstDone = true;
    if (done !== null) return done;
    this.batchesOnWorkers++;
    if (this.slots.length === 0) this.slots.push(this.spawn());
    const slot = this.slots[this.next]!;
    this.next = (this.next + 1) % this.slots.length;
    defineMissing(slot.table, jobs, slotDefs);
    // ids are positive int32s (the addon's words)
    this.seq = this.seq >= 0x7fffffff ? 1 : this.seq + 1;
    const p = new ThreadPending(this, this.seq, jobs, slotDefs, slot, bytes);
    this.pending.set(p.id, p);
    slot.thread.run(p.id, jobs.data, jobs.meta, jobs.count, jobs.srcViews);
    return p;
  }

  close(): Promise<void> {
    this.closed = true;
    for (const s of this.slots) s.thread.close();
    this.pending.clear();
    return Promise.resolve();
  }
}
