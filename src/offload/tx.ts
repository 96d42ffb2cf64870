/**
 * The send path: what `tx` does with each plain frame — the host's IPsec framing (SA selection,
 * headers, sequence numbers, IVs, padding; spec/ipsecov2.md §4.2, §9 item 14) and the NIC's
 * cryptography (§4.3–4.4), plus large send (§9 items 16–17).
 *
 * Structured like the receive engine (rx.ts), prepare → crypto → process:
 *  - prepare (main thread, input order): decode, select the outbound bundle (tx-select.ts),
 *    capability / MTU / sequence checks, segmentation (LSO), then build each protected datagram
 *    directly in the job region: headers, IV, payload, trailer, zeroed ICV space. Sequence
 *    numbers, IVs and outer IPv4 identifications are all decided here, so the output does not
 *    depend on batching or on the number of workers.
 *  - crypto (jobs.ts runJobs, inline or in a worker): ESP_SEAL, then AH_COMPUTE over the result.
 *  - process (main thread, input order): copy each region out behind the frame's link-layer
 *    header, put back the AH-mutable header bytes and the AH ICV, the IPv6 UDP checksum, OOB.
 * A frame that is not encrypted (bypass, not-offloaded, oversize, seq-exhausted, error) is written
 * unchanged.
 *
 * Transport over tunnel: the transport bundle's layer is done on the main thread right away (a
 * one-job scratch batch, as rx does for the inner layer), the tunnel layer then goes through the
 * batch like any other job.
 */
import type { CaptureFrame } from '../capture/types.js';
import type { NicProfile, SaDocument, TunnelEndpoints } from '../sa/model.js';
import { decodeL2, L2Info, setL2Family } from '../packet/l2.js';
import { decodeIp, IpError, IpInfo, PROTO_AH, PROTO_ESP, PROTO_IPV4, PROTO_IPV6, PROTO_TCP, PROTO_UDP, setIpLength } from '../packet/ip.js';
import { IpsecInfo, IpsecKind, locateIpsec } from '../packet/ipsec.js';
import { zeroMutableIpv4, zeroMutableIpv6 } from '../packet/mutable.js';
import { ahHeaderLen, espPadLen, setUdpChecksum, writeAhHeader, writeEspHeader, writeEspTrailer, writeOuterIpv4, writeOuterIpv6, writeUdpHeader } from '../packet/build.js';
import { segmentCount, tcpHeaderLen, writeTcpSegment } from '../packet/lso.js';
import type { AhTransform, EspTransform } from '../crypto/types.js';
import { encryptionAlgorithm } from '../crypto/registry.js';
import { hex32, OobRecord, type TxStatus } from './oob.js';
import { J, JOB_FIELDS, JobBatch, NOT_RUN, Op, resultAh, resultEsp, runJobs, SlotTable, WORKER_FAULT, type SlotDef } from './jobs.js';
import type { BundleState } from './sad.js';
import type { RxEnv } from './rx.js';
import type { SaTimeline } from '../pipeline/timeline.js';
import { TxSelector } from './tx-select.js';
import { TxIvSource } from './tx-iv.js';

export interface TxOptions {
  /** Hex seed for deterministic IVs (golden files), null = the system's random source. */
  ivSeed: string | null;
  /** Path MTU in bytes: the largest protected IP datagram (default 1500). */
  mtu: number;
}

const TWO32 = 0x100000000;
const PROTO_SCTP = 132;

/** Per-frame state between prepare and process. Reused across batches. */
export class TxCtx {
  frame!: CaptureFrame;
  readonly oob = new OobRecord();
  readonly l2 = new L2Info();
  readonly ip = new IpInfo();
  readonly ips = new IpsecInfo();
  /** The (first) output frame; the input's own bytes when unchanged. */
  out: Uint8Array | null = null;
  /**
   * Further output frames of this input frame (LSO segments 2..n), to be written right after
   * `out`, with the input frame's timestamp and interface. Empty for every other frame.
   */
  readonly extra: Uint8Array[] = [];
  /** Output needs a raw-IP interface (LINKTYPE_IPV4/IPV6 input whose family changed). */
  outRaw = false;
  /** Frame was not protected because of an error (for --drop-failed). */
  failed = false;
  /** First job of this frame and how many (one per segment); -1/0 = no crypto. */
  job = -1;
  nJobs = 0;
  state: BundleState | null = null;
  tunnelState: BundleState | null = null;
}

