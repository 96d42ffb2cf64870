/**
 * Byte encoders for the rx OOB record: the JSON line (oobJson + '\n') and the pcapng packet
 * comment (oobComment), written straight into an output buffer. They produce exactly the
 * bytes of the string forms in oob.ts (test/perf-oob.test.ts cross-checks them); the string
 * forms stay the reference and the fallback for anything unusual.
 *
 * Hot path (style.md): no per-frame strings or objects for the common record. Fixed parts are
 * pre-encoded; the parts that repeat from frame to frame (SA name + handle, the status/flags
 * block, the timestamp's date part) are encoded once and cached; numbers go through a small
 * itoa. Only a non-null `detail` (failures, notes) is encoded per frame.
 *
 * Given the addon's rx writer (NativeEmit), the pieces are also registered with it by number,
 * and planText() gives a common record's text as plan fields (src/pipeline/rx-emit.ts).
 */
import type { CaptureInterface } from '../capture/types.js';
import type { CommentEncoder } from '../capture/pcapng.js';
import { DIGIT_PAIRS, ISO_TS_MAX, isoTsFrac, isoTsPrefix, tsToIso, writeIsoTs } from '../capture/timestamp.js';
import { NativeEmit } from '../crypto/native.js';
import { F_NO_COMMENT_SEQ, F_SEQ_HIGH_NULL, F_SEQ_NULL, P_FLAGS, P_FRAC, P_FRAME, P_REPLAY, P_SA_COMMENT, P_SA_JSON, P_SEQ, P_SEQ_HIGH, P_TAIL } from './emit-plan.js';
import { CRYPTO_STATUS_NAMES, hex32, oobComment, oobJson, type OobRecord } from './oob.js';

const latin1 = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const utf8 = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** Copy a pre-encoded piece (set() costs ~20 ns flat; a byte loop wins only below ~10 bytes). */
function put(dst: Uint8Array, o: number, src: Uint8Array): number {
  const n = src.length;
  if (n > 10) dst.set(src, o);
  else for (let i = 0; i < n; i++) dst[o + i] = src[i]!;
  return o + n;
}

const NULL = latin1('null');

/** Decimal digits of an integer 10..2^32-1 (comparisons, no division). */
function digits(n: number): number {
  if (n < 100000) return n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : 5;
  return n < 10000000 ? (n < 1000000 ? 6 : 7) : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10;
}

/**
 * A number as JS prints it (`${n}`), at o; returns the end. Integers 0..2^32-1 two digits at a
 * time (~25 ns, half the one-digit loop), anything else (null, negative, fractional, huge)
 * through String().
 */
export function putNum(dst: Buffer, o: number, n: number | null): number {
  if (n === null) return put(dst, o, NULL);
  if ((n >>> 0) !== n) return o + dst.write(String(n), o, 'latin1');
  if (n < 10) {
    dst[o] = 48 + n;
    return o + 1;
  }
  const len = digits(n);
  let p = o + len;
  let v = n;
  while (v >= 100) {
    const q = (v / 100) >>> 0;
    const r = (v - q * 100) << 1;
    dst[--p] = DIGIT_PAIRS[r + 1]!;
    dst[--p] = DIGIT_PAIRS[r]!;
    v = q;
  }
  if (v >= 10) {
    dst[--p] = DIGIT_PAIRS[(v << 1) + 1]!;
    dst[--p] = DIGIT_PAIRS[v << 1]!;
  } else dst[--p] = 48 + v;
  return o + len;
}

const REPLAY_NAMES: readonly (string | null)[] = [null, 'ok', 'duplicate', 'too-old', 'off'];
function replayIndex(r: OobRecord['replay']): number {
  switch (r) {
    case null: return 0;
    case 'ok': return 1;
    case 'duplicate': return 2;
    case 'too-old': return 3;
    case 'off': return 4;
    default: return -1;
  }
}

/** Record fields a cached block covers; -1 = outside the cached cases (string fallback). */
function flagsCode(r: OobRecord): number {
  const cd = r.cryptoDone;
  const nc = r.nextCryptoDone;
  const sd = r.saDeleteReq;
  const cs = r.cryptoStatus;
  if ((cd & 1) !== cd || (nc & 1) !== nc || (sd & 1) !== sd || (cs & 7) !== cs || cs >= CRYPTO_STATUS_NAMES.length) return -1;
  return cd | (nc << 1) | (sd << 2) | (cs << 3);
}

