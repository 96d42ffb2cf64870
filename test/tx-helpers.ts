/**
 * Helpers of the send-path tests: a seeded PRNG, random IPv4/IPv6 TCP/UDP/ICMP packets, SA
 * documents built in code, and the engines driven directly (prepare → runJobs on a separate slot
 * table, as a worker would → process).
 */
import type { CaptureFrame } from '../src/capture/types.js';
import type { Bundle, EspSa, AhSa, SaDocument, UdpEncap } from '../src/sa/model.js';
import { nicProfile, decideOffload } from '../src/sa/nic.js';
import { ENCRYPTION, INTEGRITY } from '../src/crypto/registry.js';
import { SaTimeline } from '../src/pipeline/timeline.js';
import { RxBatch, RxEngine, type RxEnv } from '../src/offload/rx.js';
import { TxBatch, TxEngine } from '../src/offload/tx.js';
import { runJobs, SlotTable } from '../src/offload/jobs.js';
import { fixIpv4Checksum, foldSum, onesSum } from '../src/packet/ip.js';
import { setL4Checksum } from '../src/packet/build.js';
import type { OobRecord } from '../src/offload/oob.js';

/** mulberry32: small, seeded, good enough for test traffic. */
export class Prng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  int(n: number): number { return this.u32() % n; }
  bytes(n: number): Buffer { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff; return b; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
}

export const V4_SRC = Buffer.from([10, 1, 0, 1]);
export const V4_DST = Buffer.from([10, 2, 0, 1]);
export const V6_SRC = Buffer.from('20010db8000100000000000000000001', 'hex');
export const V6_DST = Buffer.from('20010db8000200000000000000000001', 'hex');

export interface PacketSpec {
  family: 4 | 6;
  proto: 'tcp' | 'udp' | 'icmp';
  payloadLen: number;
  sport?: number;
  dport?: number;
  /** IPv4 DF flag. */
  df?: boolean;
  tos?: number;
  /** TCP flags (default ACK|PSH). */
  tcpFlags?: number;
  tcpSeq?: number;
  /** IPv4 options (router alert) / IPv6 hop-by-hop header. */
  options?: boolean;
  src?: Buffer;
  dst?: Buffer;
}

/** An IP datagram with valid IPv4 header and transport checksums. */
export function ipPacket(r: Prng, p: PacketSpec): Buffer {
  const payload = r.bytes(p.payloadLen);
  let l4: Buffer;
  const l4proto = p.proto === 'tcp' ? 6 : p.proto === 'udp' ? 17 : p.family === 4 ? 1 : 58;
  if (p.proto === 'tcp') {
    const optWords = r.int(3);
    l4 = Buffer.alloc(20 + optWords * 4 + payload.length);
    l4.writeUInt16BE(p.sport ?? 1024 + r.int(60000), 0);
    l4.writeUInt16BE(p.dport ?? 1 + r.int(65000), 2);
    l4.writeUInt32BE(p.tcpSeq ?? r.u32(), 4);
    l4.writeUInt32BE(r.u32(), 8);
    l4[12] = (5 + optWords) << 4;
    l4[13] = p.tcpFlags ?? 0x18;
    l4.writeUInt16BE(r.int(65536), 14);
    for (let i = 0; i < optWords * 4; i++) l4[20 + i] = 1; // NOPs
    payload.copy(l4, 20 + optWords * 4);
  } else if (p.proto === 'udp') {
    l4 = Buffer.alloc(8 + payload.length);
    l4.writeUInt16BE(p.sport ?? 1024 + r.int(60000), 0);
    l4.writeUInt16BE(p.dport ?? 1 + r.int(65000), 2);
    l4.writeUInt16BE(l4.length, 4);
    payload.copy(l4, 8);
  } else {
    l4 = Buffer.alloc(8 + payload.length);
    l4[0] = p.family === 4 ? 8 : 128; // echo request
    l4.writeUInt16BE(r.int(65536), 4);
    l4.writeUInt16BE(r.int(65536), 6);
    payload.copy(l4, 8);
  }
  const src = p.src ?? (p.family === 4 ? V4_SRC : V6_SRC);
  const dst = p.dst ?? (p.family === 4 ? V4_DST : V6_DST);
  let pkt: Buffer;
  let l4Off: number;
  if (p.family === 4) {
    const opt = p.options ? Buffer.from([0x94, 0x04, 0x00, 0x00]) : Buffer.alloc(0); // router alert
    const hl = 20 + opt.length;
    pkt = Buffer.alloc(hl + l4.length);
    pkt[0] = 0x40 | (hl / 4);
    pkt[1] = p.tos ?? r.int(256);
    pkt.writeUInt16BE(pkt.length, 2);
    pkt.writeUInt16BE(r.int(65536), 4);
    pkt[6] = (p.df ?? r.int(2) === 1) ? 0x40 : 0;
    pkt[8] = 1 + r.int(255);
    pkt[9] = l4proto;
    src.copy(pkt, 12);
    dst.copy(pkt, 16);
    opt.copy(pkt, 20);
    l4.copy(pkt, hl);
    fixIpv4Checksum(pkt, 0);
    l4Off = hl;
  } else {
    const hbh = p.options ? Buffer.from([l4proto, 0, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00]) : Buffer.alloc(0); // router alert + PadN
    pkt = Buffer.alloc(40 + hbh.length + l4.length);
    const tc = p.tos ?? r.int(256);
    const flow = r.int(1 << 20);
    pkt[0] = 0x60 | (tc >> 4);
    pkt[1] = ((tc & 15) << 4) | (flow >> 16);
    pkt.writeUInt16BE(flow & 0xffff, 2);
    pkt.writeUInt16BE(hbh.length + l4.length, 4);
    pkt[6] = p.options ? 0 : l4proto;
    pkt[7] = 1 + r.int(255);
    src.copy(pkt, 8);
    dst.copy(pkt, 24);
    hbh.copy(pkt, 40);
    l4.copy(pkt, 40 + hbh.length);
    l4Off = 40 + hbh.length;
  }
  const srcOff = p.family === 4 ? 12 : 8;
  const dstOff = p.family === 4 ? 16 : 24;
  const alen = p.family === 4 ? 4 : 16;
  if (p.proto === 'tcp') setL4Checksum(pkt, srcOff, dstOff, alen, 6, l4Off, pkt.length, 16);
  else if (p.proto === 'udp') setL4Checksum(pkt, srcOff, dstOff, alen, 17, l4Off, pkt.length, 6);
  else if (p.family === 6) setL4Checksum(pkt, srcOff, dstOff, alen, 58, l4Off, pkt.length, 2);
  else pkt.writeUInt16BE(~foldSum(onesSum(pkt, l4Off, pkt.length)) & 0xffff, l4Off + 2); // ICMP: no pseudo-header
  return pkt;
}

