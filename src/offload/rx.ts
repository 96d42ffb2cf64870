/**
 * The receive path: what an IPsecOV2 NIC does with each inbound frame (spec/ipsecov2.md §5–7),
 * followed by the host model (anti-replay, decapsulation) that NDIS leaves to the stack.
 *
 * Structured as prepare → crypto → process (style.md, DPDK lib/ipsec):
 *  - prepare (main thread, input order): decode, SA lookup, capability and syntax checks, ESN
 *    inference, and one crypto job per frame copied into a JobBatch;
 *  - crypto (jobs.ts runJobs, inline or in a worker): verify ICVs, decrypt in place;
 *  - process (main thread, input order): trailer checks, anti-replay verdict and window update
 *    (only after the ICV verified, RFC 4303 §3.4.3), lifetimes, OOB record, output bytes.
 * The frame's own bytes are never touched by crypto, so a failed frame is written unchanged.
 */
import type { CaptureFrame } from '../capture/types.js';
import type { NicProfile } from '../sa/model.js';
import { decodeL2, L2Info, setL2Family } from '../packet/l2.js';
import { decodeIp, IpError, IpInfo, PROTO_AH, PROTO_ESP, PROTO_IPV4, PROTO_IPV6, PROTO_NONE, setIpLength } from '../packet/ip.js';
import { IpsecInfo, IpsecKind, locateIpsec, readU32 } from '../packet/ipsec.js';
import { zeroMutableIpv4, zeroMutableIpv6 } from '../packet/mutable.js';
import { OpenResult } from '../crypto/types.js';
import { CryptoStatus, hex32, OobRecord, type CryptoStatusCode } from './oob.js';
import { J, JOB_FIELDS, JobBatch, NOT_RUN, Op, resultAh, resultEsp, runJobs, SlotTable, WORKER_FAULT, type SlotDef } from './jobs.js';
import { BundleState, Sad } from './sad.js';
import type { ReplayVerdict } from './replay.js';

export interface RxOptions {
  /** Keep IPsec headers and trailers; decrypt the payload in place (the NIC's indication form). */
  inPlace: boolean;
  /** Also use SAs marked outbound. */
  anyDirection: boolean;
  /** ESN high bits: inferred (RFC 4303 App. A) or only as pushed by the SA file / update events. */
  esn: 'infer' | 'pushed';
  /** Override every SA's replay window (what-if). */
  replayWindow: number | null;
  /** Extra UDP ports that carry ESP besides 4500. */
  natPorts: ReadonlySet<number> | null;
}

/** RxCtx.outKind: no deferred output; transport (IP header + payload); tunnel (inner datagram). */
const OUT_NONE = 0;
const OUT_TRANSPORT = 1;
const OUT_TUNNEL = 2;

/**
 * The last source of a long copy and its ArrayBuffer: `.buffer` is a C++ getter that TurboFan does
 * not inline (a view from a kept ArrayBuffer measured ~55 ns less per 1400 B copy than one from
 * `src.buffer`). Consecutive copies out of one batch's job data hit this.
 */
let viewSrc: Uint8Array | null = null;
let viewAb: ArrayBufferLike = new ArrayBuffer(0);
let viewBase = 0;

/**
 * Copy src[a, b) to dst at o. A view + set() costs ~60 ns flat (Node 20), an unrolled byte loop
 * ~1.1 ns a byte: the loop for headers up to 48 bytes.
 */
function copyBytes(src: Uint8Array, a: number, b: number, dst: Uint8Array, o: number): void {
  const n = b - a;
  if (n <= 48) {
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      dst[o + i] = src[a + i]!;
      dst[o + i + 1] = src[a + i + 1]!;
      dst[o + i + 2] = src[a + i + 2]!;
      dst[o + i + 3] = src[a + i + 3]!;
    }
    for (; i < n; i++) dst[o + i] = src[a + i]!;
  }
  // a plain Uint8Array view: Buffer#subarray goes through the species constructor (2x slower)
  else {
    if (src !== viewSrc) {
      viewSrc = src;
      viewAb = src.buffer;
      viewBase = src.byteOffset;
    }
    dst.set(new Uint8Array(viewAb, viewBase + a, n), o);
  }
}

/**
 * A job's data: the frame's bytes [regionStart, regionStart + len) at `off`; with AH, the mutable
 * IP fields and the ICV field zeroed (RFC 4302 §3.3.3.1) and the expected [IV][ICV] at `aux`.
 */
function fillRegion(c: RxCtx, d: Uint8Array, ip: IpInfo, regionStart: number, len: number, ahOff: number, ahLen: number, auxLen: number, data: Uint8Array, off: number, aux: number): void {
  copyBytes(d, regionStart, regionStart + len, data, off);
  if (c.hasAh) {
    const rel = ahOff - regionStart;
    if (ip.version === 4) zeroMutableIpv4(data, off);
    else zeroMutableIpv6(data, off, off + rel);
    const icvField = off + rel + 12;
    data.set(data.subarray(icvField, icvField + auxLen), aux);
    data.fill(0, icvField, off + rel + ahLen);
  }
}

/** Sequence numbers this close to 2^32 on a non-ESN SA raise SaDeleteReq ("about to run out"). */
const SEQ_EXHAUST_MARGIN = 0x100;

/**
 * Room (RxEngine.emitRoom) before a job's region, for the EPB header (28 bytes) and the output's
 * L2 and IP headers where the region had its ESP header and IV (an IPv4 transport frame needs 46
 * bytes with AES-GCM, IPv6 with extension headers more), and after it, for the EPB's comment
 * option and trailer where the region had the ESP trailer (the comment is ~120 bytes with short
 * SA names). A frame that does not fit is written by copying, as without the room.
 */
