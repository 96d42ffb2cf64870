/**
 * The host stack's anti-replay window (RFC 4303 §3.4.3) and ESN high-order inference
 * (RFC 4303 Appendix A2). NDIS leaves both to the host; the emulator runs them as a separate
 * "host model" whose verdict goes into the OOB `replay` field.
 *
 * 64-bit sequence numbers are kept as two unsigned 32-bit halves (hi, lo) so the per-packet
 * path never touches BigInt.
 */

export type ReplayVerdict = 'ok' | 'duplicate' | 'too-old' | 'off';

const TWO32 = 0x100000000;

export class ReplayWindow {
  /** Window size W (0 = anti-replay off). */
  readonly size: number;
  /** Highest authenticated sequence number T. */
  th: number;
  tl = 0;
  /** Inference estimate: advanced by every packet in input order (see inferHigh). */
  ph: number;
  pl = 0;
  /** bit (s mod W) set = s seen, for s in (T - W, T]. */
  private readonly bits: Uint8Array;

  /** ESN high bits the SA starts with (the SA file's sequence.high). */
  private readonly startHigh: number;
  /** W - 1 when W is a power of two (then pos() is the low bits of the low half), else -1. */
  private readonly mask: number;
  /** 2^32 mod W. */
  private readonly two32ModW: number;

  constructor(size: number, initialHigh: number) {
    this.size = size;
    this.th = initialHigh >>> 0;
    this.startHigh = this.th;
    this.ph = this.th;
    this.bits = new Uint8Array(size > 0 ? size : 1);
    this.mask = size > 0 && size <= 0x40000000 && (size & (size - 1)) === 0 ? size - 1 : -1;
    this.two32ModW = size > 0 ? TWO32 % size : 0;
  }

  /**
   * RFC 4303 Appendix A2.2: infer Seqh for a received Seql, against the estimate (ph, pl).
   * `w` is the window used for inference (the SA's, or 64 when anti-replay is off).
   * The estimate then advances, so inference depends only on the order of the input (never on
   * batching or worker timing); forged packets may move the estimate but never the window.
   */
  inferHigh(seql: number): number {
    const w = this.size > 0 ? this.size : 64;
    const tl = this.pl;
    const th = this.ph;
    let seqh: number;
    if (tl >= w - 1) {
      // Case A: window within one sequence-number subspace.
      seqh = seql >= tl - w + 1 ? th : th + 1;
    } else {
      // Case B: window spans two subspaces.
      const low = (tl - w + 1) >>> 0;
      // The SA starts in subspace `startHigh` (sequence.high): nothing before it exists.
      seqh = seql >= low && th > this.startHigh ? th - 1 : th;
    }
    seqh >>>= 0;
    if (seqh > this.ph || (seqh === this.ph && seql > this.pl)) { this.ph = seqh; this.pl = seql; }
    return seqh;
  }

  /** Check (seqh, seql) against the window without changing it. */
  check(seqh: number, seql: number): ReplayVerdict {
    if (this.size === 0) return 'off';
    if (seqh === 0 && seql === 0) return 'too-old'; // sequence number 0 is never sent (RFC 4303 §2.2)
    if (seqh > this.th || (seqh === this.th && seql > this.tl)) return 'ok';
    const diff = (this.th - seqh) * TWO32 + (this.tl - seql);
    if (diff >= this.size) return 'too-old';
    return this.bits[this.pos(seqh, seql)] ? 'duplicate' : 'ok';
  }

  /** Record an authenticated packet (call only after the ICV verified and check() said ok). */
  update(seqh: number, seql: number): void {
    if (this.size === 0) {
      if (seqh > this.th || (seqh === this.th && seql > this.tl)) { this.th = seqh; this.tl = seql; }
      return;
    }
    if (seqh > this.th || (seqh === this.th && seql > this.tl)) {
      const diff = (seqh - this.th) * TWO32 + (seql - this.tl);
      if (diff >= this.size) this.bits.fill(0);
      else {
        // Clear the slots of the numbers the right edge skips over.
        let h = this.th, l = this.tl;
        for (let i = 0; i < diff; i++) {
          l++;
          if (l === TWO32) { l = 0; h++; }
          this.bits[this.pos(h, l)] = 0;
        }
      }
      this.th = seqh;
      this.tl = seql;
    }
    this.bits[this.pos(seqh, seql)] = 1;
  }

  private pos(h: number, l: number): number {
    if (this.mask >= 0) return l & this.mask; // 2^32 is a multiple of W
    const w = this.size;
    return ((h % w) * this.two32ModW + (l % w)) % w;
  }
}
