/**
 * Fast crypto path: ESP/AH transforms over the optional N-API addon (native/ipsecov2_native.c),
 * which keeps one set of OpenSSL contexts per SA (key schedule and GHASH table set once, only the
 * IV/nonce set per packet; HMAC restarts from precomputed inner/outer states) and can run a whole
 * JobBatch (src/offload/jobs.ts) in one call.
 *
 * The addon is built at install by scripts/build-native.mjs (never failing the install) into
 * build/Release/ipsecov2_native.node. When it is absent, fails to load, or IPSECOV2_NO_NATIVE=1,
 * every factory here returns null and the node:crypto transforms (./esp.ts, ./ah.ts) are used.
 * Semantics are identical to those (test/crypto-native.test.ts cross-checks every algorithm).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encryptionAlgorithm, integrityAlgorithm } from './registry.js';
import { envFlag } from '../env.js';
import type { AhParams, AhTransform, EspParams, EspTransform, OpenResult } from './types.js';

/** The addon's JS-facing API version this loader speaks (ABI_VERSION in the C file). */
const EXPECTED_ABI = 14;
const ADDON_FILE = join('build', 'Release', 'ipsecov2_native.node');

type Ctx = object;
interface Addon {
  abi: number;
  info(): string;
  espNew(mode: number, cipher: string, key: Uint8Array | null, salt: Uint8Array | null, hash: number, macKey: Uint8Array | null, ivLen: number, icvLen: number, blockSize: number): Ctx;
  espOpen(ctx: Ctx, buf: Uint8Array, start: number, end: number, seqHigh: number): number;
  espSeal(ctx: Ctx, buf: Uint8Array, start: number, end: number, seqHigh: number): number;
  ahNew(kind: number, hashOrCipher: number | string, key: Uint8Array, salt: Uint8Array | null, icvLen: number): Ctx;
  ahMac(ctx: Ctx, chunks: Uint8Array | readonly Uint8Array[], seqHigh: number, iv: Uint8Array | null, ivOff: number, out: Uint8Array, outOff: number, verify: boolean): number;
  tableNew(): Ctx;
  tableSet(table: Ctx, slot: number, espKind: number, esp: Ctx | null, ahKind: number, ah: Ctx | null): void;
  runBatch(table: Ctx, data: Uint8Array, meta: Int32Array, n: number, srcs: readonly Uint8Array[]): number;
  /** A plain ArrayBuffer over the memory of the SharedArrayBuffer `view` covers (the caller keeps that alive). */
  aliasShared(view: Uint8Array): ArrayBuffer;
  /** Thread `tid` of this process scheduled as SCHED_BATCH (Linux; only from SCHED_OTHER)? */
  threadBatch(tid: number): boolean;
  pipeSize(fd: number, bytes: number): number;
  soleOpener(fd: number): number;
  readable(fd: number): number | null;
  waitNew(fd: number, cb: (status: number) => void): object | number;
  waitStart(w: object): number;
  waitClose(w: object): void;
  /** glibc's main heap keeps freed memory and its new space gets transparent huge pages: bytes advised, 0, -errno, or null without Linux+glibc. */
  heapHuge(reserve: number): number | null;
  /** A crypto thread of the addon's own running batches on `table`; cb(id) on the event loop ends a threadWait. */
  threadNew(table: Ctx | null, cb: (id: number) => void, words: Int32Array): Ctx;
  /** Queue a pwrite of all of `bytes` at `position` of `fd` (a thread made with a null table). */
  threadWrite(thread: Ctx, id: number, fd: number, bytes: Uint8Array, position: number): void;
  /** Queue a pwritev of the n pieces bytes[iov[2i], iov[2i] + iov[2i+1]) (aux[k..] for an offset -(k + 1)) at `position` of `fd`. */
  threadWritev(thread: Ctx, id: number, fd: number, bytes: Uint8Array, iov: Int32Array, n: number, position: number, aux?: Uint8Array | null): void;
  /** Length of the words array threadNew takes. */
  threadWords: number;
  /** The main thread waits for batch `id` (stored in words[0], found not done): cb(id) comes once it is. */
  threadWait(thread: Ctx, id: number): void;
  /** Queue a batch (the caller keeps its buffers alive and untouched until it is done). */
  threadRun(thread: Ctx, id: number, data: Uint8Array, meta: Int32Array, n: number, srcs: readonly Uint8Array[]): void;
  /** Run the jobs of queued batch `id` the thread has not taken yet, on `table` (this thread's own): the jobs run. */
  threadHelp(thread: Ctx, id: number, table: Ctx, data: Uint8Array, meta: Int32Array, n: number, srcs: readonly Uint8Array[]): number;
  /** Stop and join the thread; batches still queued are dropped (never called back). */
  threadClose(thread: Ctx): void;
  /** Cipher contexts made from now on call the provider's functions directly (true) or use EVP; returns the previous setting. */
  setDirect(on?: boolean | null): boolean;
  /** Cipher contexts made so far: [with direct provider calls, through EVP]. */
  madeCounts(): [number, number];
  textNew(): Ctx;
  textPiece(t: Ctx, index: number, bytes: Uint8Array): void;
  emitBatch(t: Ctx, plan: Int32Array, n: number, arena: Uint8Array, data: Uint8Array, epb: Uint8Array | null, epbOff: number, line: Uint8Array | null, lineOff: number, ends: Int32Array, iov?: Int32Array | null): boolean;
}

