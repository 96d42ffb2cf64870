/**
 * Fuzzing harness shared by `npm run fuzz` (long runs) and test/fuzz.test.ts (a short seeded pass
 * in CI). Two levels:
 *  - frames: valid ESP/AH/UDP-ESP/plain frames made with the project's transforms, mutated (bit
 *    flips, truncation, length fields set to extremes, random link types), pushed through every
 *    decoder and through the rx engine with real SAs;
 *  - files: valid pcap/pcapng captures, mutated and truncated (block lengths, section headers,
 *    interface ids, giant snaplen), pushed through the readers and the whole pipeline.
 * Properties: no exception escapes, no hang (per-input time bound), one OOB record per input
 * frame, status codes from the documented set.
 */
import { Readable } from 'node:stream';
import { createEspTransform, createAhTransform } from '../../src/crypto/index.js';
import { parseSaText } from '../../src/sa/load.js';
import type { SaDocument } from '../../src/sa/model.js';
import { decodeL2, L2Info } from '../../src/packet/l2.js';
import { decodeIp, IpInfo } from '../../src/packet/ip.js';
import { IpsecInfo, locateIpsec } from '../../src/packet/ipsec.js';
import { zeroMutableIpv4, zeroMutableIpv6 } from '../../src/packet/mutable.js';
import { RxBatch, RxEngine } from '../../src/offload/rx.js';
import { SaTimeline } from '../../src/pipeline/timeline.js';
import { runReader } from '../../src/pipeline/run.js';
import { openCaptureStream, openSource, CaptureFormatError, type CaptureReader } from '../../src/capture/reader.js';
import type { ByteSource } from '../../src/capture/input.js';
import { createCaptureWriterStream } from '../../src/capture/writer.js';
import type { CaptureFrame } from '../../src/capture/types.js';
import { CRYPTO_STATUS_NAMES, type OobRecord } from '../../src/offload/oob.js';
import { Writable } from 'node:stream';