/** Per-job facts that process needs and the job meta does not carry. */
class JobSide {
  /** AH: offset in the data buffer of the saved header bytes [0, AH) before zeroing, else -1. */
  readonly save: Int32Array;
  /** Offset of the UDP header (UDP-ESP over IPv6, checksum after crypto) in the region, else -1. */
  readonly udp: Int32Array;
  /** IP version of the region's (outer) header. */
  readonly ver: Uint8Array;
  constructor(n: number) {
    this.save = new Int32Array(n);
    this.udp = new Int32Array(n);
    this.ver = new Uint8Array(n);
  }
}

/** A batch of frames moving through prepare → crypto → process. */
export class TxBatch {
  readonly ctx: TxCtx[] = [];
  readonly jobs = new JobBatch();
  readonly side = new JobSide(this.jobs.maxJobs);
  /** Frames prepared so far (a batch may end early when the job buffer is full). */
  n = 0;

  ctxAt(i: number): TxCtx {
    let c = this.ctx[i];
    if (!c) { c = new TxCtx(); this.ctx[i] = c; }
    return c;
  }
}

/**
 * Per-SA send template, built once per bundle (DPDK's per-SA precompute): transforms, sizes,
 * IV rule, encapsulation.
 */
class TxSa {
  readonly st: BundleState;
  readonly esp: EspTransform | null;
  readonly ah: AhTransform | null;
  readonly espSpi: number;
  readonly ahSpi: number;
  readonly ivLen: number;
  readonly icvLen: number;
  readonly padUnit: number;
  /** IV rule: counter-based (seq XOR salt) or unpredictable (CBC); see tx-iv.ts. */
  readonly counterIv: boolean;
  readonly espSalt: Buffer | null;
  readonly ahIvLen: number;
  readonly ahIcvLen: number;
  readonly ahSalt: Buffer | null;
  /** ESP of this bundle goes inside UDP (RFC 3948). */
  readonly udp: boolean;
  readonly sport: number;
  readonly dport: number;
  readonly tunnel: TunnelEndpoints | null;
  readonly esn: boolean;

  constructor(st: BundleState, esp: EspTransform | null, ah: AhTransform | null, iv: TxIvSource) {
    const b = st.bundle;
    this.st = st;
    this.esp = esp;
    this.ah = ah;
    this.espSpi = b.esp ? b.esp.spi : 0;
    this.ahSpi = b.ah ? b.ah.spi : 0;
    this.ivLen = esp ? esp.ivLen : 0;
    this.icvLen = esp ? esp.icvLen : 0;
    this.padUnit = esp ? esp.padUnit : 4;
    const enc = b.esp ? encryptionAlgorithm(b.esp.encryption) : undefined;
    // CBC ciphers need unpredictable IVs (RFC 3602 §3); the others only unique ones.
    this.counterIv = !(enc && enc.blockSize > 1);
    this.espSalt = esp && this.ivLen && this.counterIv ? iv.salt(b.handle, this.espSpi) : null;
    this.ahIvLen = ah ? ah.ivLen : 0;
    this.ahIcvLen = ah ? ah.icvLen : 0;
    this.ahSalt = ah && ah.ivLen ? iv.salt(b.handle, this.ahSpi) : null;
    const ue = b.udpEncapsulation;
    // spec §6.2: which ESP of a transport-over-tunnel pair is UDP-wrapped (same rule as rx.ts).
    this.udp = !!esp && !!ue && !(ue.type === 'transport-over-tunnel' && b.mode === 'transport') && !(ue.type === 'tunnel-over-transport' && b.mode === 'tunnel');
    this.sport = ue ? ue.srcPort : 0;
    this.dport = ue ? ue.dstPort : 0;
    this.tunnel = b.mode === 'tunnel' ? b.tunnel : null;
    this.esn = b.esn;
  }

  /** IP version of the header this layer's IPsec headers follow. */
  outerVersion(pVersion: number): number {
    return this.tunnel ? this.tunnel.family : pVersion;
  }

  /**
   * Length of the protected datagram for a plain datagram of `pLen` bytes whose IP header
   * (with options / extension headers) is `pHdrLen` bytes.
   */
  protectedLen(pVersion: number, pHdrLen: number, pLen: number): number {
    let hdr: number;
    let pay: number;
    if (this.tunnel) { hdr = this.tunnel.family === 4 ? 20 : 40; pay = pLen; }
    else { hdr = pHdrLen; pay = pLen - pHdrLen; }
    let len = hdr + (this.udp ? 8 : 0);
    if (this.ah) len += ahHeaderLen(this.ahIvLen, this.ahIcvLen, this.outerVersion(pVersion));
    if (this.esp) len += 8 + this.ivLen + pay + espPadLen(pay, this.padUnit) + 2 + this.icvLen;
    else len += pay;
    return len;
  }
}