/** Ethernet II frame around an IP datagram. */
export function ether(ip: Buffer): Buffer {
  const f = Buffer.alloc(14 + ip.length);
  Buffer.from('020000000002020000000001', 'hex').copy(f, 0);
  f.writeUInt16BE(ip[0]! >> 4 === 4 ? 0x0800 : 0x86dd, 12);
  ip.copy(f, 14);
  return f;
}

export function randomPacket(r: Prng, family: 4 | 6, maxPayload = 300): Buffer {
  return ipPacket(r, { family, proto: r.pick(['tcp', 'udp', 'icmp'] as const), payloadLen: r.int(maxPayload + 1), options: r.int(5) === 0 });
}

export function frames(datas: Buffer[]): CaptureFrame[] {
  return datas.map((data, i) => ({ index: i + 1, ifId: 0, tsHi: 0, tsLo: i, data, origLen: data.length, comment: null, epbFlags: null }));
}

export function keyFor(r: Prng, n: number): Buffer {
  return r.bytes(n);
}

/** ESP member for (encryption, integrity) with random keys of the right sizes. */
export function espSa(r: Prng, spi: number, encryption: string, integrity: string, icvLength?: number): EspSa {
  const enc = ENCRYPTION[encryption]!;
  const integ = INTEGRITY[integrity]!;
  return {
    spi,
    encryption,
    encryptionKey: keyFor(r, enc.keyLen + enc.saltLen),
    integrity,
    integrityKey: keyFor(r, integ.keyLen + integ.saltLen),
    icvLength: enc.aead ? (icvLength ?? enc.icvLengths[0]!) : integ.icvLen,
  };
}

export function ahSa(r: Prng, spi: number, integrity: string): AhSa {
  const integ = INTEGRITY[integrity]!;
  return { spi, integrity, integrityKey: keyFor(r, integ.keyLen + integ.saltLen), icvLength: integ.icvLen };
}

export interface BundleOpts {
  name: string;
  handle: number;
  mode: 'transport' | 'tunnel';
  esp?: EspSa | null;
  ah?: AhSa | null;
  tunnelFamily?: 4 | 6;
  udp?: UdpEncap | null;
  esn?: boolean;
  next?: number;
  high?: number;
  over?: string | null;
  selector?: Partial<Bundle['selector']>;
  direction?: 'inbound' | 'outbound';
}

export const T4_SRC = Buffer.from([192, 0, 2, 1]);
export const T4_DST = Buffer.from([192, 0, 2, 2]);
export const T6_SRC = Buffer.from('20010db8ffff00000000000000000001', 'hex');
export const T6_DST = Buffer.from('20010db8ffff00000000000000000002', 'hex');

