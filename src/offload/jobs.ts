/**
 * Crypto jobs: the part of rx/tx that is a pure function of bytes and keys, laid out so a batch
 * can be handed to a worker thread as two transferable ArrayBuffers (data + meta) and run there
 * or inline with the same code (runJobs). The main thread owns every piece of SA state; a
 * worker only knows "slots" (the transforms of one SA member), defined before first use.
 */
import { createAhTransform, createEspTransform } from '../crypto/index.js';
import { createNativeAhTransform, createNativeEspTransform, createNativeSlotTable, DEFERRED, type NativeSlotTable } from '../crypto/native.js';
import type { AhParams, AhTransform, EspParams, EspTransform } from '../crypto/types.js';
import { sharedMemoryOf } from '../capture/shared-memory.js';

/** Fields per job in the Int32Array meta. */
export const J = {
  ESP_SLOT: 0,
  AH_SLOT: 1,
  OP: 2,
  /** Region [OFF, OFF+LEN) of the data buffer. */
  OFF: 3,
  LEN: 4,
  /** ESP header offset relative to OFF (runs to the region's end). */
  ESP: 5,
  /** AH header offset relative to OFF. */
  AH: 6,
  SEQH_ESP: 7,
  SEQH_AH: 8,
  /** Offset in the data buffer of the AH side data: [IV][ICV] (expected on rx, computed on tx). */
  AUX: 9,
  RESULT: 10,
  /** First ESP byte that must not be sealed (unused: 0). */
  RESERVED: 11,
  /**
   * 0: the region's bytes are in the data buffer already. k > 0: they are in source k - 1 of the
   * batch (JobBatch.srcs: the reader's shared input chunks) at SRC_OFF, and the crypto step
   * brings them into the data buffer: the crypto thread's work, not the main thread's. The addon
   * decrypts an ESP-only open out of place, from the source into the data buffer (no copy first);
   * other jobs, and the node:crypto path, copy the region first.
   */
  SRC: 12,
  SRC_OFF: 13,
} as const;
export const JOB_FIELDS = 14;
/** Sources one batch may name (JobBatch.srcs). */
export const MAX_SRCS = 16;

export const Op = {
  AH_VERIFY: 1,
  ESP_OPEN: 2,
  ESP_SEAL: 4,
  AH_COMPUTE: 8,
  /**
   * SEQH_ESP / SEQH_AH hold ESN high halves even when they read as -1 (0xFFFFFFFF). Two bits
   * (16: ESP, 32: AH) because the native addon reads them separately.
   */
  ESN: 16 | 32,
} as const;

/**
 * ESN high bits of a job field (Int32Array): -1 = no ESN, unless Op.ESN says every value is a high
 * half; other negative values are high halves >= 2^31 stored as int32.
 */
function seqHigh(v: number, op: number): number {
  return (op & Op.ESN) !== 0 || v < -1 ? v >>> 0 : v;
}

/** Result encoding: low nibble AH (0 ok, 1 failed, 15 not run), next nibble ESP OpenResult (15 not run). */
export const NOT_RUN = 15;
/** Both nibbles: the batch was lost with a crypto worker twice (pool.ts); nothing was checked. */
export const WORKER_FAULT = 14 | (14 << 4);
export function resultAh(r: number): number { return r & 0xf; }
export function resultEsp(r: number): number { return (r >> 4) & 0xf; }

export interface SlotDef {
  slot: number;
  esp: EspParams | null;
  ah: AhParams | null;
}

/** The transforms known to one thread. */
export class SlotTable {
  private readonly esp: (EspTransform | null)[] = [];
  private readonly ah: (AhTransform | null)[] = [];
  /** Creation failures by slot (algorithm unusable): jobs on them report Internal. */
  private readonly broken: (string | null)[] = [];
  /** The addon's mirror of this table (runJobs runs whole batches through it); null without the addon. */
  readonly native: NativeSlotTable | null = createNativeSlotTable();

  define(d: SlotDef): void {
    try {
      // The addon's transforms when it has them, node:crypto's otherwise (no addon, single DES).
      // Both validate the parameters the same way, with the same messages (crypto-native tests).
      // node:crypto is only loaded when its transform is made: a run on the addon never needs it.
      let esp = d.esp && this.native ? createNativeEspTransform(d.esp) : null;
      let ah = d.ah && this.native ? createNativeAhTransform(d.ah) : null;
      if (d.esp && !esp) esp = createEspTransform(d.esp);
      if (d.ah && !ah) ah = createAhTransform(d.ah);
      this.esp[d.slot] = esp;
      this.ah[d.slot] = ah;
      this.broken[d.slot] = null;
    } catch (e) {
      this.esp[d.slot] = null;
      this.ah[d.slot] = null;
      this.broken[d.slot] = (e as Error).message;
    }
    this.native?.define(d.slot, this.esp[d.slot] ?? null, this.ah[d.slot] ?? null);
  }

