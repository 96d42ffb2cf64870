/**
 * End-of-run counters: every frame lands in exactly one outcome, per SA and in total.
 */
import { CRYPTO_STATUS_NAMES, type OobRecord } from './oob.js';

export class OutcomeCounts {
  readonly counts = new Map<string, number>();
  add(k: string, n = 1): void { this.counts.set(k, (this.counts.get(k) ?? 0) + n); }
  get(k: string): number { return this.counts.get(k) ?? 0; }
  toJSON(): Record<string, number> { return Object.fromEntries([...this.counts.entries()].sort()); }
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

  /** Count one frame's record. */
  record(r: OobRecord): void {
    const k = r.path === 'rx' ? (r.cryptoDone ? CRYPTO_STATUS_NAMES[r.cryptoStatus]! : 'not-processed') : r.txStatus;
    this.outcomes.add(k);
    if (r.replay !== null) {
      this.replay.add(r.replay);
      if (r.replay === 'duplicate' || r.replay === 'too-old') this.replayDrops++;
    }
    if (r.sa !== null) {
      let m = this.perSa.get(r.sa);
      if (!m) { m = new OutcomeCounts(); this.perSa.set(r.sa, m); }
      m.add(k);
    }
  }

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
      perSa: Object.fromEntries([...this.perSa.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.toJSON()])),
    };
  }
}