export const EMIT_ROOM_BEFORE = 96;
export const EMIT_ROOM_AFTER = 256;
/**
 * Jobs shorter than this get no room: their frames are copied. Small frames written from the job
 * data were slower (64 B payloads, 1.6M frames: 1.92 s against 1.29 s copied): a piece per frame
 * of ~250 bytes costs the kernel more than the copy saves, and the room spreads the jobs over
 * four times the memory.
 */
export const EMIT_ROOM_MIN_LEN = 512;

/** Per-frame state between prepare and process. Reused across batches. */
export class RxCtx {
  frame!: CaptureFrame;
  readonly oob = new OobRecord();
  readonly l2 = new L2Info();
  readonly ip = new IpInfo();
  readonly ips = new IpsecInfo();
  /** Inner (transport-over-tunnel) decode state. */
  readonly ip2 = new IpInfo();
  readonly ips2 = new IpsecInfo();
  state: BundleState | null = null;
  job = -1;
  /** Frame offset that the job region's first byte corresponds to. */
  regionFrameOff = 0;
  /**
   * The job data the frame's output may be built in, around its payload (RxEngine.emitRoom):
   * its job region with the room before and after it. roomHi 0: none.
   */
  roomLo = 0;
  roomHi = 0;
  espSeqH = -1;
  ahSeqH = -1;
  espSeq = 0;
  ahSeq = 0;
  hasAh = false;
  hasEsp = false;
  /** Output bytes (the frame's own data when unchanged); null while the output is deferred. */
  out: Uint8Array | null = null;
  /**
   * Deferred output (RxEngine.deferOutput): OUT_NONE, or how writeOutput builds the frame's
   * `outLen` bytes straight into the caller's buffer (no Buffer per frame).
   */
  outKind = OUT_NONE;
  outLen = 0;
  /** Where the payload (transport) or inner datagram (tunnel) is: outData[outA, outB). */
  outData: Uint8Array | null = null;
  outA = 0;
  outB = 0;
  /** Transport: end of the kept IP header (start of the UDP/IPsec headers) in the frame. */
  outHdrEnd = 0;
  /** Transport: next-header value for the IP header's protocol field. */
  outNh = 0;
  /** Tunnel: the L2 header with its family field rewritten (reused across frames). */
  l2Hdr: Uint8Array = new Uint8Array(64);
  /** Output needs a raw-IP interface (LINKTYPE_IPV4/IPV6 input whose family changed). */
  outRaw = false;
  /** Frame failed a check (for --drop-failed). */
  failed = false;

  /**
   * The output is deferred and its payload is `outData[outA, outB)` of the job data (not the
   * frame's own bytes): writeOutputHead + that payload make the output.
   */
  payloadInJobs(): boolean {
    return this.outKind !== OUT_NONE && this.outData !== this.frame.data;
  }
}

/** A batch of frames moving through prepare → crypto → process. */
export class RxBatch {
  frames: CaptureFrame[] = [];
  readonly ctx: RxCtx[] = [];
  readonly jobs = new JobBatch();
  /** Frames prepared so far (a batch may end early when the job buffer is full). */
  n = 0;

  ctxAt(i: number): RxCtx {
    let c = this.ctx[i];
    if (!c) { c = new RxCtx(); this.ctx[i] = c; }
    return c;
  }
}

/** Hook the pipeline gives the engine to apply SA events and turn timestamps into text. */
export interface RxEnv {
  /** Apply SA-file events due at this frame; return true when the bundle set changed. */
  applyEvents(frame: CaptureFrame): boolean;
  /** The current bundles (after events). */
  states(): Iterable<BundleState>;
  tsIso(frame: CaptureFrame): string;
}

export class RxEngine {
  readonly sad = new Sad();
  /** Transforms for crypto done on the main thread (inline mode, nested transport-over-tunnel). */
  readonly localSlots = new SlotTable();
  private readonly scratch = new JobBatch(1 << 17, 1);
  private readonly nic: NicProfile;
  private readonly opts: RxOptions;
  private readonly env: RxEnv;

  constructor(nic: NicProfile, opts: RxOptions, env: RxEnv) {
    this.nic = nic;
    this.opts = opts;
    this.env = env;
    this.sad.rebuild(env.states(), opts.anyDirection);
  }

  /**
   * Prepare frames[start..] into `batch` until the frames or the job buffer run out.
   * Returns how many frames were taken.
   */
  prepare(frames: CaptureFrame[], start: number, batch: RxBatch): number {
    batch.frames = frames;
    batch.jobs.reset();
    let i = start;
    let k = 0;
    for (; i < frames.length; i++, k++) {
      const f = frames[i]!;
      if (this.env.applyEvents(f)) this.sad.rebuild(this.env.states(), this.opts.anyDirection);
      const c = batch.ctxAt(k);
      if (!this.prepareOne(f, c, batch.jobs)) break; // job buffer full: this frame goes to the next batch
    }
    batch.n = k;
    return i - start;
  }