/** Numbers left in the SA's outbound sequence space (RFC 4303 §3.3.3: never cycle). */
function seqLeft(st: BundleState, esn: boolean): number {
  if (!esn) return st.txHigh !== 0 ? 0 : TWO32 - st.txLow;
  if (st.txHigh > 0xffffffff) return 0;
  return (0xffffffff - st.txHigh) * TWO32 + (TWO32 - st.txLow);
}

function seqAdvance(st: BundleState): void {
  st.txLow++;
  if (st.txLow === TWO32) { st.txLow = 0; st.txHigh++; }
}

export class TxEngine {
  /** Every slot defined so far, for the worker pool (a worker gets a slot before its first job). */
  readonly slotDefs = new Map<number, SlotDef>();
  /** LINKTYPE of each input interface, kept current by the pipeline. */
  linkTypes: number[] = [];
  /** Transforms for the main thread (inline crypto of the transport layer of transport-over-tunnel). */
  readonly localSlots = new SlotTable();
  private readonly env: RxEnv;
  private readonly nic: NicProfile;
  private readonly mtu: number;
  private readonly natPorts: ReadonlySet<number> | null;
  private readonly selector = new TxSelector();
  /** Position of each bundle name in the SA file (selection tie-break). */
  private readonly rank = new Map<string, number>();
  private readonly iv: TxIvSource;
  private readonly sas = new Map<number, TxSa | string>();
  /** Outer IPv4 identification: one counter per run (RFC 6864 §4.1 allows any unique-enough value). */
  private ipId = 0;
  // Scratch for LSO segments and for the inner (transport) layer of transport-over-tunnel.
  private readonly scratch = new JobBatch(1 << 17, 1);
  private readonly scratchSide = new JobSide(1);
  private segBuf = Buffer.alloc(1 << 16);
  private innerBuf = Buffer.alloc(1 << 16);
  private readonly segIp = new IpInfo();
  private readonly innerIp = new IpInfo();
  /** Layout of the datagram last written by writeDatagram. */
  private lay = { len: 0, espRel: -1, ahRel: -1, ahLen: 0, udpRel: -1, ver: 4, seqH: 0, seqL: 0 };

  constructor(doc: SaDocument, opts: TxOptions, env: RxEnv, timeline: SaTimeline) {
    this.env = env;
    this.nic = doc.nic;
    this.mtu = opts.mtu > 0 ? opts.mtu : 1500;
    this.natPorts = timeline.natPorts;
    this.iv = new TxIvSource(opts.ivSeed);
    doc.bundles.forEach((b, i) => this.rank.set(b.name, i));
    for (const e of doc.events) if (e.kind === 'add' && !this.rank.has(e.bundle.name)) this.rank.set(e.bundle.name, this.rank.size);
    this.selector.rebuild(env.states(), this.rank);
  }

  /**
   * Prepare frames[start..] into `batch` until the frames or the job buffer run out.
   * Returns how many frames were taken.
   */
  prepare(frames: CaptureFrame[], start: number, batch: TxBatch): number {
    batch.jobs.reset();
    let i = start;
    let k = 0;
    for (; i < frames.length; i++, k++) {
      const f = frames[i]!;
      if (this.env.applyEvents(f)) this.selector.rebuild(this.env.states(), this.rank);
      if (!this.prepareOne(f, batch.ctxAt(k), batch.jobs, batch.side)) break; // batch full: next batch
    }
    batch.n = k;
    return i - start;
  }