let loaded = false;
let addon: Addon | null = null;
let reason = '';

/** The package root: this file is dist/src/crypto/native.js (or src/crypto/native.ts). */
function addonPath(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const p = join(dir, ADDON_FILE);
    if (existsSync(p)) return p;
    if (existsSync(join(dir, 'package.json'))) return null;
    dir = dirname(dir);
  }
  return null;
}

function load(): Addon | null {
  if (loaded) return addon;
  loaded = true;
  if (envFlag('IPSECOV2_NO_NATIVE')) {
    reason = 'disabled by IPSECOV2_NO_NATIVE';
    return null;
  }
  const p = addonPath();
  if (!p) {
    reason = 'addon not built';
    return null;
  }
  try {
    const a = createRequire(import.meta.url)(p) as Addon;
    if (a.abi !== EXPECTED_ABI) throw new Error(`addon ABI ${a.abi}, expected ${EXPECTED_ABI}: rebuild it (npm run build:native)`);
    addon = a;
  } catch (e) {
    reason = `addon failed to load: ${String((e as Error).message).split('\n')[0]}`;
    addon = null;
  }
  return addon;
}

/**
 * A plain ArrayBuffer over the memory of `sab`; null without the addon. The caller must keep `sab`
 * alive as long as the alias (src/capture/shared-memory.ts does).
 */
export function aliasSharedMemory(sab: SharedArrayBuffer): ArrayBuffer | null {
  const a = load();
  return a ? a.aliasShared(new Uint8Array(sab)) : null;
}

/**
 * Schedule thread `tid` of this process as SCHED_BATCH (src/pipeline/priority.ts): true when it
 * is; false without the addon, off Linux, for a real-time or idle thread, or when refused.
 */
export function setThreadBatch(tid: number): boolean {
  const a = load();
  return a !== null && a.threadBatch(tid);
}

/**
 * Tune glibc's main heap for this process (src/pipeline/heap.ts): the bytes given transparent
 * huge pages (0 when none were), a negative errno when refused, or null without the addon or
 * off Linux with glibc.
 */
export function tuneHeap(reserve: number): number | null {
  const a = load();
  return a === null ? null : a.heapHuge(reserve);
}

/**
 * Make pipe `fd` hold `bytes` (Linux F_SETPIPE_SZ): its size after, or null without the addon or
 * when refused (not a pipe, over the user's limit, not Linux).
 */
export function setPipeSize(fd: number, bytes: number): number | null {
  const a = load();
  if (a === null) return null;
  const r = a.pipeSize(fd, bytes);
  return r > 0 ? r : null;
}

/**
 * Is `fd` (open for writing) the only open file description of its file: no other process, and
 * no other descriptor of this one, has it open or mapped? Asked through a write lease taken and
 * released at once (Linux). null when it cannot be told: no addon, not Linux, leases refused
 * (not the file's owner, a filesystem without them).
 */
export function soleOpener(fd: number): boolean | null {
  const a = load();
  if (a === null) return null;
  const r = a.soleOpener(fd);
  return r === 1 ? true : r === 0 ? false : null;
}