  /** Returns false (with nothing changed) only when the frame needs a job and the batch is full. */
  private prepareOne(f: CaptureFrame, c: RxCtx, jobs: JobBatch): boolean {
    const o = c.oob;
    o.reset(f.index, this.env.tsIso(f), 'rx');
    c.frame = f;
    c.state = null;
    c.job = -1;
    c.roomHi = 0;
    c.out = null;
    c.outKind = OUT_NONE;
    c.outData = null;
    c.outRaw = false;
    c.failed = false;
    c.hasAh = false;
    c.hasEsp = false;
    c.espSeqH = -1;
    c.ahSeqH = -1;
    const d = f.data;
    const l2 = decodeL2(this.linkTypeOf(f), d, c.l2);
    if (l2.l3Off < 0) return true;
    const ip = decodeIp(d, l2.l3Off, d.length, c.ip);
    if (ip.error === IpError.Bad && ip.version === 0) return true;
    if (ip.version !== 4 && ip.version !== 6) return true;
    if (ip.error === IpError.Bad || (ip.error === IpError.Truncated && ip.payloadOff === 0)) {
      // Cannot even find the upper protocol: not recognisably IPsec.
      return true;
    }
    const ips = locateIpsec(d, ip, this.opts.natPorts, c.ips);
    if (ips.kind === IpsecKind.None) return true;
    if (ips.kind === IpsecKind.Ike) { o.detail = 'IKE on UDP 4500 (non-ESP marker)'; return true; }
    if (ips.kind === IpsecKind.Keepalive) { o.detail = 'NAT-keepalive'; return true; }
    const isAh = ips.kind === IpsecKind.Ah;
    if (!ips.hasSpi) { o.detail = `truncated ${isAh ? 'AH' : 'ESP'} header`; return true; }
    o.spi = ips.spi;
    o.seq = ips.truncated && !isAh ? null : ips.seq;
    const st = this.sad.lookup(isAh, ips.spi, d, ip.dstOff, ip.srcOff, ip.addrLen);
    if (!st) {
      const other = this.sad.other(isAh, ips.spi);
      if (other && other.bundle.offloaded) {
        // RFC: the SPI is the other protocol's: protocol mismatch with the SA (status 7).
        this.fail(c, other, CryptoStatus.CRYPTO_INVALID_PROTOCOL, `SPI ${hex32(ips.spi)} belongs to the ${isAh ? 'ESP' : 'AH'} SA of ${other.bundle.name}, packet carries ${isAh ? 'AH' : 'ESP'}`);
        return true;
      }
      o.detail = `no inbound SA for ${isAh ? 'AH' : 'ESP'} SPI ${hex32(ips.spi)}`;
      return true;
    }
    const b = st.bundle;
    o.sa = b.name;
    if (!b.offloaded) { o.detail = `SA not offloaded: ${b.notOffloadedReason ?? 'not offloaded'}`; return true; }
    this.ensureLocal(st);
    // Capabilities: outside what the NIC advertises → indicated unprocessed (spec §5.4 step 3).
    const why = this.unsupported(c, st);
    if (why !== null) { o.detail = why; return true; }
    o.handle = b.handle;
    c.state = st;
    o.saDeleteReq = st.deleteReq ? 1 : 0;
    // Bundle structure (status 7) and syntax (status 6).
    let espOff = -1;
    if (isAh) {
      c.hasAh = true;
      if (ips.truncated) return this.syntax(c, st, 'truncated AH header');
      const ah = b.ah!;
      const need = 12 + ah.icvLength + this.ahIvLen(st);
      if (ips.ahLen < need) return this.syntax(c, st, `AH payload length ${ips.ahLen / 4 - 2} too short for a ${ah.icvLength}-byte ICV`);
      if (ips.ahLen % (ip.version === 4 ? 4 : 8) !== 0) return this.syntax(c, st, `AH length ${ips.ahLen} not a multiple of ${ip.version === 4 ? 4 : 8} (RFC 4302 §2.6)`);
      if (b.esp) {
        if (ips.ahNext !== PROTO_ESP) return this.protocol(c, st, `bundle ${b.name} is AH+ESP but the packet has only AH (next header ${ips.ahNext})`);
        espOff = ips.off + ips.ahLen;
        if (espOff + 8 > ip.end) return this.syntax(c, st, 'truncated ESP header after AH');
        const spi = readU32(d, espOff);
        if (spi !== b.esp.spi) return this.protocol(c, st, `ESP SPI ${hex32(spi)} after AH does not match the bundle's ${hex32(b.esp.spi)}`);
        c.hasEsp = true;
        c.espSeq = readU32(d, espOff + 4);
      }
      c.ahSeq = ips.seq;
    } else {
      if (b.ah) return this.protocol(c, st, `bundle ${b.name} is AH+ESP but the packet has no AH`);
      c.hasEsp = true;
      if (ips.truncated) return this.syntax(c, st, 'truncated ESP header');
      espOff = ips.off;
      c.espSeq = ips.seq;
    }
    if (ip.error === IpError.Truncated) return this.syntax(c, st, `frame cut short by the capture: ${ip.detail}`);
    // ESN high bits: inferred (default) or pushed (the NDIS way).
    if (b.esn) {
      if (c.hasEsp) c.espSeqH = this.opts.esn === 'pushed' ? st.pushedHigh : st.espReplay!.inferHigh(c.espSeq);
      if (c.hasAh) c.ahSeqH = this.opts.esn === 'pushed' ? st.pushedHigh : st.ahReplay!.inferHigh(c.ahSeq);
    }
    o.seqHigh = c.hasAh ? Math.max(c.ahSeqH, 0) : Math.max(c.espSeqH, 0);
    return this.buildJob(c, st, d, ip, ips.off, ips.ahLen, espOff, jobs, true);
  }