  /** Returns false (with no state changed) only when the frame needs jobs and the batch is full. */
  private prepareOne(f: CaptureFrame, c: TxCtx, jobs: JobBatch, side: JobSide): boolean {
    const o = c.oob;
    o.reset(f.index, this.env.tsIso(f), 'tx');
    c.frame = f;
    c.out = null;
    c.extra.length = 0;
    c.outRaw = false;
    c.failed = false;
    c.job = -1;
    c.nJobs = 0;
    c.state = null;
    c.tunnelState = null;
    const d = f.data;
    const l2 = decodeL2(this.linkTypes[f.ifId] ?? -1, d, c.l2);
    if (l2.l3Off < 0) { o.detail = 'not an IP packet'; return true; }
    const ip = decodeIp(d, l2.l3Off, d.length, c.ip);
    if (ip.version !== 4 && ip.version !== 6) { o.detail = 'not an IP packet'; return true; }
    if (ip.error === IpError.Bad || (ip.error === IpError.Truncated && ip.payloadOff === 0)) { o.detail = `malformed IP header: ${ip.detail}`; return true; }
    // Already protected (ESP, AH, ESP in UDP) or IPsec control traffic: never protected again.
    if (ip.proto === PROTO_ESP || ip.proto === PROTO_AH) { o.detail = `already IPsec (${ip.proto === PROTO_ESP ? 'ESP' : 'AH'})`; return true; }
    const ips = locateIpsec(d, ip, this.natPorts, c.ips);
    if (ips.kind === IpsecKind.Esp) { o.detail = 'already IPsec (UDP-encapsulated ESP)'; return true; }
    if (ips.kind === IpsecKind.Ike) { o.detail = 'IKE on UDP 4500 (non-ESP marker)'; return true; }
    if (ips.kind === IpsecKind.Keepalive) { o.detail = 'NAT-keepalive'; return true; }

    // Selector fields. Ports only for TCP/UDP/SCTP first fragments with the ports captured.
    const nonFirstFragment = ip.fragment && (ip.version === 4 ? (((d[ip.off + 6]! & 0x1f) << 8) | d[ip.off + 7]!) !== 0 : true);
    let sport = -1;
    let dport = -1;
    if ((ip.proto === PROTO_TCP || ip.proto === PROTO_UDP || ip.proto === PROTO_SCTP) && !nonFirstFragment && ip.payloadOff + 4 <= ip.end) {
      sport = (d[ip.payloadOff]! << 8) | d[ip.payloadOff + 1]!;
      dport = (d[ip.payloadOff + 2]! << 8) | d[ip.payloadOff + 3]!;
    }
    const st = this.selector.lookup(ip.version, d, ip.srcOff, ip.dstOff, ip.proto, sport, dport);
    if (!st) return true; // bypass: no SA selects it
    const b = st.bundle;
    o.sa = b.name;
    o.handle = b.handle;
    if (!b.offloaded) return this.status(c, 'not-offloaded', `SA not offloaded: ${b.notOffloadedReason ?? 'not offloaded'}`);
    let stT: BundleState | null = null;
    if (b.over !== null) {
      stT = this.selector.named(b.over);
      if (!stT) return this.fail(c, `tunnel bundle "${b.over}" (over) is not present`);
      o.tunnelHandle = stT.bundle.handle;
      if (!stT.bundle.offloaded) return this.status(c, 'not-offloaded', `tunnel bundle ${stT.bundle.name} not offloaded: ${stT.bundle.notOffloadedReason ?? 'not offloaded'}`);
    } else if (b.mode === 'tunnel') {
      // spec §9 item 27: a tunnel-only packet carries the same bundle in both handles.
      o.tunnelHandle = b.handle;
    }
    const why = this.unsupported(ip);
    if (why !== null) return this.status(c, 'not-offloaded', why);
    if (ip.error === IpError.Truncated) return this.fail(c, `frame cut short by the capture: ${ip.detail}`);
    if (ip.fragment && b.mode === 'transport') return this.fail(c, 'IP fragment: transport-mode IPsec applies to whole datagrams only (RFC 4303 §3.3, RFC 4302 §3.3)');
    const sa = this.txSa(st);
    if (typeof sa === 'string') return this.fail(c, `SA ${b.name}: ${sa}`);
    let saT: TxSa | null = null;
    if (stT) {
      const t = this.txSa(stT);
      if (typeof t === 'string') return this.fail(c, `tunnel SA ${stT.bundle.name}: ${t}`);
      saT = t;
      if (sa.udp && saT.udp) return this.fail(c, 'UDP-encapsulated transport over a UDP-encapsulated tunnel is not supported (spec §6.2 case 5)');
    }
    c.state = st;
    c.tunnelState = stT;
    o.spi = sa.esp ? sa.espSpi : sa.ahSpi;

    // Size check and large send.
    const pHdrLen = ip.payloadOff - ip.off;
    const plainLen = ip.end - ip.off;
    const protLen = this.totalLen(sa, saT, ip.version, pHdrLen, plainLen);
    let nseg = 1;
    let mss = 0;
    let tcpHl = 0;
    if (protLen > this.mtu) {
      if (!this.nic.lso) return this.status(c, 'oversize', `protected packet would be ${protLen} bytes, MTU ${this.mtu} (lso is off in the NIC profile)`);
      if (ip.proto !== PROTO_TCP || ip.fragment) return this.status(c, 'oversize', `protected packet would be ${protLen} bytes, MTU ${this.mtu} (large send segments TCP only)`);
      tcpHl = tcpHeaderLen(d, ip.payloadOff, ip.end);
      if (tcpHl < 0) return this.status(c, 'oversize', `protected packet would be ${protLen} bytes, MTU ${this.mtu} (TCP header cut short)`);
      const hdr = pHdrLen + tcpHl;
      const payLen = ip.end - ip.payloadOff - tcpHl;
      mss = Math.min(payLen, this.mtu - (this.totalLen(sa, saT, ip.version, pHdrLen, hdr) - hdr));
      while (mss > 0 && this.totalLen(sa, saT, ip.version, pHdrLen, hdr + mss) > this.mtu) mss--;
      if (mss <= 0) return this.status(c, 'oversize', `protected packet would be ${protLen} bytes, MTU ${this.mtu} (headers alone do not fit)`);
      nseg = segmentCount(payLen, mss);
      if (nseg > jobs.maxJobs) return this.status(c, 'oversize', `protected packet would be ${protLen} bytes, MTU ${this.mtu} (${nseg} segments)`);
    }
    // Sequence numbers: one per segment, per SA; never cycle without ESN (RFC 4303 §3.3.3).
    if (seqLeft(st, sa.esn) < nseg) return this.status(c, 'seq-exhausted', `sequence space of ${b.name} exhausted (next ${st.txHigh ? st.txHigh + ':' : ''}${st.txLow}${sa.esn ? '' : ', no ESN'}); a new SA is needed`);
    if (stT && saT && seqLeft(stT, saT.esn) < nseg) return this.status(c, 'seq-exhausted', `sequence space of tunnel ${stT.bundle.name} exhausted; a new SA is needed`);

    // Build. On a full batch, undo everything (jobs, counters) so the frame starts the next batch.
    if (jobs.count === 0) jobs.ensure(nseg * (2 * Math.max(protLen < this.mtu ? protLen : this.mtu, 64) + 160));
    const usedBefore = jobs.used;
    const countBefore = jobs.count;
    const h0 = st.txHigh, l0 = st.txLow;
    const th0 = stT ? stT.txHigh : 0, tl0 = stT ? stT.txLow : 0;
    const id0 = this.ipId;
    o.seq = st.txLow;
    o.seqHigh = sa.esn ? st.txHigh : 0;
    let ok = true;
    for (let s = 0; s < nseg && ok; s++) {
      let P: Uint8Array = d;
      let pIp: IpInfo = ip;
      if (nseg > 1) {
        const len = writeTcpSegment(d, ip, ip.payloadOff, tcpHl, s, nseg, mss, this.segBuf, 0);
        P = this.segBuf;
        pIp = decodeIp(P, 0, len, this.segIp);
      }
      if (saT) {
        const r = this.protectInline(sa, P, pIp);
        if (r !== null) {
          st.txHigh = h0; st.txLow = l0;
          if (stT) { stT.txHigh = th0; stT.txLow = tl0; }
          this.ipId = id0;
          jobs.used = usedBefore;
          jobs.count = countBefore;
          return this.fail(c, r);
        }
        P = this.innerBuf;
        pIp = this.innerIp;
        ok = this.addJob(saT, P, pIp, jobs, side);
      } else ok = this.addJob(sa, P, pIp, jobs, side);
    }
    if (!ok) {
      st.txHigh = h0; st.txLow = l0;
      if (stT) { stT.txHigh = th0; stT.txLow = tl0; }
      this.ipId = id0;
      jobs.used = usedBefore;
      jobs.count = countBefore;
      return false;
    }
    c.job = countBefore;
    c.nJobs = nseg;
    if (nseg > 1) o.detail = `LSO: ${nseg} segments`;
    if (saT) {
      const t = `over tunnel ${stT!.bundle.name} (spi ${hex32(saT.esp ? saT.espSpi : saT.ahSpi)}, seq ${tl0}${nseg > 1 ? `..${(tl0 + nseg - 1) >>> 0}` : ''})`;
      o.detail = o.detail === null ? t : `${o.detail}; ${t}`;
    }
    return true;
  }