  espOf(slot: number): EspTransform | null { return this.esp[slot] ?? null; }
  ahOf(slot: number): AhTransform | null { return this.ah[slot] ?? null; }
  has(slot: number): boolean { return slot < this.esp.length && (this.esp[slot] !== undefined || this.broken[slot] !== undefined); }
  brokenReason(slot: number): string | null { return this.broken[slot] ?? null; }
}

const chunk: Uint8Array[] = [new Uint8Array(0)];

/**
 * Run `n` jobs of a batch in place. Never throws: failures become result codes. With the native
 * addon the whole batch runs in one call; jobs on slots it cannot serve (single DES) come back
 * marked DEFERRED and run here one by one.
 */
export function runJobs(table: SlotTable, data: Uint8Array, meta: Int32Array, n: number, srcs: readonly Uint8Array[] = NO_SRCS): void {
  const nt = table.native;
  if (nt === null) return runJsJobs(table, data, meta, n, srcs);
  // the addon brings a job's source (J.SRC) into `data`, deferred jobs included
  if (nt.run(data, meta, n, srcs) === 0) return;
  runDeferredJobs(table, data, meta, n, srcs);
}

const NO_SRCS: readonly Uint8Array[] = [];

/** Run the jobs of a batch the addon marked DEFERRED (see runJobs) with the node:crypto path. */
export function runDeferredJobs(table: SlotTable, data: Uint8Array, meta: Int32Array, n: number, srcs: readonly Uint8Array[]): void {
  for (let i = 0; i < n; i++) {
    const b = i * JOB_FIELDS;
    if (meta[b + J.RESULT] === DEFERRED) runJsJobs(table, data, meta.subarray(b, b + JOB_FIELDS), 1, srcs);
  }
}

/** The node:crypto path of runJobs (transform by transform). */
function runJsJobs(table: SlotTable, data: Uint8Array, meta: Int32Array, n: number, srcs: readonly Uint8Array[]): void {
  for (let i = 0; i < n; i++) {
    const b = i * JOB_FIELDS;
    const op = meta[b + J.OP]!;
    const off = meta[b + J.OFF]!;
    const len = meta[b + J.LEN]!;
    let ahRes = NOT_RUN;
    let espRes = NOT_RUN;
    const src = meta[b + J.SRC]!;
    if (src !== 0) {
      const from = srcs[src - 1];
      const so = meta[b + J.SRC_OFF]!;
      if (from === undefined || so < 0 || len < 0 || so + len > from.length || off < 0 || off + len > data.length) {
        // as the addon does with a region out of range
        if (op & (Op.AH_VERIFY | Op.AH_COMPUTE)) ahRes = 3;
        else if (op & (Op.ESP_OPEN | Op.ESP_SEAL)) espRes = 3;
        meta[b + J.RESULT] = ahRes | (espRes << 4);
        continue;
      }
      data.set(from.subarray(so, so + len), off);
    }
    try {
      if (op & Op.AH_VERIFY) {
        const t = table.ahOf(meta[b + J.AH_SLOT]!);
        if (!t) ahRes = 3;
        else {
          const aux = meta[b + J.AUX]!;
          chunk[0] = data.subarray(off, off + len);
          const iv = t.ivLen ? data.subarray(aux, aux + t.ivLen) : null;
          ahRes = t.verify(chunk, seqHigh(meta[b + J.SEQH_AH]!, op), iv, data.subarray(aux + t.ivLen, aux + t.ivLen + t.icvLen)) ? 0 : 1;
        }
      }
      if ((op & Op.ESP_OPEN) && (ahRes === 0 || ahRes === NOT_RUN)) {
        const t = table.espOf(meta[b + J.ESP_SLOT]!);
        espRes = t ? t.open(data, off + meta[b + J.ESP]!, off + len, seqHigh(meta[b + J.SEQH_ESP]!, op)) : 3;
      }
      if (op & Op.ESP_SEAL) {
        const t = table.espOf(meta[b + J.ESP_SLOT]!);
        if (!t) espRes = 3;
        else { t.seal(data, off + meta[b + J.ESP]!, off + len, seqHigh(meta[b + J.SEQH_ESP]!, op)); espRes = 0; }
      }
      if ((op & Op.AH_COMPUTE) && (espRes === 0 || espRes === NOT_RUN)) {
        const t = table.ahOf(meta[b + J.AH_SLOT]!);
        if (!t) ahRes = 3;
        else {
          const aux = meta[b + J.AUX]!;
          chunk[0] = data.subarray(off, off + len);
          const iv = t.ivLen ? data.subarray(aux, aux + t.ivLen) : null;
          t.compute(chunk, seqHigh(meta[b + J.SEQH_AH]!, op), iv, data, aux + t.ivLen);
          ahRes = 0;
        }
      }
    } catch {
      if (ahRes === NOT_RUN && (op & (Op.AH_VERIFY | Op.AH_COMPUTE))) ahRes = 3;
      else espRes = 3;
    }
    meta[b + J.RESULT] = ahRes | (espRes << 4);
  }
  chunk[0] = new Uint8Array(0);
}