/**
 * Would a read of `fd` return at once (bytes, end of input, an error)? true / false; null
 * without the addon or off Linux (the caller cannot ask: see capture/input.ts, FdSource).
 */
export function fdReadable(fd: number): boolean | null {
  const a = load();
  if (a === null) return null;
  const r = a.readable(fd);
  // poll() failing: a read reports the error at once
  return r === null ? null : r !== 0;
}

/**
 * A watcher that calls `onReady` once per start(), when `fd` is readable (bytes, end of input or
 * an error to report), from the event loop; it can be stopped at any time, unlike a read waiting
 * in libuv's thread pool. Made non-blocking by libuv.
 */
export interface FdWatcher {
  /** Wait for the next readiness: false when the watch could not be started (then poll instead). */
  start(): boolean;
  /** Stop and free it; a pending onReady is not called. */
  close(): void;
}

/**
 * A readiness watcher for `fd` (FdSource, src/capture/input.ts), or null without the addon or for
 * a descriptor epoll cannot watch (a regular file, always readable).
 */
export function fdWatcher(fd: number, onReady: (status: number) => void): FdWatcher | null {
  const a = load();
  if (a === null) return null;
  const w = a.waitNew(fd, onReady);
  if (typeof w === 'number') return null;
  let open = true;
  return {
    start: () => open && a.waitStart(w) === 0,
    close: () => {
      if (open) a.waitClose(w);
      open = false;
    },
  };
}

/** True when the native addon is loaded and will be used. */
export function nativeAvailable(): boolean {
  return load() !== null;
}

/** One line for `--version`: which crypto path is active and why. */
export function nativeInfo(): string {
  const a = load();
  if (a) {
    const v = /OpenSSL \S+/.exec(a.info());
    return `native addon (${v ? v[0] : a.info()} via node, ${a.setDirect() ? 'provider calls' : 'EVP calls: IPSECOV2_NATIVE_EVP'})`;
  }
  return `node:crypto (${reason})`;
}

/**
 * Tests: make the addon's cipher contexts call the OpenSSL provider's functions directly (the
 * default) or go through EVP (IPSECOV2_NATIVE_EVP=1), for contexts made from now on. Returns the
 * previous setting and the contexts made each way so far; null without the addon.
 */
export function nativeCipherCalls(direct?: boolean): { previous: boolean; made: { direct: number; evp: number } } | null {
  const a = load();
  if (!a) return null;
  const previous = a.setDirect(direct ?? null);
  const [d, e] = a.madeCounts();
  return { previous, made: { direct: d, evp: e } };
}

// ---------------------------------------------------------------------------------------------
// rx output

/**
 * The addon's writer of rx output (pcapng EPBs and OOB JSON lines) for runs of common frames,
 * from a plan (src/pipeline/rx-emit.ts) and text pieces registered by number
 * (src/offload/oob-encode.ts). The format lives in those two files; the addon concatenates.
 */
export class NativeEmit {
  /** Most pieces one writer holds (the addon's limit). */
  static readonly MAX_PIECES = 65536;
  private readonly t: Ctx;
  constructor(private readonly a: Addon) {
    this.t = a.textNew();
  }
  /** Keep a copy of `bytes` as piece `index` (0..MAX_PIECES-1, at most 64 KiB). */
  piece(index: number, bytes: Uint8Array): void {
    this.a.textPiece(this.t, index, bytes);
  }
  /**
   * Write the EPBs (into `epb` at epbOff, when not null) and OOB lines (into `line` at lineOff,
   * when not null) of the n frames of `plan`; ends[0], ends[1] get the end offsets. False, with
   * nothing written, when an entry is out of range or the output does not fit.
   */
  emit(plan: Int32Array, n: number, arena: Uint8Array, data: Uint8Array, epb: Uint8Array | null, epbOff: number, line: Uint8Array | null, lineOff: number, ends: Int32Array): boolean {
    return this.a.emitBatch(this.t, plan, n, arena, data, epb, epbOff, line, lineOff, ends);
  }