  private totalLen(sa: TxSa, saT: TxSa | null, version: number, pHdrLen: number, pLen: number): number {
    const n = sa.protectedLen(version, pHdrLen, pLen);
    return saT ? saT.protectedLen(sa.outerVersion(version), 0, n) : n;
  }

  /**
   * Build one protected datagram of `sa` for the plain datagram P (`pIp`) in a new job of `jobs`.
   * Takes the next sequence number. false = batch full (the caller rolls back).
   */
  private addJob(sa: TxSa, P: Uint8Array, pIp: IpInfo, jobs: JobBatch, side: JobSide): boolean {
    const len = sa.protectedLen(pIp.version, pIp.payloadOff - pIp.off, pIp.end - pIp.off);
    const off = jobs.alloc(len);
    if (off < 0) return false;
    let aux = 0;
    let save = -1;
    if (sa.ah) {
      aux = jobs.alloc(sa.ahIvLen + sa.ahIcvLen);
      // Header bytes before AH (at most the IP header with options / extension headers).
      save = aux < 0 ? -1 : jobs.alloc(sa.tunnel ? (sa.tunnel.family === 4 ? 20 : 40) : pIp.payloadOff - pIp.off);
      if (aux < 0 || save < 0) { jobs.used = off; return false; }
    }
    const st = sa.st;
    const seqH = st.txHigh;
    const seqL = st.txLow;
    seqAdvance(st);
    const data = jobs.data;
    this.writeDatagram(sa, seqH, seqL, P, pIp, data, off);
    const L = this.lay;
    const j = jobs.addJob();
    const m = jobs.meta;
    const b = j * JOB_FIELDS;
    m[b + J.ESP_SLOT] = st.slot;
    m[b + J.AH_SLOT] = st.slot;
    m[b + J.OFF] = off;
    m[b + J.LEN] = L.len;
    const seqh = sa.esn ? seqH : -1;
    m[b + J.SEQH_ESP] = seqh;
    m[b + J.SEQH_AH] = seqh;
    let op = sa.esn ? Op.ESN : 0;
    if (sa.esp) { op |= Op.ESP_SEAL; m[b + J.ESP] = L.espRel; }
    if (sa.ah) {
      op |= Op.AH_COMPUTE;
      m[b + J.AH] = L.ahRel;
      m[b + J.AUX] = aux;
      // RFC 4543 §4: the GMAC IV travels in the Authentication Data field, before the tag; it is
      // kept in the side data and the field itself counts as zero for the ICV (crypto/ah.ts).
      if (sa.ahIvLen) this.iv.counterIv(data, aux, sa.ahSalt!, seqH, seqL);
      // RFC 4302 §3.3.3.1: mutable fields count as zero. Zero them in the job copy; the real
      // bytes are saved and put back in process.
      data.copyWithin(save, off, off + L.ahRel);
      if (L.ver === 4) zeroMutableIpv4(data, off);
      else zeroMutableIpv6(data, off, off + L.ahRel);
    }
    m[b + J.OP] = op;
    side.save[j] = save;
    side.udp[j] = L.udpRel >= 0 && L.ver === 6 ? L.udpRel : -1;
    side.ver[j] = L.ver;
    return true;
  }

