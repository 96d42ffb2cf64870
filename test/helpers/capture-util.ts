/**
 * Test helpers for the capture layer: fixture lookup, a seeded PRNG, in-memory capture builders
 * (written independently of src/capture's encoders, from the drafts), and small stream tools.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { CaptureFrame } from '../../src/capture/types.js';
import type { CaptureReader } from '../../src/capture/reader.js';

/** Repository root: the nearest ancestor of this file holding package.json. */
export function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    d = up;
  }
  return d;
}

export const FIXTURES = join(repoRoot(), 'fixtures', 'capture');

export interface ManifestFrame {
  epoch: string | null;
  capLen: number;
  len: number;
  ifId: number;
  comments: string[];
  md5: string;
}
export interface ManifestEntry {
  format: 'pcap' | 'pcapng';
  tool: string;
  linkTypes: number[];
  frames: ManifestFrame[];
  truncated?: boolean;
}

export function loadManifest(): Record<string, ManifestEntry> {
  return JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Record<string, ManifestEntry>;
}

/** mulberry32: small, seedable, good enough to drive fuzzing. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Read every frame (copying data, so later assertions do not depend on chunk lifetimes). */
export async function readAll(r: CaptureReader, batch = 64): Promise<CaptureFrame[]> {
  const all: CaptureFrame[] = [];
  for (let b = await r.nextBatch(batch); b !== null; b = await r.nextBatch(batch)) {
    for (const f of b) all.push({ ...f, data: Buffer.from(f.data) });
  }
  await r.close();
  return all;
}

/** An async iterable that yields `bytes` in pieces of random sizes in [min, max]. */
export async function* chunked(bytes: Uint8Array, min: number, max: number, seed = 1): AsyncGenerator<Buffer> {
  const rnd = prng(seed);
  let o = 0;
  while (o < bytes.length) {
    const n = min + Math.floor(rnd() * (max - min + 1));
    yield Buffer.from(bytes.subarray(o, o + n));
    o += n;
    if ((o & 7) === 0) await Promise.resolve();
  }
}

/** A Writable collecting everything written to it. */
export function collector(): { stream: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      parts.push(Buffer.from(chunk));
      cb();
    },
  });
  return { stream, bytes: () => Buffer.concat(parts) };
}

export function readableOf(b: Uint8Array): Readable {
  return Readable.from([Buffer.from(b)]);
}

export function hasTool(name: string): boolean {
  return spawnSync(name, ['-v'], { stdio: 'ignore' }).status === 0;
}

// --- independent builders (from draft-ietf-opsawg-pcap / -pcapng) ---------------------------

export interface BuildFrame {
  sec: number;
  frac: number;
  data: Uint8Array;
  orig?: number;
}

export function buildPcap(frames: BuildFrame[], o: { le?: boolean; nano?: boolean; linkType?: number; snap?: number } = {}): Buffer {
  const le = o.le ?? true;
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  const u32 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at));
  const u16 = (b: Buffer, v: number, at: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  u32(h, o.nano ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  u16(h, 2, 4);
  u16(h, 4, 6);
  u32(h, o.snap ?? 65535, 16);
  u32(h, o.linkType ?? 1, 20);
  parts.push(h);
  for (const f of frames) {
    const r = Buffer.alloc(16);
    u32(r, f.sec, 0);
    u32(r, f.frac, 4);
    u32(r, f.data.length, 8);
    u32(r, f.orig ?? f.data.length, 12);
    parts.push(r, Buffer.from(f.data));
  }
  return Buffer.concat(parts);
}

/** pcapng block builder in either byte order. */
export class NgBuilder {
  private readonly parts: Buffer[] = [];
  private size = 0;
  /** End offset of every packet block (EPB, SPB) added so far. */
  readonly packetEnds: number[] = [];
  /** End offset of every block added so far. */
  readonly blockEnds: number[] = [];
  constructor(private le = true) {}
  private u32(v: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.le) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
    return b;
  }
  private u16(v: number): Buffer {
    const b = Buffer.alloc(2);
    if (this.le) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    return b;
  }
  static pad(b: Uint8Array): Buffer {
    return Buffer.concat([Buffer.from(b), Buffer.alloc((4 - (b.length % 4)) % 4)]);
  }
  options(opts: Array<[number, Uint8Array]>): Buffer {
    if (opts.length === 0) return Buffer.alloc(0);
    return Buffer.concat([...opts.flatMap(([c, v]) => [this.u16(c), this.u16(v.length), NgBuilder.pad(v)]), Buffer.alloc(4)]);
  }
  raw(type: number, body: Uint8Array, lenOverride?: number, trailerOverride?: number): this {
    const len = 12 + body.length;
    this.size += len;
    this.blockEnds.push(this.size);
    if (type === 6 || type === 3 || type === 2) this.packetEnds.push(this.size);
    this.parts.push(this.u32(type), this.u32(lenOverride ?? len), Buffer.from(body), this.u32(trailerOverride ?? len));
    return this;
  }
  shb(le = this.le, major = 1): this {
    this.le = le;
    return this.raw(0x0a0d0d0a, Buffer.concat([this.u32(0x1a2b3c4d), this.u16(major), this.u16(0), Buffer.alloc(8, 0xff)]));
  }
  idb(linkType: number, snap = 0, opts: Array<[number, Uint8Array]> = []): this {
    return this.raw(1, Buffer.concat([this.u16(linkType), this.u16(0), this.u32(snap), this.options(opts)]));
  }
  epb(ifId: number, tsHi: number, tsLo: number, data: Uint8Array, orig?: number, opts: Array<[number, Uint8Array]> = []): this {
    return this.raw(6, Buffer.concat([this.u32(ifId), this.u32(tsHi), this.u32(tsLo), this.u32(data.length), this.u32(orig ?? data.length), NgBuilder.pad(data), this.options(opts)]));
  }
  spb(data: Uint8Array, orig?: number): this {
    return this.raw(3, Buffer.concat([this.u32(orig ?? data.length), NgBuilder.pad(data)]));
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Deterministic pseudo-random bytes. */
export function bytesOf(n: number, seed: number): Buffer {
  const r = prng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

/** Records of a little-endian nanosecond pcap (as the tx path writes one from such input). */
export function readEspFrames(b: Buffer): { sec: number; frac: number; data: Buffer }[] {
  const out: { sec: number; frac: number; data: Buffer }[] = [];
  for (let o = 24; o + 16 <= b.length;) {
    const n = b.readUInt32LE(o + 8);
    out.push({ sec: b.readUInt32LE(o), frac: b.readUInt32LE(o + 4), data: b.subarray(o + 16, o + 16 + n) });
    o += 16 + n;
  }
  return out;
}