  /**
   * emit(), with the EPB of each frame that fits built in `data` around its payload (no payload
   * copied), in the room plan's P_ROOM_LO..P_ROOM_HI give it and after the last one built there;
   * the others' EPBs go one after another into `epb` from epbOff. iov gets the pieces to write in
   * order, (offset, length) pairs: in data, or at epb[k] for an offset -(k + 1), consecutive ones
   * in epb merged; ends (5) = [total length, line end, epb end, pieces, EPBs built in data]
   * (NativeWriteThread.writev writes them, epb as its aux). False, with nothing written, as emit.
   */
  emitInPlace(plan: Int32Array, n: number, arena: Uint8Array, data: Uint8Array, epb: Uint8Array, epbOff: number, line: Uint8Array | null, lineOff: number, ends: Int32Array, iov: Int32Array): boolean {
    return this.a.emitBatch(this.t, plan, n, arena, data, epb, epbOff, line, lineOff, ends, iov);
  }
}

/** A native rx output writer, or null without the addon. */
export function createNativeEmit(): NativeEmit | null {
  const a = load();
  return a ? new NativeEmit(a) : null;
}

// ---------------------------------------------------------------------------------------------
// Transforms

const HASH_ID: Readonly<Record<string, number>> = Object.freeze({ md5: 1, sha1: 2, sha256: 3, sha384: 4, sha512: 5 });
const DIGEST_LEN: Readonly<Record<string, number>> = Object.freeze({ md5: 16, sha1: 20, sha256: 32, sha384: 48, sha512: 64 });
const ESP_SEP = 0;
const ESP_AEAD = 1;
const ESP_GMAC = 2;
const AH_HMAC = 0;
const AH_GMAC = 1;

class NativeEsp implements EspTransform {
  readonly padUnit: number;
  constructor(
    private readonly a: Addon,
    /** @internal the addon context (used by NativeSlotTable) */
    readonly ctx: Ctx,
    readonly ivLen: number,
    readonly icvLen: number,
    readonly blockSize: number,
  ) {
    this.padUnit = Math.max(4, blockSize);
  }
  open(buf: Uint8Array, start: number, end: number, seqHigh: number): OpenResult {
    return this.a.espOpen(this.ctx, buf, start, end, seqHigh) as OpenResult;
  }
  seal(buf: Uint8Array, start: number, end: number, seqHigh: number): void {
    const r = this.a.espSeal(this.ctx, buf, start, end, seqHigh);
    if (r === 2) throw new RangeError(`ESP seal: ciphertext length ${end - start - 8 - this.ivLen - this.icvLen} is not a multiple of ${this.blockSize}`);
    if (r !== 0) throw new Error('ESP seal: native crypto failed (region out of range or OpenSSL error)');
  }
}

class NativeAh implements AhTransform {
  constructor(
    private readonly a: Addon,
    /** @internal */
    readonly ctx: Ctx,
    readonly ivLen: number,
    readonly icvLen: number,
  ) {}
  compute(chunks: readonly Uint8Array[], seqHigh: number, iv: Uint8Array | null, out: Uint8Array, outOff: number): void {
    if (this.ivLen && (!iv || iv.length !== this.ivLen)) throw new RangeError(`AH GMAC: expected an 8-byte IV, got ${iv ? `length=${iv.length}` : 'null'}`);
    if (this.a.ahMac(this.ctx, chunks, seqHigh, iv, 0, out, outOff, false) !== 0) throw new Error('AH: native crypto failed');
  }
  verify(chunks: readonly Uint8Array[], seqHigh: number, iv: Uint8Array | null, expected: Uint8Array): boolean {
    if (expected.length !== this.icvLen) return false;
    if (this.ivLen && (!iv || iv.length !== this.ivLen)) return false;
    return this.a.ahMac(this.ctx, chunks, seqHigh, iv, 0, expected, 0, true) === 0;
  }
}

function expectLen(what: string, got: number, want: number): void {
  if (got !== want) throw new RangeError(`${what}: expected ${want} bytes, got length=${got}`);
}

function checkHmacIcv(hash: string, icvLen: number): void {
  const full = DIGEST_LEN[hash]!;
  if (!Number.isInteger(icvLen) || icvLen < 1 || icvLen > full) throw new RangeError(`HMAC-${hash}: ICV length must be 1..${full}, got ${icvLen}`);
}