/**
 * A batch of crypto jobs being built on the main thread. Data and meta are plain ArrayBuffers so
 * the pool can transfer them; after a round trip the pool puts the returned buffers back.
 */
export class JobBatch {
  data: Uint8Array;
  meta: Int32Array;
  count = 0;
  used = 0;
  /**
   * Memory jobs read their region from (J.SRC): the input chunks (SharedArrayBuffers, which a
   * worker sees without a copy) named by this batch's jobs, at most MAX_SRCS.
   */
  readonly srcs: SharedArrayBuffer[] = [];
  /** The same memory as `srcs`, as this thread sees it (the chunks' plain aliases), for runJobs here. */
  readonly srcViews: Uint8Array[] = [];
  /** The last source looked up, and its index. */
  private lastSrc: ArrayBufferLike | null = null;
  private lastSrcIdx = -1;

  constructor(dataBytes = 1 << 21, maxJobs = 1024) {
    this.data = new Uint8Array(new ArrayBuffer(dataBytes));
    this.meta = new Int32Array(new ArrayBuffer(maxJobs * JOB_FIELDS * 4));
  }

  reset(): void {
    this.count = 0;
    this.used = 0;
    this.srcs.length = 0;
    this.srcViews.length = 0;
    this.lastSrc = null;
    this.lastSrcIdx = -1;
  }

  /**
   * The index in `srcs` of the chunk whose alias is `ab` when a job may name it as its source (an
   * input chunk in shared memory, capture/shared-memory.ts, with room in the list), else -1 (the
   * caller copies the bytes itself).
   */
  srcIndex(ab: ArrayBufferLike): number {
    if (ab === this.lastSrc) return this.lastSrcIdx;
    let i = -1;
    const sab = sharedMemoryOf(ab);
    if (sab !== undefined) {
      i = this.srcs.indexOf(sab);
      if (i < 0 && this.srcs.length < MAX_SRCS) {
        i = this.srcs.push(sab) - 1;
        // this thread reads the chunk through its plain alias (no relaxed-atomic copies)
        this.srcViews.push(new Uint8Array(ab));
      }
    }
    this.lastSrc = ab;
    this.lastSrcIdx = i;
    return i;
  }

  get maxJobs(): number { return this.meta.length / JOB_FIELDS; }

  /** Reserve `len` bytes (8-aligned). Returns the offset, or -1 when full. */
  alloc(len: number): number {
    const o = this.used;
    if (o + len > this.data.length || this.count >= this.maxJobs) return -1;
    this.used = (o + len + 7) & ~7;
    return o;
  }

  /** Grow data so that `len` more bytes fit (used for a single oversized frame). */
  ensure(len: number): void {
    if (this.used + len <= this.data.length) return;
    const n = new Uint8Array(new ArrayBuffer(Math.max(this.data.length * 2, this.used + len + 64)));
    n.set(this.data.subarray(0, this.used));
    this.data = n;
  }

  /** Append a job (all fields 0); returns its index. */
  addJob(): number {
    const i = this.count++;
    // a store loop: fill() is a call into a C++ builtin (Builtin_TypedArrayPrototypeFill in perf)
    const m = this.meta;
    for (let k = i * JOB_FIELDS, e = k + JOB_FIELDS; k < e; k++) m[k] = 0;
    return i;
  }
}