  /**
   * Write the protected datagram of `sa` for plain datagram P at data[off..): headers, IV, the
   * payload, trailer and zeroed ICV space (RFC 4303 §2, RFC 4302 §2). Layout → this.lay.
   */
  private writeDatagram(sa: TxSa, seqH: number, seqL: number, P: Uint8Array, pIp: IpInfo, data: Uint8Array, off: number): void {
    const L = this.lay;
    const pOff = pIp.off;
    const pEnd = pIp.end;
    let p: number; // write position
    let payStart: number;
    let nh: number;
    let ver: number;
    const len = sa.protectedLen(pIp.version, pIp.payloadOff - pOff, pEnd - pOff);
    const firstProto = sa.udp ? PROTO_UDP : sa.ah ? PROTO_AH : PROTO_ESP;
    if (sa.tunnel) {
      const t = sa.tunnel;
      ver = t.family;
      payStart = pOff;
      nh = pIp.version === 4 ? PROTO_IPV4 : PROTO_IPV6;
      // RFC 4301 §5.1.2: DSCP copied, ECN copied (RFC 6040 §4.1 normal mode), DF copied from an
      // inner IPv4 header (RFC 4301 §8.1 default; an inner IPv6 has no DF: clear).
      let tclass: number;
      let flow = 0;
      let df = false;
      if (pIp.version === 4) { tclass = P[pOff + 1]!; df = (P[pOff + 6]! & 0x40) !== 0; }
      else {
        tclass = ((P[pOff]! & 0x0f) << 4) | (P[pOff + 1]! >>> 4);
        flow = ((P[pOff + 1]! & 0x0f) << 16) | (P[pOff + 2]! << 8) | P[pOff + 3]!;
      }
      if (ver === 4) {
        writeOuterIpv4(data, off, len, tclass, this.ipId, df, firstProto, t.src, t.dst);
        this.ipId = (this.ipId + 1) & 0xffff;
        p = off + 20;
      } else {
        writeOuterIpv6(data, off, len - 40, tclass, flow, firstProto, t.src, t.dst);
        p = off + 40;
      }
    } else {
      ver = pIp.version;
      payStart = pIp.payloadOff;
      nh = pIp.proto;
      // Transport: the IP header (options, extension headers) stays; IPsec goes after the last
      // extension header the decoder walked, whose next-header field now names it.
      const hl = pIp.payloadOff - pOff;
      data.set(P.subarray(pOff, pIp.payloadOff), off);
      data[off + (pIp.protoFieldOff - pOff)] = firstProto;
      setIpLength(data, off, off + len);
      p = off + hl;
    }
    L.ver = ver;
    L.udpRel = -1;
    L.ahRel = -1;
    L.espRel = -1;
    if (sa.udp) {
      // RFC 3948 §2.1: UDP right before ESP; checksum 0 (IPv4); IPv6 gets it after encryption.
      L.udpRel = p - off;
      writeUdpHeader(data, p, sa.sport, sa.dport, off + len - p);
      p += 8;
    }
    if (sa.ah) {
      const ahLen = ahHeaderLen(sa.ahIvLen, sa.ahIcvLen, ver);
      L.ahRel = p - off;
      L.ahLen = ahLen;
      writeAhHeader(data, p, sa.esp ? PROTO_ESP : nh, ahLen, sa.ahSpi, seqL);
      p += ahLen;
    }
    const payLen = pEnd - payStart;
    if (sa.esp) {
      L.espRel = p - off;
      writeEspHeader(data, p, sa.espSpi, seqL);
      p += 8;
      if (sa.ivLen) {
        if (sa.counterIv) this.iv.counterIv(data, p, sa.espSalt!, seqH, seqL);
        else this.iv.randomIv(data, p, sa.ivLen, sa.st.bundle.handle, sa.espSpi, seqH, seqL);
        p += sa.ivLen;
      }
      data.set(P.subarray(payStart, pEnd), p);
      p += payLen;
      p = writeEspTrailer(data, p, espPadLen(payLen, sa.padUnit), nh, sa.icvLen);
    } else {
      data.set(P.subarray(payStart, pEnd), p);
      p += payLen;
    }
    L.len = p - off;
    L.seqH = seqH;
    L.seqL = seqL;
  }