/**
 * The native ESP transform of one SA, or null when the addon is not available or does not cover
 * the algorithm (single DES). Parameter errors throw the same RangeErrors as createEspTransform.
 * @param p SA parameters (registry names, keys with the salt at the end, ICV length)
 * @returns an EspTransform with the exact semantics of crypto/esp.ts, or null
 */
export function createNativeEspTransform(p: EspParams): EspTransform | null {
  const a = load();
  if (!a) return null;
  const enc = encryptionAlgorithm(p.encryption);
  if (!enc) throw new RangeError(`ESP: unknown encryption "${p.encryption}"`);
  const integ = integrityAlgorithm(p.integrity);
  if (!integ) throw new RangeError(`ESP: unknown integrity "${p.integrity}"`);
  expectLen(`ESP ${enc.name} key (key${enc.saltLen ? ' + salt' : ''})`, p.encryptionKey.length, enc.keyLen + enc.saltLen);
  let make: () => NativeEsp;
  if (enc.aead) {
    if (integ.kind !== 'none') throw new RangeError(`ESP: ${enc.name} is a combined mode; integrity must be "none", got "${integ.name}"`);
    if (!enc.icvLengths.includes(p.icvLength)) throw new RangeError(`ESP ${enc.name}: ICV length must be one of ${enc.icvLengths.join('/')}, got ${p.icvLength}`);
    const key = p.encryptionKey.subarray(0, enc.keyLen);
    const salt = p.encryptionKey.subarray(enc.keyLen);
    make = () => new NativeEsp(a, a.espNew(ESP_AEAD, enc.openssl, key, salt, 0, null, 8, p.icvLength, 1), 8, p.icvLength, 1);
  } else if (integ.kind === 'gmac') {
    if (enc.name !== 'null') throw new RangeError(`ESP: ${integ.name} is only defined with encryption "null" (RFC 4543 §3), got "${enc.name}"`);
    expectLen(`ESP ${integ.name} key + salt`, p.integrityKey.length, integ.keyLen + integ.saltLen);
    if (p.icvLength !== 16) throw new RangeError(`ESP ${integ.name}: ICV length is 16 (RFC 4543 §3.4), got ${p.icvLength}`);
    const key = p.integrityKey.subarray(0, integ.keyLen);
    const salt = p.integrityKey.subarray(integ.keyLen);
    make = () => new NativeEsp(a, a.espNew(ESP_GMAC, integ.openssl, key, salt, 0, null, 8, 16, 1), 8, 16, 1);
  } else {
    let hash = 0;
    let icv = 0;
    if (integ.kind === 'hmac') {
      checkHmacIcv(integ.openssl, p.icvLength);
      hash = HASH_ID[integ.openssl]!;
      icv = p.icvLength;
    } else if (p.icvLength !== 0) throw new RangeError(`ESP: integrity "none" has no ICV, got icvLength ${p.icvLength}`);
    if (enc.name === 'des-cbc') return null; // single DES: the JS/legacy-provider path only
    const cbc = enc.openssl.endsWith('-cbc');
    const ctr = enc.openssl.endsWith('-ctr');
    if (enc.name !== 'null' && !cbc && !ctr) return null;
    const key = enc.name === 'null' ? null : p.encryptionKey.subarray(0, enc.keyLen);
    const salt = ctr ? p.encryptionKey.subarray(enc.keyLen) : null;
    make = () => new NativeEsp(a, a.espNew(ESP_SEP, enc.openssl, key, salt, hash, hash ? p.integrityKey : null, enc.ivLen, icv, enc.blockSize), enc.ivLen, icv, enc.blockSize);
  }
  try {
    return make();
  } catch {
    return null; // OpenSSL refused the cipher (e.g. a FIPS-only build): node:crypto decides
  }
}

/**
 * The native AH transform of one SA, or null when the addon is not available.
 * Parameter errors throw the same RangeErrors as createAhTransform.
 */