export function bundle(o: BundleOpts): Bundle {
  const tf = o.tunnelFamily ?? 4;
  return {
    name: o.name,
    handle: o.handle,
    direction: o.direction ?? 'outbound',
    mode: o.mode,
    over: o.over ?? null,
    selector: { src: null, dst: null, protocol: null, srcPort: null, dstPort: null, ...o.selector },
    tunnel: o.mode === 'tunnel' ? { family: tf, src: tf === 4 ? T4_SRC : T6_SRC, dst: tf === 4 ? T4_DST : T6_DST } : null,
    udpEncapsulation: o.udp ?? null,
    esn: o.esn ?? false,
    replayWindow: 64,
    sequence: { next: o.next ?? 1, high: o.high ?? 0 },
    lifetime: { packets: null, bytes: null },
    esp: o.esp ?? null,
    ah: o.ah ?? null,
    offloaded: false,
    notOffloadedReason: null,
  };
}

export function saDoc(bundles: Bundle[], nic = nicProfile('full')): SaDocument {
  const doc: SaDocument = { file: 'test', nic, bundles, events: [], warnings: [] };
  decideOffload(doc);
  return doc;
}

export function envFor(t: SaTimeline): RxEnv {
  return { applyEvents: (f) => t.apply(f.index, 0n), states: () => t.states(), tsIso: () => '' };
}

export interface TxResult {
  /** Output frames per input frame: [out, ...extra]. */
  outs: Buffer[][];
  oob: OobRecord[];
  raw: boolean[];
}

function copyOob(r: OobRecord): OobRecord {
  return Object.assign(Object.create(Object.getPrototypeOf(r)) as OobRecord, r);
}

/** Run the send engine over frames (link type `linkType`), crypto on a separate slot table. */
export function runTx(doc: SaDocument, input: Buffer[], opts: { ivSeed?: string | null; mtu?: number; linkType?: number; batch?: number } = {}): TxResult {
  const t = new SaTimeline(doc, null, []);
  const eng = new TxEngine(doc, { ivSeed: opts.ivSeed ?? null, mtu: opts.mtu ?? 1500 }, envFor(t), t);
  eng.linkTypes = [opts.linkType ?? 1];
  const table = new SlotTable();
  const fr = frames(input);
  const res: TxResult = { outs: [], oob: [], raw: [] };
  const batch = new TxBatch();
  const per = opts.batch ?? 512;
  for (let i = 0; i < fr.length; ) {
    const slice = fr.slice(i, Math.min(fr.length, i + per));
    let k = 0;
    while (k < slice.length) {
      const n = eng.prepare(slice, k, batch);
      for (const [s, def] of eng.slotDefs) if (!table.has(s)) table.define(def);
      runJobs(table, batch.jobs.data, batch.jobs.meta, batch.jobs.count);
      eng.process(batch, (c) => {
        res.outs.push([Buffer.from(c.out!), ...c.extra.map((e) => Buffer.from(e))]);
        res.oob.push(copyOob(c.oob));
        res.raw.push(c.outRaw);
      });
      k += n;
    }
    i += slice.length;
  }
  return res;
}

export interface RxResult { outs: Buffer[]; oob: OobRecord[] }

/** Run the receive engine (default host view) over frames, using outbound SAs too. */
export function runRx(doc: SaDocument, input: Buffer[], linkType = 1): RxResult {
  const t = new SaTimeline(doc, null, []);
  const eng = new RxEngine(doc.nic, { inPlace: false, anyDirection: true, esn: 'infer', replayWindow: null, natPorts: t.natPorts }, envFor(t));
  eng.linkTypes = [linkType];
  const fr = frames(input);
  const res: RxResult = { outs: [], oob: [] };
  const batch = new RxBatch();
  for (let k = 0; k < fr.length; ) {
    const n = eng.prepare(fr, k, batch);
    eng.runInline(batch);
    eng.process(batch, (c) => { res.outs.push(Buffer.from(c.out!)); res.oob.push(copyOob(c.oob)); });
    k += n;
  }
  return res;
}

/** Every (encryption, integrity[, icv]) pair the registry allows for ESP. */
export function espSuites(): { encryption: string; integrity: string; icv?: number }[] {
  const out: { encryption: string; integrity: string; icv?: number }[] = [];
  for (const enc of Object.values(ENCRYPTION)) {
    if (enc.aead) { for (const icv of enc.icvLengths) out.push({ encryption: enc.name, integrity: 'none', icv }); continue; }
    for (const integ of Object.values(INTEGRITY)) {
      if (integ.kind === 'gmac' && enc.name !== 'null') continue;
      if (integ.kind === 'none' && enc.name === 'null') continue;
      out.push({ encryption: enc.name, integrity: integ.name });
    }
  }
  return out;
}

export function ahSuites(): string[] {
  return Object.values(INTEGRITY).filter((i) => i.kind !== 'none').map((i) => i.name);
}

/** Classic pcap (microseconds, little-endian) of `frames` with one link type. */
export function pcapBytes(datas: Buffer[], linkType = 1): Buffer {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(262144, 16);
  gh.writeUInt32LE(linkType, 20);
  parts.push(gh);
  datas.forEach((d, i) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(1700000000 + i, 0);
    h.writeUInt32LE(d.length, 8);
    h.writeUInt32LE(d.length, 12);
    parts.push(h, d);
  });
  return Buffer.concat(parts);
}