/**
 * One SA's pieces: `","path":"rx","handle":…,"sa":…,"spi":"0x…","seq":` (JSON) and, by flags code,
 * `ipsecov2 rx: STATUS … sa=… handle=… spi=0x… seq=` (comment), for the SPI last seen with it (an
 * SA has one SPI, so one frame's pieces are a few set() calls). `spi` null: the SPI-less forms.
 */
class SaPiece {
  private spiKey = -2;
  private jsonBlock: Uint8Array = NULL;
  private readonly commentBlock: (Uint8Array | undefined)[] = [];
  /** Native piece numbers of the JSON block and of the comment blocks by flags (-1: none). */
  jsonPiece = -1;
  private readonly commentPieces: number[] = [];

  constructor(
    readonly sa: string | null,
    readonly handle: number | null,
    private readonly pieces: Pieces | null,
  ) {}

  private key(spi: number | null): void {
    const k = spi === null ? -1 : spi;
    if (k === this.spiKey) return;
    this.spiKey = k;
    const sa = this.sa;
    this.jsonBlock = utf8(`","path":"rx","handle":${this.handle},"sa":${sa === null ? 'null' : JSON.stringify(sa)},"spi":${spi === null ? 'null' : `"${hex32(spi)}"`},"seq":`);
    this.commentBlock.length = 0;
    // another SPI (rekey): the new blocks take the same piece numbers
    if (this.pieces !== null) this.jsonPiece = this.pieces.set(this.jsonPiece, this.jsonBlock);
  }

  json(spi: number | null): Uint8Array {
    this.key(spi);
    return this.jsonBlock;
  }

  /** The comment up to the sequence number (or the replay part when there is no SPI). */
  comment(spi: number | null, flags: number): Uint8Array {
    this.key(spi);
    let b = this.commentBlock[flags];
    if (b === undefined) {
      const sa = this.sa;
      b = utf8(
        `ipsecov2 rx: ${CRYPTO_STATUS_NAMES[flags >> 3]} cryptoDone=${flags & 1} nextCryptoDone=${(flags >> 1) & 1} saDeleteReq=${(flags >> 2) & 1}` +
          (sa === null ? '' : ` sa=${sa} handle=${this.handle}`) +
          (spi === null ? '' : ` spi=${hex32(spi)} seq=`),
      );
      this.commentBlock[flags] = b;
      if (this.pieces !== null) this.commentPieces[flags] = this.pieces.set(this.commentPieces[flags] ?? -1, b);
    }
    return b;
  }

  /** Native piece number of comment(spi, flags), after that call; -1 when it has none. */
  commentPiece(flags: number): number {
    return this.commentPieces[flags] ?? -1;
  }
}

/**
 * Piece numbers of a NativeEmit, handed out as the encoder makes its blocks. Past the addon's
 * limit a block gets none (-1) and its records take the JS writers.
 */
class Pieces {
  private next = 0;
  constructor(readonly ne: NativeEmit) {}
  /** Register `b` under `index`, or under a new number when index is -1; returns the number. */
  set(index: number, b: Uint8Array): number {
    if (index < 0) {
      if (this.next >= NativeEmit.MAX_PIECES) return -1;
      index = this.next++;
    }
    this.ne.piece(index, b);
    return index;
  }
  /** Hand out numbers from 0 again (the encoder dropped its blocks). */
  reset(): void {
    this.next = 0;
  }
}

/** A record's number for a plan: an integer 0..2^32-1, -1 for null, NaN for anything else. */
function planNum(n: number | null): number {
  if (n === null) return -1;
  return (n >>> 0) === n ? n : Number.NaN;
}

const J_FRAME = latin1('{"frame":');
const J_TS = latin1(',"ts":"');
const J_SEQH = latin1(',"seqHigh":');

/** Most SA pieces kept (one per SA name; a capture rarely has more). */
const SA_CACHE_MAX = 4096;

/**
 * Encodes rx OOB records. One instance per output; `load(r, iface, tsHi, tsLo)` then any of
 * `lineBound`/`writeLine` and (as a CommentEncoder) `bound`/`write`.
 */