export function createNativeAhTransform(p: AhParams): AhTransform | null {
  const a = load();
  if (!a) return null;
  const integ = integrityAlgorithm(p.integrity);
  if (!integ || integ.kind === 'none') throw new RangeError(`AH: unknown or empty integrity "${p.integrity}"`);
  let make: () => NativeAh;
  if (integ.kind === 'hmac') {
    checkHmacIcv(integ.openssl, p.icvLength);
    make = () => new NativeAh(a, a.ahNew(AH_HMAC, HASH_ID[integ.openssl]!, p.integrityKey, null, p.icvLength), 0, p.icvLength);
  } else {
    if (p.integrityKey.length !== integ.keyLen + integ.saltLen) {
      throw new RangeError(`AH ${integ.name} key + salt: expected ${integ.keyLen + integ.saltLen} bytes, got length=${p.integrityKey.length}`);
    }
    if (p.icvLength !== 16) throw new RangeError(`AH ${integ.name}: ICV (tag) length is 16 (RFC 4543 §3.4), got ${p.icvLength}`);
    const key = p.integrityKey.subarray(0, integ.keyLen);
    const salt = p.integrityKey.subarray(integ.keyLen);
    make = () => new NativeAh(a, a.ahNew(AH_GMAC, integ.openssl, key, salt, 16), 8, 16);
  }
  try {
    return make();
  } catch {
    return null;
  }
}

/** True when `t` is backed by the addon (runBatch can run it without calling back into JS). */
export function isNativeTransform(t: EspTransform | AhTransform | null): boolean {
  return t instanceof NativeEsp || t instanceof NativeAh;
}

// ---------------------------------------------------------------------------------------------
// Whole-batch execution

/** RESULT value of a job that runBatch left for the JS path (its slot has a non-native transform). */
export const DEFERRED = -1;

/**
 * Native mirror of a SlotTable: the addon contexts by slot, so that a whole JobBatch runs in one
 * JS→C call (runJobs semantics, job layout J/Op/result nibbles of src/offload/jobs.ts).
 */
export class NativeSlotTable {
  /** The addon's table (NativeThread.help). */
  readonly t: Ctx;
  constructor(private readonly a: Addon) {
    this.t = a.tableNew();
  }

  /**
   * Register the transforms of `slot` (replacing earlier ones). null = no transform (jobs that
   * need it get Internal, as in runJobs); a non-native transform = jobs on it are DEFERRED.
   */
  define(slot: number, esp: EspTransform | null, ah: AhTransform | null): void {
    const ek = esp === null ? 0 : esp instanceof NativeEsp ? 1 : 2;
    const ak = ah === null ? 0 : ah instanceof NativeAh ? 1 : 2;
    this.a.tableSet(this.t, slot, ek, ek === 1 ? (esp as NativeEsp).ctx : null, ak, ak === 1 ? (ah as NativeAh).ctx : null);
  }

  /**
   * Run jobs [0, n) of a batch in place, exactly as runJobs would. Jobs whose slot holds a
   * non-native transform are skipped with meta[RESULT] = DEFERRED.
   * @returns how many jobs were deferred (0: the batch is complete)
   */
  run(data: Uint8Array, meta: Int32Array, n: number, srcs: readonly Uint8Array[] = []): number {
    return this.a.runBatch(this.t, data, meta, n, srcs);
  }

  /**
   * A crypto thread of the addon's own that runs batches on this table, as run() would
   * (src/pipeline/pool.ts NativeRunner): `done(id)` is called on this thread's event loop once
   * batch `id`, waited for (NativeThread.waitFor), is done.
   */
  startThread(done: (id: number) => void): NativeThread {
    const words = new Int32Array(new SharedArrayBuffer(this.a.threadWords * 4));
    return new NativeThread(this.a, this.a.threadNew(this.t, done, words), words);
  }
}

/** Rings of the words shared with a crypto thread (the C file's TW_*). */
const TW_RING = 64;
const TW_DONE = 1;
const TW_DEFERRED = TW_DONE + TW_RING;
const TW_MICROS = TW_DEFERRED + TW_RING;
const TW_WERR = TW_MICROS + TW_RING;

/**
 * A thread of the addon's own (threadNew) and the words it shares with this one: it says a job is
 * done in shared memory (read without a turn of the event loop) and calls back only for the job
 * the main thread waits for.
 */
abstract class AddonThread {
  constructor(protected readonly a: Addon, protected readonly h: Ctx, protected readonly words: Int32Array) {}

  /** Job `id` is done. */
  abstract isDone(id: number): boolean;