  /**
   * Put the bytes crypto needs into the job batch: copied, or (`fromInput`: `d` is a frame in the
   * reader's shared input chunk; ESP only, whose region needs no change) named as the job's
   * source, for the crypto step to copy. false = batch full.
   */
  private buildJob(c: RxCtx, st: BundleState, d: Uint8Array, ip: IpInfo, ahOff: number, ahLen: number, espOff: number, jobs: JobBatch, fromInput: boolean): boolean {
    const regionStart = c.hasAh ? ip.off : espOff;
    const len = ip.end - regionStart;
    const ahIv = c.hasAh ? this.ahIvLen(st) : 0;
    const auxLen = c.hasAh ? st.bundle.ah!.icvLength + ahIv : 0;
    const room = this.emitRoom && len >= EMIT_ROOM_MIN_LEN;
    const before = room ? EMIT_ROOM_BEFORE : 0;
    const after = room ? EMIT_ROOM_AFTER : 0;
    if (jobs.count === 0) jobs.ensure(before + len + after + auxLen + 16);
    const at = jobs.alloc(before + len + after);
    if (at < 0) return false;
    const off = at + before;
    const aux = auxLen ? jobs.alloc(auxLen) : 0;
    if (aux < 0) { jobs.used = at; return false; }
    if (room) {
      c.roomLo = at;
      c.roomHi = off + len + after;
    }
    const src = fromInput && !c.hasAh ? jobs.srcIndex(d.buffer) : -1;
    if (src < 0) fillRegion(c, d, ip, regionStart, len, ahOff, ahLen, auxLen, jobs.data, off, aux);
    const j = jobs.addJob();
    const m = jobs.meta;
    const b = j * JOB_FIELDS;
    if (src >= 0) {
      m[b + J.SRC] = src + 1;
      m[b + J.SRC_OFF] = d.byteOffset + regionStart;
    }
    m[b + J.ESP_SLOT] = st.slot;
    m[b + J.AH_SLOT] = st.slot;
    m[b + J.OFF] = off;
    m[b + J.LEN] = len;
    m[b + J.SEQH_ESP] = c.espSeqH;
    m[b + J.SEQH_AH] = c.ahSeqH;
    let op = 0;
    if (c.hasAh) {
      op |= Op.AH_VERIFY;
      m[b + J.AH] = ahOff - regionStart;
      m[b + J.AUX] = aux;
    }
    if (c.hasEsp) {
      op |= Op.ESP_OPEN;
      m[b + J.ESP] = espOff - regionStart;
    }
    // Int32 fields: an ESN high half of 0xFFFFFFFF would read as -1 ("no ESN") without the flag.
    if (st.bundle.esn) op |= Op.ESN;
    m[b + J.OP] = op;
    c.job = j;
    c.regionFrameOff = regionStart;
    return true;
  }

  /**
   * Write the job data of `batch` again into `data` (a buffer as large as the one sent), from the
   * frames and the prepare-time state, for a retry after a crypto worker died with the batch
   * (pool.ts): rx job bytes are a function of the frames, so no backup copy is needed. `meta` is
   * the batch's job table as built by prepare.
   */
  rebuildJobs(batch: RxBatch, data: Uint8Array, meta: Int32Array): void {
    for (let k = 0; k < batch.n; k++) {
      const c = batch.ctx[k]!;
      if (c.job < 0) continue;
      const b = c.job * JOB_FIELDS;
      const st = c.state!;
      const ip = c.ip;
      const regionStart = c.regionFrameOff;
      const auxLen = c.hasAh ? st.bundle.ah!.icvLength + this.ahIvLen(st) : 0;
      fillRegion(c, c.frame.data, ip, regionStart, ip.end - regionStart, c.ips.off, c.ips.ahLen, auxLen, data, meta[b + J.OFF]!, c.hasAh ? meta[b + J.AUX]! : 0);
    }
  }

  /** Create the SA's transforms on this thread (once) and remember its definition for workers. */
  private ensureLocal(st: BundleState): void {
    // per frame: an array read, not a Map lookup
    if (this.localReady[st.slot] === true) return;
    if (!this.slotDefs.has(st.slot)) {
      const def = st.slotDef();
      this.slotDefs.set(st.slot, def);
      this.localSlots.define(def);
    }
    this.localReady[st.slot] = true;
  }
  private readonly localReady: boolean[] = [];
  /** Every slot defined so far, for the worker pool (a worker gets a slot before its first job). */
  readonly slotDefs = new Map<number, SlotDef>();

  /** Run a batch's jobs on this thread. */
  runInline(batch: RxBatch): void {
    runJobs(this.localSlots, batch.jobs.data, batch.jobs.meta, batch.jobs.count, batch.jobs.srcViews);
  }

  /** Finish every prepared frame of the batch, in order; calls emit(ctx) for each. */
  process(batch: RxBatch, emit: (c: RxCtx) => void): void {
    for (let k = 0; k < batch.n; k++) {
      const c = batch.ctx[k]!;
      if (c.job >= 0) this.processOne(c, batch.jobs);
      if (c.out === null && c.outKind === OUT_NONE) c.out = c.frame.data;
      emit(c);
    }
  }