  /**
   * The transport layer of transport-over-tunnel, done now on this thread: protect P with `sa`
   * into this.innerBuf / this.innerIp. Returns null, or the failure detail.
   */
  private protectInline(sa: TxSa, P: Uint8Array, pIp: IpInfo): string | null {
    const jobs = this.scratch;
    jobs.reset();
    jobs.ensure(2 * (pIp.end - pIp.off) + 512);
    if (!this.addJob(sa, P, pIp, jobs, this.scratchSide)) return 'inner packet too large for the scratch buffer';
    runJobs(this.localSlots, jobs.data, jobs.meta, 1);
    const res = jobs.meta[J.RESULT]!;
    const er = resultEsp(res);
    const ar = resultAh(res);
    if ((er !== 0 && er !== NOT_RUN) || (ar !== 0 && ar !== NOT_RUN)) return `transport SA ${sa.st.bundle.name}: crypto error${this.slotReason(sa.st)}`;
    const len = jobs.meta[J.LEN]!;
    if (this.innerBuf.length < len) this.innerBuf = Buffer.alloc(len * 2);
    this.finishDatagram(jobs, this.scratchSide, 0, this.innerBuf, 0);
    decodeIp(this.innerBuf, 0, len, this.innerIp);
    return null;
  }

  /**
   * Copy job j's region to dst[dstOff..] and finish it: the real header bytes before AH and the
   * AH Authentication Data ([IV][ICV]) back in place, the UDP checksum of UDP-ESP over IPv6.
   */
  private finishDatagram(jobs: JobBatch, side: JobSide, j: number, dst: Uint8Array, dstOff: number): void {
    const m = jobs.meta;
    const b = j * JOB_FIELDS;
    const off = m[b + J.OFF]!;
    const len = m[b + J.LEN]!;
    const data = jobs.data;
    dst.set(data.subarray(off, off + len), dstOff);
    const save = side.save[j]!;
    if (save >= 0) {
      const ahRel = m[b + J.AH]!;
      dst.set(data.subarray(save, save + ahRel), dstOff);
      const t = this.localSlots.ahOf(m[b + J.AH_SLOT]!);
      const n = t ? t.ivLen + t.icvLen : 0;
      const aux = m[b + J.AUX]!;
      dst.set(data.subarray(aux, aux + n), dstOff + ahRel + 12);
    }
    const u = side.udp[j]!;
    if (u >= 0) setUdpChecksum(dst, dstOff + 8, dstOff + 24, 16, dstOff + u, dstOff + len);
  }