export class RxOobEncoder implements CommentEncoder {
  private r: OobRecord | null = null;
  private iface: CaptureInterface | null = null;
  private tsHi = 0;
  private tsLo = 0;
  /** flagsCode | replayIndex << 6 of the loaded record, or -1 (string fallback). */
  private code = -1;
  /** The loaded record's pre-encoded pieces (code >= 0): SA block (JSON, comment) and JSON tail. */
  private saJson: Uint8Array = NULL;
  private saComment: Uint8Array = NULL;
  private jsonTailOf: Uint8Array = NULL;
  private detailJson: string | null = null;
  private readonly saCache = new Map<string | null, SaPiece>();
  /** The SA piece of the previous record. */
  private lastPiece: SaPiece | null = null;
  /** The addon's rx writer's pieces (null: JS writers only). */
  private readonly pieces: Pieces | null;
  /** The loaded record's SA piece (code >= 0). */
  private piece: SaPiece | null = null;
  /** Piece numbers of the JSON tails without detail by code, and of commentReplay. */
  private readonly tailPieces: number[] = [];
  private replayPieces: number[] = [];
  /** `,"cryptoDone":…,"detail":` by code, and the same followed by `null}\n`. */
  private readonly jsonTail: (Uint8Array | undefined)[] = [];
  private readonly jsonTailNull: (Uint8Array | undefined)[] = [];
  /** ` replay=…` by replay index. */
  private readonly commentReplay: Uint8Array[] = REPLAY_NAMES.map((n) => latin1(n === null ? '' : ` replay=${n}`));

  /** @param native the addon's rx writer, to register the pieces with (planText) */
  constructor(native: NativeEmit | null = null) {
    this.pieces = native === null ? null : new Pieces(native);
    this.registerReplay();
  }

  private registerReplay(): void {
    const p = this.pieces;
    this.replayPieces = p === null ? [] : this.commentReplay.map((b) => p.set(-1, b));
  }

  /** Take a record (rx path) and its frame's time (interface units, as read). */
  load(r: OobRecord, iface: CaptureInterface, tsHi: number, tsLo: number): void {
    this.r = r;
    this.iface = iface;
    this.tsHi = tsHi;
    this.tsLo = tsLo;
    const f = r.path === 'rx' ? flagsCode(r) : -1;
    const ri = replayIndex(r.replay);
    this.code = f < 0 || ri < 0 ? -1 : f | (ri << 6);
    this.detailJson = r.detail === null ? null : JSON.stringify(r.detail);
    this.piece = null;
    if (this.code >= 0) {
      const p = this.saPiece(r.sa, r.handle);
      this.piece = p;
      this.saJson = p.json(r.spi);
      this.saComment = p.comment(r.spi, this.code & 63);
      this.jsonTailOf = this.tail(this.code, this.detailJson === null);
    }
  }

  /**
   * The loaded record's OOB text as plan fields at plan[b..] (emit-plan.ts: P_FRAME … P_REPLAY
   * but the date part of the time, which is returned: isoTsPrefix() for its second), or null when
   * the record needs the JS writers (a detail text, numbers out of range, no pieces).
   */
  planText(plan: Int32Array, b: number): Uint8Array | null {
    const p = this.piece;
    if (p === null || this.pieces === null || this.detailJson !== null) return null;
    const r = this.r!;
    const code = this.code;
    const sa = p.jsonPiece;
    const comment = p.commentPiece(code & 63);
    const tail = this.tailPieces[code] ?? -1;
    const seq = planNum(r.seq);
    const seqHigh = planNum(r.seqHigh);
    // NaN fails every comparison
    if (sa < 0 || comment < 0 || tail < 0 || !(seq >= -1) || !(seqHigh >= -1) || (r.frame >>> 0) !== r.frame) return null;
    plan[b + P_FRAME] = r.frame;
    plan[b + P_FRAC] = isoTsFrac(this.iface!, this.tsHi, this.tsLo);
    plan[b + P_SA_JSON] = sa;
    plan[b + P_SEQ] = seq < 0 ? 0 : seq;
    plan[b + P_FLAGS] = (seq < 0 ? F_SEQ_NULL : 0) | (seqHigh < 0 ? F_SEQ_HIGH_NULL : 0) | (r.spi === null ? F_NO_COMMENT_SEQ : 0);
    plan[b + P_SEQ_HIGH] = seqHigh < 0 ? 0 : seqHigh;
    plan[b + P_TAIL] = tail;
    plan[b + P_SA_COMMENT] = comment;
    plan[b + P_REPLAY] = this.replayPieces[code >> 6] ?? -1;
    return isoTsPrefix();
  }