  private processOne(c: RxCtx, jobs: JobBatch): void {
    const st = c.state!;
    const b = st.bundle;
    const o = c.oob;
    const m = jobs.meta;
    const base = c.job * JOB_FIELDS;
    const res = m[base + J.RESULT]!;
    const ahR = resultAh(res);
    const espR = resultEsp(res);
    const off = m[base + J.OFF]!;
    const end = off + m[base + J.LEN]!;
    const data = jobs.data;
    o.cryptoDone = 1;
    if (res === WORKER_FAULT) {
      this.setFail(c, CryptoStatus.CRYPTO_GENERIC_ERROR, 'crypto worker failed twice on this batch; frame not checked');
      return;
    }
    const tunnelHint = b.mode === 'tunnel';
    if (c.hasAh && ahR !== 0) {
      const ahNext = c.ips.ahNext;
      const tunnel = ahNext === PROTO_IPV4 || ahNext === PROTO_IPV6 || tunnelHint;
      if (ahR === 1) this.setFail(c, tunnel ? CryptoStatus.CRYPTO_TUNNEL_AH_AUTH_FAILED : CryptoStatus.CRYPTO_TRANSPORT_AH_AUTH_FAILED, 'AH ICV mismatch');
      else this.setFail(c, CryptoStatus.CRYPTO_GENERIC_ERROR, `AH crypto error${this.slotReason(st)}`);
      this.finishReplay(c, st, false);
      return;
    }
    let innerStart = -1;
    let innerEnd = -1;
    let nh = c.ips.ahNext;
    let ptStart = -1;
    let payloadEnd = -1;
    if (c.hasEsp) {
      if (espR !== OpenResult.Ok) {
        if (espR === OpenResult.AuthFailed) this.setFail(c, tunnelHint ? CryptoStatus.CRYPTO_TUNNEL_ESP_AUTH_FAILED : CryptoStatus.CRYPTO_TRANSPORT_ESP_AUTH_FAILED, 'ICV mismatch');
        else if (espR === OpenResult.BadLength) this.setFail(c, CryptoStatus.CRYPTO_INVALID_PACKET_SYNTAX, this.espLengthDetail(st, end - (off + m[base + J.ESP]!)));
        else this.setFail(c, CryptoStatus.CRYPTO_GENERIC_ERROR, `ESP crypto error${this.slotReason(st)}`);
        this.finishReplay(c, st, false);
        return;
      }
      const t = this.localSlotsEsp(st);
      const espStart = off + m[base + J.ESP]!;
      ptStart = espStart + 8 + t.ivLen;
      const ptEnd = end - t.icvLen;
      const trailer = checkTrailer(data, ptStart, ptEnd);
      if (trailer !== null) {
        this.setFail(c, CryptoStatus.CRYPTO_INVALID_PACKET_SYNTAX, trailer);
        this.finishReplay(c, st, false);
        return;
      }
      const padLen = data[ptEnd - 2]!;
      nh = data[ptEnd - 1]!;
      payloadEnd = ptEnd - 2 - padLen;
      if (nh === PROTO_IPV4 || nh === PROTO_IPV6) { innerStart = ptStart; innerEnd = payloadEnd; }
      else if (tunnelHint && nh !== PROTO_NONE) {
        this.setFail(c, CryptoStatus.CRYPTO_INVALID_PACKET_SYNTAX, `unknown next header ${nh} for a tunnel-mode SA (expected 4 or 41)`);
        this.finishReplay(c, st, false);
        return;
      }
      if (nh === PROTO_NONE) o.detail = 'dummy packet (next header 59): discarded by the host (RFC 4303 §2.6)';
    } else if (nh === PROTO_IPV4 || nh === PROTO_IPV6) {
      // AH-only tunnel: inner datagram follows the AH header in the clear.
      innerStart = c.ips.off + c.ips.ahLen - c.regionFrameOff + off;
      innerEnd = end;
    }
    // Tunnel: validate the inner datagram.
    if (innerStart >= 0) {
      const ip2 = decodeIp(data, innerStart, innerEnd, c.ip2);
      if (ip2.error !== IpError.None || ip2.version !== (nh === PROTO_IPV4 ? 4 : 6)) {
        this.setFail(c, CryptoStatus.CRYPTO_INVALID_PACKET_SYNTAX, `next header ${nh} but the inner packet is not a valid IPv${nh === PROTO_IPV4 ? 4 : 6} datagram${ip2.detail ? ': ' + ip2.detail : ''}`);
        this.finishReplay(c, st, false);
        return;
      }
      innerEnd = ip2.end;
    }
    // Host model: replay verdict and window update after the ICV verified.
    this.finishReplay(c, st, true);
    st.packets++;
    st.bytes += end - off;
    this.lifetime(c, st);
    // Transport over tunnel: the inner datagram carries IPsec of its own.
    let innerOk = false;
    if (innerStart >= 0 && (c.ip2.proto === PROTO_ESP || c.ip2.proto === PROTO_AH || c.ip2.proto === 17)) {
      const r = this.processInner(c, data);
      if (r === -1) return; // inner failed: frame written unchanged
      innerOk = r === 1;
    }
    this.buildOutput(c, data, off, ptStart, payloadEnd, nh, innerStart, innerEnd, innerOk);
  }