/** xorshift128+ style PRNG: seedable, fast, good enough for mutation choices. */
export class Prng {
  private a: number;
  private b: number;
  constructor(seed: number) {
    this.a = (seed ^ 0x9e3779b9) >>> 0 || 1;
    this.b = (seed * 0x85ebca6b) >>> 0 || 2;
  }
  u32(): number {
    let x = this.a;
    const y = this.b;
    this.a = y;
    x ^= x << 23;
    x ^= x >>> 17;
    x ^= y ^ (y >>> 26);
    this.b = x >>> 0;
    return (this.a + this.b) >>> 0;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

const GCM_KEY = '000102030405060708090a0b0c0d0e0f11223344';
const CBC_KEY = '101112131415161718191a1b1c1d1e1f';
const SHA1_KEY = '202122232425262728292a2b2c2d2e2f30313233';
const SHA256_KEY = '303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f';

export const FUZZ_SA_YAML = `version: 1
sas:
  - name: gcm-tun
    mode: tunnel
    tunnel: { src: 192.0.2.2, dst: 192.0.2.1 }
    esp: { spi: 0x0000c001, encryption: aes-gcm-128, encryptionKey: "${GCM_KEY}" }
  - name: cbc-tp
    mode: transport
    esp: { spi: 0x0000c002, encryption: aes-cbc-128, encryptionKey: "${CBC_KEY}", integrity: hmac-sha1-96, integrityKey: "${SHA1_KEY}" }
  - name: ah-tp
    mode: transport
    ah: { spi: 0x0000a001, integrity: hmac-sha256-128, integrityKey: "${SHA256_KEY}" }
  - name: natt
    mode: transport
    udpEncapsulation: { type: transport, srcPort: 4500, dstPort: 4500 }
    esp: { spi: 0x0000c003, encryption: aes-gcm-128, encryptionKey: "${GCM_KEY}" }
`;

export function fuzzSa(): SaDocument {
  return parseSaText(FUZZ_SA_YAML, 'fuzz-sas.yaml');
}

function csum(d: Buffer, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (d[off + i]! << 8) | (d[off + i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function ipv4(src: number[], dst: number[], proto: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h[8] = 64;
  h[9] = proto;
  h.set(src, 12);
  h.set(dst, 16);
  h.writeUInt16BE(csum(h, 0, 20), 10);
  return Buffer.concat([h, payload]);
}

function ipv6(src: number, dst: number, nh: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(payload.length, 4);
  h[6] = nh;
  h[7] = 64;
  h[8] = 0x20;
  h[9] = 0x01;
  h[23] = src;
  h[24] = 0x20;
  h[25] = 0x01;
  h[39] = dst;
  return Buffer.concat([h, payload]);
}

function ether(ip: Buffer, v6 = false): Buffer {
  const e = Buffer.alloc(14);
  e.writeUInt16BE(v6 ? 0x86dd : 0x0800, 12);
  return Buffer.concat([e, ip]);
}

/** ESP packet (SPI..ICV) sealing `pt` (payload) with next header `nh`. */
function esp(algo: 'gcm' | 'cbc', spi: number, seq: number, pt: Buffer, nh: number): Buffer {
  const t = algo === 'gcm'
    ? createEspTransform({ encryption: 'aes-gcm-128', encryptionKey: Buffer.from(GCM_KEY, 'hex'), integrity: 'none', integrityKey: Buffer.alloc(0), icvLength: 16 })
    : createEspTransform({ encryption: 'aes-cbc-128', encryptionKey: Buffer.from(CBC_KEY, 'hex'), integrity: 'hmac-sha1-96', integrityKey: Buffer.from(SHA1_KEY, 'hex'), icvLength: 12 });
  const unit = t.padUnit;
  const padLen = (unit - ((pt.length + 2) % unit)) % unit;
  const len = 8 + t.ivLen + pt.length + padLen + 2 + t.icvLen;
  const b = Buffer.alloc(len);
  b.writeUInt32BE(spi, 0);
  b.writeUInt32BE(seq, 4);
  for (let i = 0; i < t.ivLen; i++) b[8 + i] = (seq * 7 + i) & 0xff;
  pt.copy(b, 8 + t.ivLen);
  let p = 8 + t.ivLen + pt.length;
  for (let i = 1; i <= padLen; i++) b[p++] = i;
  b[p++] = padLen;
  b[p++] = nh;
  t.seal(b, 0, len, -1);
  return b;
}

/** A corpus of valid frames (Ethernet) the fuzz SA file matches, plus plain traffic. */
export function corpus(): Buffer[] {
  const out: Buffer[] = [];
  const udp = (n: number): Buffer => {
    const u = Buffer.alloc(8 + n);
    u.writeUInt16BE(1000, 0);
    u.writeUInt16BE(2000, 2);
    u.writeUInt16BE(8 + n, 4);
    return u;
  };
  for (let seq = 1; seq <= 4; seq++) {
    const inner = ipv4([10, 2, 0, 5], [10, 1, 0, 7], 17, udp(seq * 13));
    out.push(ether(ipv4([192, 0, 2, 2], [192, 0, 2, 1], 50, esp('gcm', 0xc001, seq, inner, 4))));
    out.push(ether(ipv4([10, 0, 0, 1], [10, 0, 0, 2], 50, esp('cbc', 0xc002, seq, udp(seq * 31), 17))));
    const natt = esp('gcm', 0xc003, seq, udp(seq), 17);
    const u = Buffer.alloc(8);
    u.writeUInt16BE(4500, 0);
    u.writeUInt16BE(4500, 2);
    u.writeUInt16BE(8 + natt.length, 4);
    out.push(ether(ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, Buffer.concat([u, natt]))));
    // AH transport over ICMP-like payload (IPv4)
    const ah = ahPacket(seq);
    out.push(ether(ah));
    out.push(ether(ipv6(1, 2, 17, udp(seq * 5)), true));
    out.push(ether(ipv4([10, 0, 0, 1], [10, 0, 0, 2], 6, Buffer.alloc(20 + seq))));
  }
  return out;
}

function ahPacket(seq: number): Buffer {
  const t = createAhTransform({ integrity: 'hmac-sha256-128', integrityKey: Buffer.from(SHA256_KEY, 'hex'), icvLength: 16 });
  const payload = Buffer.alloc(16 + seq, 0x41);
  const ahLen = 12 + 16;
  const ah = Buffer.alloc(ahLen);
  ah[0] = 1; // ICMP
  ah[1] = ahLen / 4 - 2;
  ah.writeUInt32BE(0xa001, 4);
  ah.writeUInt32BE(seq, 8);
  const pkt = ipv4([10, 0, 0, 1], [10, 0, 0, 2], 51, Buffer.concat([ah, payload]));
  const z = Buffer.from(pkt);
  zeroMutableIpv4(z, 0);
  const icv = Buffer.alloc(16);
  t.compute([z], -1, null, icv, 0);
  icv.copy(pkt, 20 + 12);
  return pkt;
}

/** Mutate a frame: bit flips, truncation, extreme length fields, byte stomps. */
export function mutateFrame(r: Prng, f: Buffer): Buffer {
  let b = Buffer.from(f);
  const n = 1 + r.int(4);
  for (let k = 0; k < n; k++) {
    const op = r.int(6);
    if (b.length === 0) break;
    if (op === 0) b[r.int(b.length)]! ^= 1 << r.int(8);
    else if (op === 1) b = b.subarray(0, r.int(b.length + 1));
    else if (op === 2) {
      // a 16-bit field somewhere in the headers set to an extreme
      const o = r.int(Math.min(b.length - 1, 80) + 1);
      const v = [0, 1, 0xffff, 0x7fff, 20, 40][r.int(6)]!;
      if (o + 1 < b.length) b.writeUInt16BE(v, o);
    } else if (op === 3) b[r.int(b.length)] = [0, 0xff, 0x45, 0x60, 50, 51, 17][r.int(7)]!;
    else if (op === 4) b = Buffer.concat([b, r.bytes(r.int(64))]);
    else b[14 + r.int(Math.max(1, b.length - 14))] = r.u32() & 0xff;
  }
  return b;
}

const LINK_TYPES = [1, 1, 1, 101, 228, 229, 113, 276, 0, 147, 12];
const STATUS_SET = new Set(CRYPTO_STATUS_NAMES);

export interface FrameFuzzResult {
  iterations: number;
  frames: number;
  statuses: Record<string, number>;
  maxFrameMs: number;
}

/**
 * Frame-level fuzzing: `iterations` mutated frames, in batches, through the decoders and the rx
 * engine (crypto inline). Throws on the first property violation (with the seed and iteration).
 */
export function fuzzFrames(seed: number, iterations: number, onProgress?: (done: number) => void): FrameFuzzResult {
  const r = new Prng(seed);
  const base = corpus();
  const sa = fuzzSa();
  const timeline = new SaTimeline(sa, null, []);
  const env = { applyEvents: () => false, states: () => timeline.states(), tsIso: () => '' };
  const engine = new RxEngine(sa.nic, { inPlace: false, anyDirection: false, esn: 'infer', replayWindow: null, natPorts: null }, env);
  const inPlace = new RxEngine(sa.nic, { inPlace: true, anyDirection: false, esn: 'infer', replayWindow: null, natPorts: null }, env);
  const l2 = new L2Info();
  const ip = new IpInfo();
  const ips = new IpsecInfo();
  const statuses: Record<string, number> = {};
  let maxMs = 0;
  const B = 256;
  const batch = new RxBatch();
  for (let done = 0; done < iterations; ) {
    const n = Math.min(B, iterations - done);
    const frames: CaptureFrame[] = [];
    for (let i = 0; i < n; i++) {
      const src = base[r.int(base.length)]!;
      const data = r.int(8) === 0 ? src : mutateFrame(r, src);
      const ifId = r.int(LINK_TYPES.length);
      frames.push({ index: done + i + 1, ifId, tsHi: 0, tsLo: 0, data, origLen: data.length, comment: null, epbFlags: null });
      // decoders on their own, including on a random link type
      const lt = LINK_TYPES[ifId]!;
      decodeL2(lt, data, l2);
      if (l2.l3Off >= 0) {
        decodeIp(data, l2.l3Off, data.length, ip);
        if (ip.version) {
          locateIpsec(data, ip, null, ips);
          const copy = Buffer.from(data);
          if (ip.version === 4 && ip.error === 0) zeroMutableIpv4(copy, ip.off);
          if (ip.version === 6 && ip.error === 0) zeroMutableIpv6(copy, ip.off, ip.payloadOff);
        }
      }
    }
    for (const e of [engine, inPlace]) {
      e.linkTypes = LINK_TYPES;
      const t0 = performance.now();
      let emitted = 0;
      for (let i = 0; i < frames.length; ) {
        const took = e.prepare(frames, i, batch);
        if (took <= 0) throw new Error(`fuzz seed ${seed}: prepare made no progress at iteration ${done + i}`);
        e.runInline(batch);
        e.process(batch, (c) => {
          emitted++;
          const o: OobRecord = c.oob;
          const name = CRYPTO_STATUS_NAMES[o.cryptoStatus];
          if (name === undefined || !STATUS_SET.has(name)) throw new Error(`fuzz seed ${seed}: status ${o.cryptoStatus} outside the documented set (frame ${o.frame})`);
          if (o.cryptoDone === 0 && o.cryptoStatus !== 0) throw new Error(`fuzz seed ${seed}: cryptoDone 0 with status ${name} (frame ${o.frame})`);
          if (!(c.out instanceof Uint8Array)) throw new Error(`fuzz seed ${seed}: no output for frame ${o.frame}`);
          const k = o.cryptoDone ? name : 'not-processed';
          statuses[k] = (statuses[k] ?? 0) + 1;
        });
        i += took;
      }
      const ms = performance.now() - t0;
      maxMs = Math.max(maxMs, ms / frames.length);
      if (emitted !== frames.length) throw new Error(`fuzz seed ${seed}: ${frames.length} frames in, ${emitted} records out`);
    }
    done += n;
    onProgress?.(done);
  }
  return { iterations, frames: iterations * 2, statuses, maxFrameMs: maxMs };
}

/** Write frames as a capture (pcap or pcapng) into a Buffer with the project's writer. */
export async function captureBytes(frames: Buffer[], format: 'pcap' | 'pcapng'): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { parts.push(Buffer.from(chunk)); cb(); } });
  const w = createCaptureWriterStream(sink, { format });
  const id = w.addInterface({ linkType: 1, snapLen: 65535, name: 'fuzz0', description: null, tsResol: 6, tsOffset: 0 });
  frames.forEach((f, i) => w.writeFrame(id, 0, i * 1000, f, f.length, format === 'pcapng' ? `frame ${i}` : null));
  await w.close();
  await new Promise<void>((res) => sink.end(res));
  return Buffer.concat(parts);
}

/** Mutate a whole capture file. */
export function mutateFile(r: Prng, f: Buffer): Buffer {
  let b = Buffer.from(f);
  const op = r.int(7);
  if (op === 0) return b.subarray(0, r.int(b.length + 1));
  if (op === 1) {
    // a 32-bit length-like field set to an extreme (block length, caplen, snaplen, if id)
    const o = r.int(Math.max(1, b.length - 4)) & ~3;
    const v = [0, 1, 3, 12, 0xffffffff, 0x7fffffff, 0x40000, 0x10000000][r.int(8)]!;
    if (o + 4 <= b.length) (r.int(2) ? b.writeUInt32LE(v, o) : b.writeUInt32BE(v, o));
    return b;
  }
  if (op === 2) { for (let k = 0; k < 1 + r.int(8); k++) b[r.int(b.length)]! ^= 1 << r.int(8); return b; }
  if (op === 3) return Buffer.concat([b, r.bytes(r.int(200))]);
  if (op === 4) { const o = r.int(b.length); b = Buffer.concat([b.subarray(0, o), r.bytes(r.int(40)), b.subarray(o)]); return b; }
  if (op === 5) { if (b.length > 28) b.writeUInt32LE([0xffffffff, 0, 1, 0x7fffffff][r.int(4)]!, 16 + (r.int(2) ? 0 : 4)); return b; }
  // second section header / duplicated start
  return Buffer.concat([b, f.subarray(0, Math.min(f.length, 28 + r.int(200)))]);
}

/**
 * Bytes served in pieces of random sizes, each read settled a turn of the event loop later, by a
 * source that reads ahead (as a pipe read from its descriptor: capture/input.ts, FdSource).
 */
class PiecesSource implements ByteSource {
  readonly readsAhead = true;
  private at = 0;
  constructor(private readonly data: Buffer, private readonly r: Prng) {}
  read(target: Buffer, offset: number, length: number): Promise<number> {
    const n = Math.min(length, 1 + this.r.int(this.r.int(2) ? 70000 : 300), this.data.length - this.at);
    this.data.copy(target, offset, this.at, this.at + n);
    this.at += n;
    return new Promise((res) => setImmediate(() => res(n)));
  }
  async skip(n: number): Promise<number> {
    const k = Math.min(n, this.data.length - this.at);
    this.at += k;
    return k;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Every frame's bytes and the reader's verdicts, through nextBatch of random sizes. */
async function readAll(reader: CaptureReader, r: Prng): Promise<string> {
  const parts: string[] = [];
  for (let b = await reader.nextBatch(1 + r.int(300)); b; b = await reader.nextBatch(1 + r.int(300))) {
    for (const f of b) parts.push(`${f.tsHi}.${f.tsLo}:${f.origLen}:${Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length).toString('hex')}`);
  }
  parts.push(`truncated=${reader.truncated} skipped=${reader.skippedRecords} warnings=${reader.warnings.map((w) => `${w.offset}:${w.message}`).join('|')}`);
  await reader.close();
  return parts.join('\n');
}

export interface FileFuzzResult {
  files: number;
  rejected: number;
  frames: number;
  maxFileMs: number;
}

/** File-level fuzzing through the reader and the whole rx pipeline (in memory). */
export async function fuzzFiles(seed: number, files: number, onProgress?: (done: number) => void): Promise<FileFuzzResult> {
  const r = new Prng(seed);
  const base = corpus();
  const seeds = [await captureBytes(base, 'pcap'), await captureBytes(base, 'pcapng')];
  const sa = fuzzSa();
  let rejected = 0;
  let frames = 0;
  let maxMs = 0;
  for (let i = 0; i < files; i++) {
    const src = seeds[r.int(seeds.length)]!;
    const bytes = mutateFile(r, src);
    const t0 = performance.now();
    // the same bytes through a source that reads ahead in random pieces: the same frames and
    // verdicts; a small maximum frame length, so that records are skipped with reads in flight
    if (i % 3 === 0) {
      const o = { maxFrameLen: 40 + ((i * 37) % 400) };
      const open = (s: ByteSource | null): Promise<CaptureReader> => (s ? openSource(s, `fuzz#${i}`, null, o) : openCaptureStream(Readable.from([bytes]), `fuzz#${i}`, o));
      const a = await open(null).then((rd) => readAll(rd, new Prng(i)), (e: Error) => `open: ${e.message}`);
      const b = await open(new PiecesSource(bytes, new Prng(seed * 7919 + i))).then((rd) => readAll(rd, new Prng(i)), (e: Error) => `open: ${e.message}`);
      if (a !== b) throw new Error(`file fuzz seed ${seed} #${i}: read ahead in pieces differs from one chunk`);
    }
    let reader;
    try {
      reader = await openCaptureStream(Readable.from([bytes.subarray(0, Math.floor(bytes.length / 2)), bytes.subarray(Math.floor(bytes.length / 2))]), `fuzz#${i}`, { maxFrameLen: 65536 });
    } catch (e) {
      if (e instanceof CaptureFormatError) { rejected++; continue; }
      throw new Error(`file fuzz seed ${seed} #${i}: open threw ${(e as Error).stack}`);
    }
    let records = 0;
    const res = await runReader(reader, {
      path: 'rx', input: `fuzz#${i}`, output: null, oob: null, format: 'pcapng', sa, inPlace: false, dropFailed: false,
      anyDirection: false, esn: 'infer', replayWindow: null, workers: 0, ivSeed: null, mtu: 1500, progress: false,
      onRecord: () => { records++; },
    }).catch((e: Error) => { throw new Error(`file fuzz seed ${seed} #${i}: pipeline threw ${e.stack}`); });
    if (records !== res.stats.framesIn) throw new Error(`file fuzz seed ${seed} #${i}: ${res.stats.framesIn} frames read, ${records} records`);
    frames += records;
    const ms = performance.now() - t0;
    maxMs = Math.max(maxMs, ms);
    if (ms > 5000) throw new Error(`file fuzz seed ${seed} #${i}: took ${ms.toFixed(0)} ms (hang?)`);
    onProgress?.(i + 1);
  }
  return { files, rejected, frames, maxFileMs: maxMs };
}
