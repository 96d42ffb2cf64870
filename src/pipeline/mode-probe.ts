/**
 * Where a batch's crypto runs when workers are allowed: on a worker, or inline on the main thread.
 *
 * Handing a batch to a worker saves the main thread (the pipeline's bound) the batch's crypto, but
 * costs it more than the message: the job data is written on one core, decrypted on another and
 * read back on the first. With 64 B AES-GCM frames here, perf counted the main thread's own work at
 * 2553 samples inline and 2919 with one worker, although its crypto (~180 samples) had moved out:
 * every part of its JavaScript ran ~20 % slower (a CPU-bound process beside it did not slow it).
 * Which side wins depends on the frame size, the cipher and the machine's state, so it is
 * measured, not guessed:
 *
 * - Warm-up: the first WARMUP batches go to the workers (the main thread's code is still being
 *   optimized then: a first probe right after the worker started measured its first phase 4x
 *   slower than the next).
 * - Probe: PAIRS pairs of phases of PHASE batches, one phase on the workers and one inline, in the
 *   order workers-inline, inline-workers, workers-inline (so a drift of the machine's speed favours
 *   neither). Each batch's period (from the pipeline taking the previous batch to taking this one)
 *   is a sample; the first and last batch of a phase are not counted (their periods straddle the
 *   switch). Each pair votes for the mode with the lower median period; the majority decides.
 * - Settled: the chosen mode for EVERY batches, then probe again (the machine and the traffic
 *   change).
 * - No probe when the crypto is heavy (the workers' crypto time per batch at least half the main
 *   thread's own work per batch, e.g. 3DES + HMAC-SHA-512): inline would only be slower there, by
 *   up to the whole crypto time per batch.
 *
 * Output never depends on the choice: the same jobs run the same code either way. On the 2-core
 * development machine the probes mostly chose the workers, and whole runs with and without the
 * probe (IPSECOV2_NO_POOL_PROBE=1) measured the same within the noise (README, Deviations).
 */

export const POOL = 0;
export const INLINE = 1;
export type Mode = typeof POOL | typeof INLINE;

/** Tags of batches outside a probe (their periods are not samples): on a worker, inline. */
export const UNTAGGED_POOL = -1;
export const UNTAGGED_INLINE = -2;

export interface ModeProbeOptions {
  /** Batches per phase (default 12). */
  phase?: number;
  /** Phase pairs per probe (default 3). */
  pairs?: number;
  /** Batches between the end of a probe and the next (default 512). */
  every?: number;
  /** Batches on the workers before the first probe (default 24). */
  warmup?: number;
}

export class ModeProbe {
  private readonly phaseLen: number;
  private readonly pairs: number;
  private readonly every: number;

  /** Probing: the phase being handed out (0..2*pairs-1), and batches handed out in it. */
  private phase = 0;
  private inPhase = 0;
  private probing = true;
  /** Settled mode, and batches before the next probe. */
  private mode: Mode = POOL;
  private left = 0;
  /** Samples of the current probe, one array per phase. */
  private samples: number[][] = [];
  /** Probes decided, and how many chose inline. */
  probes = 0;
  inlineChosen = 0;

  constructor(o: ModeProbeOptions = {}) {
    this.phaseLen = Math.max(3, o.phase ?? 12);
    this.pairs = Math.max(1, o.pairs ?? 3);
    this.every = Math.max(1, o.every ?? 512);
    this.mode = POOL;
    this.probing = false;
    this.left = Math.max(0, o.warmup ?? 24);
  }

  /** Phase k's mode: pairs alternate which mode goes first. */
  private phaseMode(k: number): Mode {
    return (((k >> 1) & 1) ^ (k & 1)) as Mode;
  }

  private startProbe(): void {
    this.probing = true;
    this.phase = 0;
    this.inPhase = 0;
    this.samples = [];
    for (let i = 0; i < 2 * this.pairs; i++) this.samples.push([]);
  }

  private settle(mode: Mode): void {
    this.probing = false;
    this.mode = mode;
    this.left = this.every;
  }

  /**
   * The mode of the next batch with crypto, and its tag (to pass back with its sample): call once
   * per such batch, in order. `heavy`: the crypto is heavy against the main thread's work (see
   * the file comment); read when an inline phase would start.
   */
  next(heavy: boolean): number {
    if (!this.probing) {
      if (this.left > 0) {
        this.left--;
        return this.mode === INLINE ? UNTAGGED_INLINE : UNTAGGED_POOL;
      }
      this.startProbe();
    }
    if (this.phase >= 2 * this.pairs) {
      // every probe batch handed out; the decision comes with the last samples: until then, the
      // last phase's mode
      return this.phaseMode(this.phase - 1) === INLINE ? UNTAGGED_INLINE : UNTAGGED_POOL;
    }
    if (this.inPhase === 0 && this.phaseMode(this.phase) === INLINE && heavy) {
      this.settle(POOL);
      return this.next(heavy);
    }
    const tag = this.phase * this.phaseLen + this.inPhase;
    if (++this.inPhase === this.phaseLen) {
      this.phase++;
      this.inPhase = 0;
    }
    return tag;
  }

  /** The mode a tag from next() stands for. */
  modeOf(tag: number): Mode {
    if (tag === UNTAGGED_POOL) return POOL;
    if (tag === UNTAGGED_INLINE) return INLINE;
    return this.phaseMode(Math.floor(tag / this.phaseLen));
  }

  /** The batch tagged `tag` was taken `ms` after the previous one. */
  sample(tag: number, ms: number): void {
    if (tag < 0 || !this.probing) return;
    const phase = Math.floor(tag / this.phaseLen);
    const idx = tag % this.phaseLen;
    if (idx === 0 || idx === this.phaseLen - 1) {
      // the last batch of the last phase: every sample is in
      if (phase === 2 * this.pairs - 1 && idx === this.phaseLen - 1) this.decide();
      return;
    }
    this.samples[phase]?.push(ms);
  }

  private decide(): void {
    let inlineVotes = 0;
    for (let p = 0; p < this.pairs; p++) {
      const a = median(this.samples[2 * p]!);
      const b = median(this.samples[2 * p + 1]!);
      if (this.phaseMode(2 * p) === INLINE ? a < b : b < a) inlineVotes++;
    }
    const mode: Mode = 2 * inlineVotes > this.pairs ? INLINE : POOL;
    this.probes++;
    if (mode === INLINE) this.inlineChosen++;
    this.settle(mode);
  }
}

function median(a: number[]): number {
  if (a.length === 0) return Infinity;
  const s = a.slice().sort((x, y) => x - y);
  return s[s.length >> 1]!;
}