  /**
   * Transport-over-tunnel: check the inner datagram's own IPsec (spec §5.5). Returns 1 when the
   * inner portion was checked and good, 0 when it was not checked, -1 when it failed.
   */
  private processInner(c: RxCtx, data: Uint8Array): number {
    const ip2 = c.ip2;
    const ips2 = locateIpsec(data, ip2, this.opts.natPorts, c.ips2);
    if (ips2.kind !== IpsecKind.Esp && ips2.kind !== IpsecKind.Ah) return 0;
    const o = c.oob;
    if (!ips2.hasSpi) return 0;
    if (c.ips.udpOff >= 0 && ips2.udpOff >= 0) { o.detail = 'UDP-encapsulated transport over a UDP-encapsulated tunnel: not processed (spec §6.2 case 5)'; return 0; }
    if (!this.nic.transportTunnelCombined) { o.detail = 'inner transport portion not checked: transportTunnelCombined is false'; return 0; }
    const isAh = ips2.kind === IpsecKind.Ah;
    const st2 = this.sad.lookup(isAh, ips2.spi, data, ip2.dstOff, ip2.srcOff, ip2.addrLen);
    if (!st2 || !st2.bundle.offloaded) { o.detail = `inner ${isAh ? 'AH' : 'ESP'} SPI ${hex32(ips2.spi)}: no offloaded inbound SA, left to the host`; return 0; }
    const b2 = st2.bundle;
    this.ensureLocal(st2);
    // Run the inner job through the same prepare/crypto/process code on a scratch batch.
    const inner = this.innerCtx;
    inner.frame = c.frame;
    inner.oob.reset(c.frame.index, c.oob.ts, 'rx');
    inner.state = st2;
    inner.hasAh = isAh;
    inner.hasEsp = !isAh || !!b2.esp;
    inner.espSeqH = -1;
    inner.ahSeqH = -1;
    let espOff = isAh ? ips2.off + ips2.ahLen : ips2.off;
    if (ips2.truncated || (isAh && b2.esp && (ips2.ahNext !== PROTO_ESP || espOff + 8 > ip2.end)) || (!isAh && b2.ah)) {
      o.nextCryptoDone = 1;
      this.setFail(c, isAh || !ips2.truncated ? CryptoStatus.CRYPTO_INVALID_PROTOCOL : CryptoStatus.CRYPTO_INVALID_PACKET_SYNTAX, `inner ${isAh ? 'AH' : 'ESP'} of ${b2.name}: structure does not match the bundle`);
      return -1;
    }
    if (isAh) inner.ahSeq = ips2.seq;
    if (inner.hasEsp) inner.espSeq = readU32(data, espOff + 4);
    if (b2.esn) {
      if (inner.hasEsp) inner.espSeqH = this.opts.esn === 'pushed' ? st2.pushedHigh : st2.espReplay!.inferHigh(inner.espSeq);
      if (inner.hasAh) inner.ahSeqH = this.opts.esn === 'pushed' ? st2.pushedHigh : st2.ahReplay!.inferHigh(inner.ahSeq);
    }
    const jobs = this.scratch;
    jobs.reset();
    inner.ips.off = ips2.off;
    inner.ips.ahNext = ips2.ahNext;
    inner.ips.ahLen = ips2.ahLen;
    inner.ips.udpOff = ips2.udpOff;
    if (!this.buildJob(inner, st2, data, ip2, ips2.off, ips2.ahLen, espOff, jobs, false)) {
      this.setFail(c, CryptoStatus.CRYPTO_GENERIC_ERROR, 'inner packet too large for the scratch buffer');
      return -1;
    }
    runJobs(this.localSlots, jobs.data, jobs.meta, jobs.count);
    // Inner portion is the transport portion by definition (spec §9 item 6).
    const res = jobs.meta[J.RESULT]!;
    const ahR = resultAh(res);
    const espR = resultEsp(res);
    o.nextCryptoDone = 1;
    if (inner.hasAh && ahR !== 0 && ahR !== NOT_RUN) {
      this.setFail(c, ahR === 1 ? CryptoStatus.CRYPTO_TRANSPORT_AH_AUTH_FAILED : CryptoStatus.CRYPTO_GENERIC_ERROR, 'inner AH ICV mismatch');
      return -1;
    }
    if (inner.hasEsp && espR !== OpenResult.Ok) {
      this.setFail(c, espR === OpenResult.AuthFailed ? CryptoStatus.CRYPTO_TRANSPORT_ESP_AUTH_FAILED : espR === OpenResult.BadLength ? CryptoStatus.CRYPTO_INVALID_PACKET_SYNTAX : CryptoStatus.CRYPTO_GENERIC_ERROR,
        espR === OpenResult.BadLength ? 'inner ' + this.espLengthDetail(st2, jobs.meta[J.LEN]! - jobs.meta[J.ESP]!) : 'inner ESP ICV mismatch');
      return -1;
    }
    // Copy the inner plaintext back into the outer plaintext (same positions).
    const jOff = jobs.meta[J.OFF]!;
    const jLen = jobs.meta[J.LEN]!;
    const t = inner.hasEsp ? this.localSlotsEsp(st2) : null;
    let nh = ips2.ahNext;
    let payloadEnd = -1;
    if (t) {
      const ptStart = jOff + jobs.meta[J.ESP]! + 8 + t.ivLen;
      const ptEnd = jOff + jLen - t.icvLen;
      const tr = checkTrailer(jobs.data, ptStart, ptEnd);
      if (tr !== null) { this.setFail(c, CryptoStatus.CRYPTO_INVALID_PACKET_SYNTAX, 'inner ' + tr); return -1; }
      nh = jobs.data[ptEnd - 1]!;
      payloadEnd = ptEnd - 2 - jobs.data[ptEnd - 2]!;
      const regionStartInData = isAh ? ip2.off : espOff;
      // Decrypted bytes back over the inner ciphertext (the AH case zeroed mutable fields in the copy: copy only the ESP part).
      const espRel = jobs.meta[J.ESP]!;
      data.set(jobs.data.subarray(jOff + espRel, jOff + jLen), regionStartInData + espRel);
      this.innerPlain = { ptStart: regionStartInData + (ptStart - jOff), payloadEnd: regionStartInData + (payloadEnd - jOff), nh, ipsecStart: ips2.udpOff >= 0 ? ips2.udpOff : ips2.off };
    } else {
      this.innerPlain = { ptStart: ips2.off + ips2.ahLen, payloadEnd: ip2.end, nh, ipsecStart: ips2.off };
    }
    // Inner replay / lifetime on the inner SA.
    this.finishReplay(inner, st2, true);
    st2.packets++;
    st2.bytes += jLen;
    if (inner.oob.replay === 'duplicate' || inner.oob.replay === 'too-old') c.oob.replay = inner.oob.replay;
    return 1;
  }
  private readonly innerCtx = new RxCtx();
  private innerPlain = { ptStart: 0, payloadEnd: 0, nh: 0, ipsecStart: 0 };