  private saPiece(sa: string | null, handle: number | null): SaPiece {
    // frames mostly repeat the SA of the frame before: no Map lookup then
    const last = this.lastPiece;
    if (last !== null && last.sa === sa && last.handle === handle) return last;
    const p = this.saCache.get(sa);
    if (p !== undefined && p.handle === handle) return (this.lastPiece = p);
    if (this.saCache.size >= SA_CACHE_MAX) {
      this.saCache.clear();
      if (this.pieces !== null) {
        // the pieces go with the blocks: number them again
        this.pieces.reset();
        this.tailPieces.length = 0;
        this.jsonTailNull.length = 0;
        this.registerReplay();
      }
    }
    const np = new SaPiece(sa, handle, this.pieces);
    this.lastPiece = np;
    this.saCache.set(sa, np);
    return np;
  }

  // ---- JSON line ----

  /** Upper bound of the loaded record's JSON line in bytes (newline included). */
  lineBound(): number {
    if (this.code < 0) return this.fallbackLine().length * 3;
    // the three numbers (String() of any number is at most 24 bytes), J_FRAME, J_TS, J_SEQH: 99
    const dj = this.detailJson;
    return 128 + ISO_TS_MAX + this.saJson.length + this.jsonTailOf.length + (dj === null ? 0 : dj.length * 3 + 2);
  }

  /** Write the loaded record's JSON line and '\n' at o (room: lineBound()); returns the end. */
  writeLine(dst: Buffer, o: number): number {
    const r = this.r!;
    if (this.code < 0) return o + dst.write(this.fallbackLine(), o, 'utf8');
    o = put(dst, o, J_FRAME);
    o = putNum(dst, o, r.frame);
    o = put(dst, o, J_TS);
    o = writeIsoTs(this.iface!, this.tsHi, this.tsLo, dst, o);
    o = put(dst, o, this.saJson);
    o = putNum(dst, o, r.seq);
    o = put(dst, o, J_SEQH);
    o = putNum(dst, o, r.seqHigh);
    o = put(dst, o, this.jsonTailOf);
    if (this.detailJson === null) return o;
    o += dst.write(this.detailJson, o, 'utf8');
    dst[o++] = 125; // '}'
    dst[o++] = 10; // '\n'
    return o;
  }

  /** The string form, with the frame's time (the record's `ts` may be left empty by the pipeline). */
  private fallbackLine(): string {
    const r = this.r!;
    const ts = r.ts;
    r.ts = tsToIso(this.iface!, this.tsHi, this.tsLo);
    const s = oobJson(r) + '\n';
    r.ts = ts;
    return s;
  }

  private tail(code: number, detailNull: boolean): Uint8Array {
    const cache = detailNull ? this.jsonTailNull : this.jsonTail;
    let t = cache[code];
    if (t === undefined) {
      const cs = (code >> 3) & 7;
      const rep = REPLAY_NAMES[code >> 6];
      t = latin1(
        `,"cryptoDone":${code & 1},"nextCryptoDone":${(code >> 1) & 1},"saDeleteReq":${(code >> 2) & 1},` +
          `"cryptoStatus":"${CRYPTO_STATUS_NAMES[cs]}","cryptoStatusCode":${cs},` +
          `"replay":${rep === null ? 'null' : `"${rep}"`},"detail":` +
          (detailNull ? 'null}\n' : ''),
      );
      cache[code] = t;
      if (detailNull && this.pieces !== null) this.tailPieces[code] = this.pieces.set(-1, t);
    }
    return t;
  }

  // ---- pcapng comment (CommentEncoder) ----

  /** Upper bound of the loaded record's comment in UTF-8 bytes. */
  bound(): number {
    if (this.code < 0) return oobComment(this.r!).length * 3;
    return 64 + this.saComment.length + (this.r!.detail === null ? 0 : this.r!.detail.length * 3 + 3);
  }

  /** Write the loaded record's comment at o (room: bound()); returns the end. */
  write(dst: Buffer, o: number): number {
    const r = this.r!;
    if (this.code < 0) return o + dst.write(oobComment(r), o, 'utf8');
    o = put(dst, o, this.saComment);
    if (r.spi !== null) o = putNum(dst, o, r.seq);
    o = put(dst, o, this.commentReplay[this.code >> 6]!);
    if (r.detail !== null) {
      dst[o++] = 32; // ' '
      dst[o++] = 40; // '('
      o += dst.write(r.detail, o, 'utf8');
      dst[o++] = 41; // ')'
    }
    return o;
  }
}
