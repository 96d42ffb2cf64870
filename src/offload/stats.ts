/**
 * End-of-run counters: every frame lands in exactly one outcome, per SA and in total.
 */
import { CRYPTO_STATUS_NAMES, type OobRecord } from './oob.js';

export class OutcomeCounts {
  private readonly map = new Map<string, number>();
  /**
   * Adds to the same key as the previous add are only counted here (frames of a capture mostly
   * repeat one outcome: no Map lookup per frame) and reach the map before any other key does,
   * so its insertion order is still the order of first occurrence.
   */
  private runKey: string | null = null;
  private runN = 0;

  /** Every key's count, in order of first occurrence. */
  get counts(): Map<string, number> {
    this.flush();
    return this.map;
  }

  add(k: string, n = 1): void {
    if (k === this.runKey) { this.runN += n; return; }
    this.flush();
    this.runKey = k;
    this.runN = n;
  }

  get(k: string): number { return this.counts.get(k) ?? 0; }
  toJSON(): Record<string, number> { return Object.fromEntries([...this.counts.entries()].sort()); }

  private flush(): void {
    const k = this.runKey;
    if (k === null) return;
    this.map.set(k, (this.map.get(k) ?? 0) + this.runN);
    this.runKey = null;
    this.runN = 0;
  }
}

export class RunStats {
  framesIn = 0;
  framesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  dropped = 0;
  readonly linkTypes = new OutcomeCounts();
  /** Outcome per frame: rx 'CRYPTO_SUCCESS' | 'CRYPTO_..._FAILED' | 'not-processed'; tx status. */
  readonly outcomes = new OutcomeCounts();
  readonly replay = new OutcomeCounts();
  readonly perSa = new Map<string, OutcomeCounts>();
  /** Frames a receiver with the effective replay windows would drop (duplicate or too old). */
  replayDrops = 0;
  /** Frames whose crypto step failed inside a worker (CRYPTO_GENERIC_ERROR from a fault). */
  workerFaults = 0;
  /** Crypto workers started (--workers is a maximum: the pool grows only when it is the slower side). */
  workersStarted = 0;
  /** What ran the crypto not run inline: the addon's threads or worker_threads (src/pipeline/pool.ts); 'inline' with --workers 0. */
  workerKind: 'inline' | 'native' | 'worker_threads' = 'inline';
  /** Batches with crypto run on the main thread and on workers (pool.ts). */
  cryptoBatchesInline = 0;
  cryptoBatchesOnWorkers = 0;
  /** Of cryptoBatchesOnWorkers: those the main thread took part in instead of waiting (pool.ts NativeRunner.help), and its jobs there. */
  cryptoBatchesHelped = 0;
  cryptoJobsHelped = 0;
  /** rx frames whose output the addon wrote (src/pipeline/rx-emit.ts), and frames of runs it refused. */
  nativeOutputFrames = 0;
  refusedOutputFrames = 0;
  /** Of nativeOutputFrames: written from the job data, their payloads not copied (rx-emit.ts). */
  scatteredOutputFrames = 0;
  /** Helper threads made SCHED_BATCH for this run (src/pipeline/priority.ts). */
  helperThreadsBatch = 0;
  /** Bytes of glibc's heap given transparent huge pages for this process (src/pipeline/heap.ts). */
  hugeHeapBytes = 0;
  /** What wrote the capture output (capture/writer.ts): a thread of the addon's, libuv's pool, a stream; 'none' without one. */
  outputWriter: 'none' | 'thread' | 'file' | 'stream' = 'none';
  /** Frames per read batch when fixed (RunOptions.batchFrames or IPSECOV2_BATCH_FRAMES); 0: by the frames' size (run.ts SMALL_FRAME_BATCH). */
  batchFrames = 0;
  /** Read batches the run took (with at least one frame). */
  readBatches = 0;

  /** Count one frame's record. */
  record(r: OobRecord): void {
    const k = r.path === 'rx' ? (r.cryptoDone ? CRYPTO_STATUS_NAMES[r.cryptoStatus]! : 'not-processed') : r.txStatus;
    this.outcomes.add(k);
    if (r.replay !== null) {
      this.replay.add(r.replay);
      if (r.replay === 'duplicate' || r.replay === 'too-old') this.replayDrops++;
    }
    if (r.sa !== null) {
      let m = r.sa === this.lastSa ? this.lastSaCounts : this.perSa.get(r.sa);
      if (!m) { m = new OutcomeCounts(); this.perSa.set(r.sa, m); }
      this.lastSa = r.sa;
      this.lastSaCounts = m;
      m.add(k);
    }
  }

  /** The SA of the previous record and its counts (one Map lookup per change of SA). */
  private lastSa: string | null = null;
  private lastSaCounts: OutcomeCounts | undefined = undefined;

  toJSON(): object {
    return {
      framesIn: this.framesIn,
      framesOut: this.framesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      dropped: this.dropped,
      linkTypes: this.linkTypes.toJSON(),
      outcomes: this.outcomes.toJSON(),
      replay: this.replay.toJSON(),
      replayDrops: this.replayDrops,
      workerFaults: this.workerFaults,
      workersStarted: this.workersStarted,
      workerKind: this.workerKind,
      cryptoBatchesInline: this.cryptoBatchesInline,
      cryptoBatchesOnWorkers: this.cryptoBatchesOnWorkers,
      cryptoBatchesHelped: this.cryptoBatchesHelped,
      cryptoJobsHelped: this.cryptoJobsHelped,
      nativeOutputFrames: this.nativeOutputFrames,
      scatteredOutputFrames: this.scatteredOutputFrames,
      helperThreadsBatch: this.helperThreadsBatch,
      hugeHeapBytes: this.hugeHeapBytes,
      outputWriter: this.outputWriter,
      batchFrames: this.batchFrames,
      readBatches: this.readBatches,
      perSa: Object.fromEntries([...this.perSa.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.toJSON()])),
    };
  }
}