  /** Build the output frame for a verified packet. */
  private buildOutput(c: RxCtx, data: Uint8Array, off: number, ptStart: number, payloadEnd: number, nh: number, innerStart: number, innerEnd: number, innerOk: boolean): void {
    const f = c.frame;
    const d = f.data;
    if (this.opts.inPlace) {
      // NIC indication form: plaintext over the ciphertext, everything else as received.
      if (c.hasEsp) {
        const ptFrame = c.regionFrameOff + (ptStart - off);
        const ptEndData = off + (c.ip.end - c.regionFrameOff);
        const t = this.localSlotsEsp(c.state!);
        d.set(data.subarray(ptStart, ptEndData - t.icvLen), ptFrame);
      }
      c.out = d;
      return;
    }
    const l3 = c.l2.l3Off;
    if (innerStart >= 0) {
      if (innerOk) {
        // Transport over tunnel: inner IP header (fixed) + inner plaintext payload.
        const p = this.innerPlain;
        const ip2 = c.ip2;
        const hdrLen = p.ipsecStart - ip2.off;
        const payLen = p.payloadEnd - p.ptStart;
        const out = Buffer.allocUnsafe(l3 + hdrLen + payLen);
        out.set(d.subarray(0, l3), 0);
        out.set(data.subarray(ip2.off, p.ipsecStart), l3);
        out.set(data.subarray(p.ptStart, p.payloadEnd), l3 + hdrLen);
        out[l3 + (ip2.protoFieldOff - ip2.off)] = p.nh;
        setIpLength(out, l3, out.length);
        c.outRaw = !setL2Family(out, c.l2, ip2.version);
        c.out = out;
        return;
      }
      // Tunnel: the inner datagram replaces the outer one.
      if (c.l2Hdr.length < l3) c.l2Hdr = new Uint8Array(l3);
      const h = c.l2Hdr;
      copyBytes(d, 0, l3, h, 0);
      c.outRaw = !setL2Family(h, c.l2, c.ip2.version);
      c.outKind = OUT_TUNNEL;
      c.outLen = l3 + (innerEnd - innerStart);
      c.outData = data;
      c.outA = innerStart;
      c.outB = innerEnd;
      this.finishOutput(c);
      return;
    }
    // Transport: IP header up to the IPsec header (UDP encapsulation removed too), then payload.
    const ip = c.ip;
    const ipsecStart = c.ips.udpOff >= 0 ? c.ips.udpOff : c.ips.off;
    c.outKind = OUT_TRANSPORT;
    c.outHdrEnd = ipsecStart;
    c.outNh = nh;
    if (c.hasEsp) { c.outData = data; c.outA = ptStart; c.outB = payloadEnd; }
    else { c.outData = d; c.outA = c.ips.off + c.ips.ahLen; c.outB = ip.end; }
    c.outLen = l3 + (ipsecStart - ip.off) + (c.outB - c.outA);
    this.finishOutput(c);
  }

  /**
   * Build deferred output in the caller's buffer: `c.outLen` bytes at dst[o..]. Valid only
   * inside the emit callback of process() for this ctx (the job data is reused afterwards).
   */
  writeOutput(c: RxCtx, dst: Uint8Array, o: number): void {
    const h = this.writeOutputHead(c, dst, o);
    copyBytes(c.outData!, c.outA, c.outB, dst, o + h);
  }

  /**
   * The part of deferred output before its payload (`c.outData[c.outA, c.outB)`), at dst[o..]:
   * the L2 header, and in transport mode the IP header with its protocol and length already
   * set for the whole `c.outLen` bytes. Returns its length (`c.outLen` minus the payload's).
   */
  writeOutputHead(c: RxCtx, dst: Uint8Array, o: number): number {
    const d = c.frame.data;
    const l3 = c.l2.l3Off;
    if (c.outKind === OUT_TUNNEL) {
      copyBytes(c.l2Hdr, 0, l3, dst, o);
      return l3;
    }
    // Transport: L2 header, IP header up to the IPsec header; protocol and length fixed.
    const ip = c.ip;
    const hdrEnd = c.outHdrEnd;
    if (ip.off === l3) copyBytes(d, 0, hdrEnd, dst, o); // L2 and IP headers are contiguous
    else {
      copyBytes(d, 0, ip.off, dst, o);
      copyBytes(d, ip.off, hdrEnd, dst, o + l3);
    }
    dst[o + l3 + (ip.protoFieldOff - ip.off)] = c.outNh;
    // the length fields and checksum cover the header only: the payload may come later
    setIpLength(dst, o + l3, o + c.outLen);
    return l3 + (hdrEnd - ip.off);
  }

  /** Without deferOutput: build the output now, in a Buffer of its own. */
  private finishOutput(c: RxCtx): void {
    if (this.deferOutput) return;
    const out = Buffer.allocUnsafe(c.outLen);
    this.writeOutput(c, out, 0);
    c.out = out;
    c.outKind = OUT_NONE;
    c.outData = null;
  }

  /**
   * Leave decapsulated output to the caller: process() then emits such frames with `out` null
   * and `outKind`/`outLen` set, and the emit callback calls writeOutput (straight into the
   * capture writer's buffer). Off by default: every frame gets an `out` Buffer.
   */
  deferOutput = false;

  /**
   * Leave room in the job data before and after each job's region (EMIT_ROOM_BEFORE/AFTER,
   * RxCtx.roomLo/roomHi): the rx output writer then builds a frame's pcapng block around its
   * decrypted payload where it lies and writes it from there (src/pipeline/rx-emit.ts), instead
   * of copying the payload into the capture writer's buffer.
   */
  emitRoom = false;

