/**
 * rx output through the addon: common frames (decapsulated, no detail text, pcapng or OOB
 * output) are planned as they are emitted and written in runs by NativeEmit, one call per run;
 * everything else, and every frame without the addon, takes the JS writers in run.ts. The bytes
 * are the same either way (test/rx-emit.test.ts).
 *
 * Why: per frame the JS writers spend ~1 µs on the pcapng block, the OOB line and the comment
 * (a few dozen set() calls and small copies); one N-API call costs ~150 ns, as much as a
 * JS-written line, so the addon only pays when it writes many frames per call.
 *
 * Written from the job data (`scattered`: a file the addon's write thread writes, the engine's
 * emitRoom on): a frame's pcapng block is built around its decrypted payload where the crypto
 * step left it, in the room its job left before and after it, and the thread writes the blocks
 * from there (pwritev), so no payload is copied on this thread. The batch's job data then belongs
 * to the writer until written: the pipeline gives the batch another buffer (retire()). Frames
 * that do not fit their room (a job too small to get any, headers longer than the room, long SA
 * names) are copied into the writer's buffer as before, and that part of the buffer is a piece
 * of the same pwritev.
 */
import type { CaptureWriter } from '../capture/writer.js';
import type { CaptureInterface } from '../capture/types.js';
import type { NativeEmit } from '../crypto/native.js';
import { RxOobEncoder } from '../offload/oob-encode.js';
import type { RxCtx, RxEngine } from '../offload/rx.js';
import { P_CAP, P_FIELDS, P_HDR_LEN, P_HDR_OFF, P_IF, P_ORIG, P_PAY_LEN, P_PAY_OFF, P_PRE_LEN, P_PRE_OFF, P_ROOM_HI, P_ROOM_LO, P_TS_HI, P_TS_LO } from '../offload/emit-plan.js';
import type { OutputFile } from './output.js';

/** Frames per run, and the output bytes (bounds) after which a run is written. */
const MAX_FRAMES = 1024;
const MAX_BYTES = 512 << 10;
/** Header bytes kept per run (L2 + IP headers, timestamp date parts). */
const ARENA = 256 << 10;
/**
 * Job data buffers kept for reuse once written (see retire). Enough for every buffer a run can
 * have in use at once (batches in flight, writes back-pressure allows): one dropped here while the
 * writes lagged was garbage, and a new one made later (64 B frames with a cap of 4: 52 new 2 MB
 * buffers in a 1.6M-frame run, +80 MB of RSS until collected).
 */
const SPARE_DATA = 16;

/** A batch's job data handed to the writer, and its writes not done yet. */
class HandedData {
  pending = 0;
  /** The batch has another buffer now: this one is reusable once `pending` is 0. */
  retired = false;
  constructor(readonly data: Uint8Array) {}
}

export class RxEmitter {
  private readonly plan = new Int32Array(MAX_FRAMES * P_FIELDS);
  private readonly arena = new Uint8Array(ARENA);
  private readonly ends = new Int32Array(5);
  private readonly iov = new Int32Array(MAX_FRAMES * 2);
  /** The job data of the batch being processed (set by the pipeline before each batch); only frames whose payload is there are written from it. */
  batchData: Uint8Array | null = null;
  /** batchData handed to the writer (null: not). */
  private handed: HandedData | null = null;
  private readonly spares: Uint8Array[] = [];
  /** The frames of the run (for the JS writers if the addon refuses it). */
  private readonly ctxs: RxCtx[] = [];
  private n = 0;
  private arenaLen = 0;
  /** The job data the run's payloads are in. */
  private data: Uint8Array | null = null;
  /** The date part last put in the arena, and where. */
  private pre: Uint8Array | null = null;
  private preOff = 0;
  /** Upper bounds of the run's pcapng blocks and OOB lines. */
  private epbBound = 0;
  private lineBound = 0;
  /** Frames of the run whose job has room for their block. */
  private roomy = 0;

  constructor(
    private readonly ne: NativeEmit,
    private readonly enc: RxOobEncoder,
    private readonly engine: RxEngine,
    private readonly writer: CaptureWriter | null,
    private readonly oob: OutputFile | null,
    private readonly ifaces: readonly CaptureInterface[],
    /** Writes one frame the JS way (its record loaded in `e`): OOB line, then block. */
    private readonly writeJs: (c: RxCtx, ifId: number, outLen: number, e: RxOobEncoder) => void,
    /** Frames are written from the job data (see above): the writer's scatteredWrites and the engine's emitRoom. */
    private readonly scattered = false,
  ) {}

  /** The encoder of runs the addon refused (the pipeline's own holds the current record). */
  private fallbackEnc: RxOobEncoder | null = null;