  /**
   * Wait for job `id`: true when it is done already; else false, and the thread's callback
   * comes once it is (keeping the event loop alive until then).
   */
  waitFor(id: number): boolean {
    Atomics.store(this.words, 0, id);
    if (this.isDone(id)) {
      Atomics.store(this.words, 0, 0);
      return true;
    }
    this.a.threadWait(this.h, id);
    return false;
  }

  /** Stop the thread (a job it is running completes; queued ones are dropped) and join it. */
  close(): void {
    this.a.threadClose(this.h);
  }
}

/**
 * See NativeSlotTable.startThread. Batch ids are positive; at most TW_RING batches may be
 * unfinished at once (a batch finished by help() may still sit in the thread's queue: it then
 * takes nothing).
 */
export class NativeThread extends AddonThread {
  /** Queue jobs [0, n) of a batch; its buffers must stay alive and untouched until it is done. */
  run(id: number, data: Uint8Array, meta: Int32Array, n: number, srcs: readonly Uint8Array[]): void {
    this.a.threadRun(this.h, id, data, meta, n, srcs);
  }

  /**
   * Take part in queued batch `id` (the arguments of its run()) instead of waiting for it: this
   * thread runs the jobs the crypto thread has not taken yet, on `table` (this thread's own, with
   * the batch's slots defined), a few at a time while the crypto thread does the same. Returns
   * how many jobs this thread ran. The batch is then done (isDone), or the crypto thread is
   * finishing the last jobs it took: waitFor waits for those as usual.
   */
  help(id: number, table: NativeSlotTable, data: Uint8Array, meta: Int32Array, n: number, srcs: readonly Uint8Array[]): number {
    return this.a.threadHelp(this.h, id, table.t, data, meta, n, srcs);
  }

  /** Batch `id` is done (its results are in its buffers). */
  isDone(id: number): boolean {
    return Atomics.load(this.words, TW_DONE + (id & (TW_RING - 1))) === id;
  }

  /** Of a batch done: its jobs deferred to JS, and its crypto time (ms). */
  deferredOf(id: number): number {
    return Atomics.load(this.words, TW_DEFERRED + (id & (TW_RING - 1)));
  }

  msOf(id: number): number {
    return Atomics.load(this.words, TW_MICROS + (id & (TW_RING - 1))) / 1000;
  }
}

/**
 * A thread of the addon's own that writes to files (src/capture/writer.ts ThreadFileSink): each
 * write is one pwrite() of a buffer at a position, done in the order queued, without a turn of
 * the event loop between one and the next. Write ids are positive and increasing (at most 2^31 - 1
 * writes); any number may be queued.
 */
export class NativeWriteThread extends AddonThread {
  /** A write thread, or null without the addon. */
  static start(done: (id: number) => void): NativeWriteThread | null {
    const a = load();
    if (a === null) return null;
    const words = new Int32Array(new SharedArrayBuffer(a.threadWords * 4));
    return new NativeWriteThread(a, a.threadNew(null, done, words), words);
  }

  /** Queue a write of all of `bytes` at `position`; the bytes must stay alive and untouched until it is done. */
  write(id: number, fd: number, bytes: Uint8Array, position: number): void {
    this.a.threadWrite(this.h, id, fd, bytes, position);
  }

  /**
   * Queue a write of the n pieces `bytes[iov[2i], iov[2i] + iov[2i+1])` (a piece whose offset is
   * -(k + 1): `aux[k, k + iov[2i+1])`), one after another, at `position` (pwritev: not gathered
   * into one buffer first). `iov` is read now; the bytes must stay alive and untouched until the
   * write is done.
   */
  writev(id: number, fd: number, bytes: Uint8Array, iov: Int32Array, n: number, position: number, aux: Uint8Array | null = null): void {
    this.a.threadWritev(this.h, id, fd, bytes, iov, n, position, aux);
  }

  /** Write `id` and every write queued before it are done (written, or failed: see firstErrno). */
  isDone(id: number): boolean {
    return Atomics.load(this.words, TW_DONE + (id & (TW_RING - 1))) >= id;
  }

  /** The errno of the first write that failed, or 0. */
  firstErrno(): number {
    return Atomics.load(this.words, TW_WERR);
  }
}

/** A native slot table, or null when the addon is not available. */
export function createNativeSlotTable(): NativeSlotTable | null {
  const a = load();
  return a ? new NativeSlotTable(a) : null;
}