  private finishReplay(c: RxCtx, st: BundleState, authenticated: boolean): void {
    let v: ReplayVerdict | null = null;
    if (c.hasEsp && st.espReplay) v = verdict(st.espReplay, c.espSeqH, c.espSeq, authenticated);
    if (c.hasAh && st.ahReplay) {
      const va = verdict(st.ahReplay, c.ahSeqH, c.ahSeq, authenticated);
      if (v === null || v === 'ok' || v === 'off') v = va;
    }
    c.oob.replay = v;
  }

  private lifetime(c: RxCtx, st: BundleState): void {
    const lt = st.bundle.lifetime;
    if ((lt.packets !== null && st.packets >= lt.packets) || (lt.bytes !== null && st.bytes >= lt.bytes)) st.deleteReq = true;
    if (!st.bundle.esn) {
      const seq = c.hasEsp ? c.espSeq : c.ahSeq;
      if (seq >= 0x100000000 - SEQ_EXHAUST_MARGIN) st.deleteReq = true;
    }
    c.oob.saDeleteReq = st.deleteReq ? 1 : 0;
  }

  private unsupported(c: RxCtx, st: BundleState): string | null {
    const ip = c.ip;
    const nic = this.nic;
    if (ip.fragment) return 'fragment: IPsec is checked only after reassembly (RFC 4303 §3.4.1), left to the host';
    if (ip.version === 4 && ip.options && !nic.ipv4Options) return 'IPv4 options: ipv4Options is false in the NIC profile';
    if (ip.version === 6 && !nic.ipv6) return 'IPv6: ipv6 is false in the NIC profile';
    if (ip.version === 6 && ip.extHeaders && !nic.ipv6NonIpsecExtensionHeaders) return 'IPv6 extension headers: ipv6NonIpsecExtensionHeaders is false in the NIC profile';
    const ue = st.bundle.udpEncapsulation;
    const wrapped = c.ips.udpOff >= 0;
    if (ue) {
      const expectWrapped = !(ue.type === 'transport-over-tunnel' && st.bundle.mode === 'transport') && !(ue.type === 'tunnel-over-transport' && st.bundle.mode === 'tunnel');
      if (wrapped !== expectWrapped) return wrapped ? `UDP-encapsulated ESP but SA ${st.bundle.name} is not (udpEncapsulation ${ue.type})` : `SA ${st.bundle.name} expects UDP-encapsulated ESP (udpEncapsulation ${ue.type})`;
    } else if (wrapped && nic.udpEsp.length === 0) return 'UDP-encapsulated ESP: udpEsp is empty in the NIC profile';
    return null;
  }

  private fail(c: RxCtx, st: BundleState, status: CryptoStatusCode, detail: string): void {
    c.oob.sa = st.bundle.name;
    c.oob.handle = st.bundle.handle;
    this.setFail(c, status, detail);
  }

  private setFail(c: RxCtx, status: CryptoStatusCode, detail: string): void {
    c.oob.cryptoDone = 1;
    c.oob.cryptoStatus = status;
    c.oob.detail = detail;
    c.failed = true;
  }

  private syntax(c: RxCtx, st: BundleState, detail: string): true {
    this.fail(c, st, CryptoStatus.CRYPTO_INVALID_PACKET_SYNTAX, detail);
    return true;
  }

  private protocol(c: RxCtx, st: BundleState, detail: string): true {
    this.fail(c, st, CryptoStatus.CRYPTO_INVALID_PROTOCOL, detail);
    return true;
  }

  private localSlotsEsp(st: BundleState) {
    return this.localSlots.espOf(st.slot)!;
  }

  private ahIvLen(st: BundleState): number {
    const t = this.localSlots.ahOf(st.slot);
    if (t) return t.ivLen;
    return st.bundle.ah && st.bundle.ah.integrity.startsWith('aes-gmac') ? 8 : 0;
  }

  private slotReason(st: BundleState): string {
    const r = this.localSlots.brokenReason(st.slot);
    return r ? `: ${r}` : '';
  }

  private espLengthDetail(st: BundleState, espLen: number): string {
    const t = this.localSlots.espOf(st.slot);
    if (!t) return 'ESP length invalid';
    const ct = espLen - 8 - t.ivLen - t.icvLen;
    if (ct < 2) return `ESP too short: ${espLen} bytes, need 8 + ${t.ivLen} IV + 2 trailer + ${t.icvLen} ICV`;
    return `ciphertext length ${ct} not a multiple of the ${t.blockSize}-byte block`;
  }

  private linkTypeOf(f: CaptureFrame): number {
    return this.linkTypes[f.ifId] ?? -1;
  }
  /** LINKTYPE of each input interface, kept current by the pipeline. */
  linkTypes: number[] = [];
}

function verdict(w: { check(h: number, l: number): ReplayVerdict; update(h: number, l: number): void }, seqH: number, seq: number, authenticated: boolean): ReplayVerdict {
  const h = seqH < 0 ? 0 : seqH;
  const v = w.check(h, seq);
  if (authenticated && (v === 'ok' || v === 'off')) w.update(h, seq);
  return v;
}

/**
 * RFC 4303 §2.4–§2.5: pad length must fit, padding bytes are 1, 2, 3, … (receivers SHOULD check).
 * Returns null when good, else the detail.
 */
export function checkTrailer(d: Uint8Array, ptStart: number, ptEnd: number): string | null {
  const n = ptEnd - ptStart;
  if (n < 2) return 'truncated ESP trailer';
  const padLen = d[ptEnd - 2]!;
  if (padLen + 2 > n) return `pad length ${padLen} larger than the data (${n - 2} bytes)`;
  const p = ptEnd - 2 - padLen;
  for (let i = 0; i < padLen; i++) if (d[p + i] !== ((i + 1) & 0xff)) return 'pad bytes not 1,2,3,...';
  return null;
}