  /**
   * Plan frame `c` (its record loaded in the encoder) for output interface `ifId` (declared), or
   * return false: then the caller writes it the JS way, after flush().
   */
  add(c: RxCtx, ifId: number, outLen: number, origLen: number): boolean {
    if (!c.payloadInJobs() || c.frame.data.length + 128 > ARENA) return false;
    const data = c.outData!;
    if (this.n > 0 && (data !== this.data || this.n === MAX_FRAMES || this.epbBound > MAX_BYTES || this.lineBound > MAX_BYTES || this.arenaLen + c.frame.data.length + 128 > ARENA)) this.flush();
    const plan = this.plan;
    const b = this.n * P_FIELDS;
    const enc = this.enc;
    const pre = enc.planText(plan, b);
    if (pre === null) return false;
    const arena = this.arena;
    if (pre !== this.pre) {
      this.pre = pre;
      this.preOff = this.arenaLen;
      arena.set(pre, this.arenaLen);
      this.arenaLen += pre.length;
    }
    const h = this.engine.writeOutputHead(c, arena, this.arenaLen);
    const payLen = c.outB - c.outA;
    if (h + payLen !== outLen) return false; // not the shape planned for: the JS writers
    const f = c.frame;
    plan[b + P_IF] = ifId;
    plan[b + P_TS_HI] = f.tsHi;
    plan[b + P_TS_LO] = f.tsLo;
    plan[b + P_CAP] = outLen;
    plan[b + P_ORIG] = origLen < outLen ? outLen : origLen;
    plan[b + P_PRE_OFF] = this.preOff;
    plan[b + P_PRE_LEN] = pre.length;
    plan[b + P_HDR_OFF] = this.arenaLen;
    plan[b + P_HDR_LEN] = h;
    plan[b + P_PAY_OFF] = c.outA;
    plan[b + P_PAY_LEN] = payLen;
    plan[b + P_ROOM_LO] = c.roomLo;
    plan[b + P_ROOM_HI] = c.roomHi;
    if (c.roomHi > 0) this.roomy++;
    this.arenaLen += h;
    this.data = data;
    this.ctxs[this.n] = c;
    this.n++;
    // block: header 28, data padded, comment option (4 + bound + pad), end of options, size
    if (this.writer !== null) this.epbBound += 28 + outLen + 3 + 4 + enc.bound() + 3 + 8;
    if (this.oob !== null) this.lineBound += enc.lineBound();
    return true;
  }

  /**
   * Write the planned frames (before any other output, and at the end of each batch). A run the
   * addon refuses is written by the JS writers, with an encoder of its own.
   */
  flush(): void {
    const n = this.n;
    if (n === 0) return;
    this.n = 0;
    const w = this.writer;
    const o = this.oob;
    const wOff = w !== null ? w.reserveBlocks(this.epbBound) : -1;
    const lOff = o !== null ? o.reserve(this.lineBound) : -1;
    const ends = this.ends;
    const epb = wOff >= 0 ? w!.frameBuf : null;
    const line = lOff >= 0 ? o!.buffer : null;
    // blocks built in the job data where they fit, the others in the writer's buffer
    const inPlace = this.scattered && epb !== null && this.roomy > 0 && this.data === this.batchData;
    const ok = inPlace
      ? this.ne.emitInPlace(this.plan, n, this.arena, this.data!, epb, wOff, line, lOff < 0 ? 0 : lOff, ends, this.iov)
      : this.ne.emit(this.plan, n, this.arena, this.data!, epb, wOff < 0 ? 0 : wOff, line, lOff < 0 ? 0 : lOff, ends);
    if (ok) {
      if (lOff >= 0) o!.commit(ends[1]!);
      const built = inPlace ? ends[4]! : 0;
      if (built > 0) this.handOver(w!, ends);
      else if (wOff >= 0) w!.commitBlocks(inPlace ? ends[2]! : ends[0]!);
      this.nativeFrames += n;
      this.scatteredFrames += built;
    } else {
      // refused (an entry out of range): nothing was written; the JS writers take the run
      if (wOff >= 0) w!.commitBlocks(wOff);
      if (lOff >= 0) o!.commit(lOff);
      const plan = this.plan;
      const e = (this.fallbackEnc ??= new RxOobEncoder());
      for (let k = 0; k < n; k++) {
        const c = this.ctxs[k]!;
        const b = k * P_FIELDS;
        e.load(c.oob, this.ifaces[c.frame.ifId]!, c.frame.tsHi, c.frame.tsLo);
        this.writeJs(c, plan[b + P_IF]!, plan[b + P_CAP]!, e);
      }
      this.refusedFrames += n;
    }
    this.endRun(n);
  }

  private endRun(n: number): void {
    this.arenaLen = 0;
    this.pre = null;
    this.data = null;
    this.epbBound = 0;
    this.lineBound = 0;
    this.roomy = 0;
    this.ctxs.fill(undefined as unknown as RxCtx, 0, n);
  }

  /**
   * The run's blocks (ends of emitInPlace), some built in the job data, to the writer from where
   * they are; the job data is the writer's until written (retire()).
   */
  private handOver(w: CaptureWriter, ends: Int32Array): void {
    const data = this.data!;
    let h = this.handed;
    if (h === null) h = this.handed = new HandedData(data);
    h.pending++;
    const handed = h;
    w.commitScattered(ends[2]!, data, this.iov, ends[3]!, ends[0]!, () => {
      if (--handed.pending === 0 && handed.retired) this.spare(handed.data);
    });
  }

  private spare(d: Uint8Array): void {
    if (this.spares.length < SPARE_DATA) this.spares.push(d);
  }

  /**
   * After a batch (and flush()): null when its job data `data` is still its own, else the buffer
   * it must take instead (as large; a spare whose writes are done, or new), `data` now being
   * the writer's until written.
   */
  retire(data: Uint8Array): Uint8Array | null {
    const h = this.handed;
    this.batchData = null;
    if (h === null) return null;
    this.handed = null;
    if (h.pending === 0 || h.data !== data) return null; // written already: the batch keeps it
    h.retired = true;
    const sp = this.spares;
    for (let i = sp.length - 1; i >= 0; i--) {
      const d = sp[i]!;
      if (d.length === data.length) {
        sp.splice(i, 1);
        return d;
      }
    }
    return new Uint8Array(new ArrayBuffer(data.length));
  }

  /** Frames written by the addon so far, and frames of runs it refused (then written by JS). */
  nativeFrames = 0;
  refusedFrames = 0;
  /** Of nativeFrames: written from the job data (no payload copied). */
  scatteredFrames = 0;
}