  /** Run a batch's jobs on this thread. */
  runInline(batch: TxBatch): void {
    runJobs(this.localSlots, batch.jobs.data, batch.jobs.meta, batch.jobs.count);
  }

  /** Finish every prepared frame of the batch, in order; calls emit(ctx) for each. */
  process(batch: TxBatch, emit: (c: TxCtx) => void): void {
    for (let k = 0; k < batch.n; k++) {
      const c = batch.ctx[k]!;
      if (c.nJobs > 0) this.processOne(c, batch);
      if (c.out === null) c.out = c.frame.data;
      emit(c);
    }
  }

  private processOne(c: TxCtx, batch: TxBatch): void {
    const jobs = batch.jobs;
    const m = jobs.meta;
    for (let j = c.job; j < c.job + c.nJobs; j++) {
      const res = m[j * JOB_FIELDS + J.RESULT]!;
      const er = resultEsp(res);
      const ar = resultAh(res);
      if ((er !== 0 && er !== NOT_RUN) || (ar !== 0 && ar !== NOT_RUN)) {
        const st = c.tunnelState ?? c.state!;
        this.fail(c, res === WORKER_FAULT ? 'crypto worker failed twice on this batch; frame not protected' : `crypto error${this.slotReason(st)}`);
        return;
      }
    }
    const d = c.frame.data;
    const l3 = c.l2.l3Off;
    for (let j = c.job; j < c.job + c.nJobs; j++) {
      const len = m[j * JOB_FIELDS + J.LEN]!;
      const out = Buffer.allocUnsafe(l3 + len);
      out.set(d.subarray(0, l3), 0);
      this.finishDatagram(jobs, batch.side, j, out, l3);
      // Outer family differs (4-in-6, 6-in-4): fix the link-layer type (rx.ts does the reverse).
      if (!setL2Family(out, c.l2, batch.side.ver[j]!)) c.outRaw = true;
      if (j === c.job) c.out = out;
      else c.extra.push(out);
    }
    c.oob.txStatus = 'encrypted';
    const st = c.state!;
    st.packets += c.nJobs;
    st.bytes += c.frame.data.length - l3;
    if (c.tunnelState) { c.tunnelState.packets += c.nJobs; c.tunnelState.bytes += c.frame.data.length - l3; }
  }

  /** Create the bundle's send template (and transforms on this thread) once. */
  private txSa(st: BundleState): TxSa | string {
    const have = this.sas.get(st.slot);
    if (have !== undefined) return have;
    if (!this.slotDefs.has(st.slot)) {
      const def = st.slotDef();
      this.slotDefs.set(st.slot, def);
      this.localSlots.define(def);
    }
    const broken = this.localSlots.brokenReason(st.slot);
    let r: TxSa | string;
    if (broken !== null) r = `algorithm unusable: ${broken}`;
    else {
      const b = st.bundle;
      if (b.ah && b.udpEncapsulation) r = 'AH cannot be UDP-encapsulated (RFC 3948 carries ESP only)';
      else if (b.mode === 'tunnel' && !b.tunnel) r = 'tunnel mode without tunnel endpoints';
      else if (b.mode === null) r = 'outbound bundle without a mode';
      else r = new TxSa(st, this.localSlots.espOf(st.slot), this.localSlots.ahOf(st.slot), this.iv);
    }
    this.sas.set(st.slot, r);
    return r;
  }

  private unsupported(ip: IpInfo): string | null {
    const nic = this.nic;
    if (ip.version === 4 && ip.options && !nic.ipv4Options) return 'IPv4 options: ipv4Options is false in the NIC profile';
    if (ip.version === 6 && !nic.ipv6) return 'IPv6: ipv6 is false in the NIC profile';
    if (ip.version === 6 && ip.extHeaders && !nic.ipv6NonIpsecExtensionHeaders) return 'IPv6 extension headers: ipv6NonIpsecExtensionHeaders is false in the NIC profile';
    return null;
  }

  private slotReason(st: BundleState): string {
    const r = this.localSlots.brokenReason(st.slot);
    return r ? `: ${r}` : '';
  }

  private status(c: TxCtx, s: TxStatus, detail: string): true {
    c.oob.txStatus = s;
    c.oob.detail = detail;
    return true;
  }

  /** Not protected because of an error: written unchanged, counted as failed. */
  private fail(c: TxCtx, detail: string): true {
    c.oob.txStatus = 'error';
    c.oob.detail = detail;
    c.failed = true;
    c.out = null;
    c.extra.length = 0;
    return true;
  }
}
