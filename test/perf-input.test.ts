/**
 * The read-ahead of regular files (ChunkedInput reading the next chunk at a headroom offset)
 * against the plain stream path: same frames, warnings, byte offsets and counters, for random
 * record sizes, chunk sizes, oversized blocks (skips) and truncated ends; and with chunks reused
 * (recycleBefore) while earlier batches are still held.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCapture, openCaptureStream, type CaptureReader } from '../src/capture/reader.js';
import type { CaptureFrame } from '../src/capture/types.js';
import { buildPcap, bytesOf, chunked, NgBuilder, prng } from './helpers/capture-util.js';
import { sharedMemoryOf } from '../src/capture/shared-memory.js';
import { nativeAvailable } from '../src/crypto/native.js';

const tmp = mkdtempSync(join(tmpdir(), 'ipsecov2-perf-input-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Seen {
  frames: string[];
  warnings: string[];
  truncated: boolean;
  skipped: number;
  bytesRead: number;
}

async function drain(r: CaptureReader, batch: number): Promise<Seen> {
  const frames: string[] = [];
  for (let b = await r.nextBatch(batch); b; b = await r.nextBatch(batch)) {
    for (const f of b) frames.push(`${f.index}/${f.ifId}/${f.tsHi}/${f.tsLo}/${f.origLen}/${Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length).toString('hex')}`);
  }
  await r.close();
  return { frames, warnings: r.warnings.map((w) => `${w.offset}: ${w.message}`), truncated: r.truncated, skipped: r.skippedRecords, bytesRead: r.bytesRead };
}

/**
 * Like drain, but holding the last `hold` batches (as a pipeline holds batches in flight) and
 * calling recycleBefore with the oldest frame still held: frames must keep their bytes until then.
 */
async function drainRecycling(r: CaptureReader, batch: number, hold: number): Promise<Seen> {
  const frames: string[] = [];
  const held: CaptureFrame[][] = [];
  const take = (b: CaptureFrame[]): void => {
    for (const f of b) frames.push(`${f.index}/${f.ifId}/${f.tsHi}/${f.tsLo}/${f.origLen}/${Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length).toString('hex')}`);
  };
  for (let b = await r.nextBatch(batch); b; b = await r.nextBatch(batch)) {
    held.push(b);
    while (held.length > hold) {
      take(held.shift()!);
      r.recycleBefore!(held.length > 0 ? held[0]![0]! : null);
    }
  }
  for (const b of held) take(b);
  await r.close();
  return { frames, warnings: r.warnings.map((w) => `${w.offset}: ${w.message}`), truncated: r.truncated, skipped: r.skippedRecords, bytesRead: r.bytesRead };
}

function randomPcapng(rnd: () => number, big: boolean): Buffer {
  const b = new NgBuilder().shb().idb(1);
  const n = 20 + Math.floor(rnd() * 200);
  for (let i = 0; i < n; i++) {
    const len = big && rnd() < 0.05 ? 3000 + Math.floor(rnd() * 150000) : Math.floor(rnd() * 1600);
    b.epb(0, i, Math.floor(rnd() * 2 ** 32), bytesOf(len, i + 1));
  }
  return b.bytes();
}

describe('perf: file read-ahead = stream reading', () => {
  const rnd = prng(99);
  for (let t = 0; t < 24; t++) {
    const ng = t % 2 === 0;
    const chunkSize = [16, 64, 100, 4096, 65536, 1 << 20][t % 6]!;
    it(`${ng ? 'pcapng' : 'pcap'} chunk ${chunkSize} case ${t}`, async () => {
      let bytes: Buffer = ng
        ? randomPcapng(rnd, t % 4 === 0)
        : buildPcap(Array.from({ length: 50 + Math.floor(rnd() * 300) }, (_, i) => ({ sec: i, frac: i * 7, data: bytesOf(Math.floor(rnd() * 2000), i) })));
      if (t % 3 === 0) bytes = bytes.subarray(0, bytes.length - 1 - Math.floor(rnd() * 500)); // truncated end
      const p = join(tmp, `c${t}.cap`);
      writeFileSync(p, bytes);
      const opts = { chunkSize, maxFrameLen: t % 4 === 0 ? 2000 : 262144 };
      const batch = 1 + Math.floor(rnd() * 100);
      const fromFile = await drain(await openCapture(p, opts), batch);
      const fromStream = await drain(await openCaptureStream(chunked(bytes, 1, 5000, t), 'x', opts), batch);
      assert.deepEqual(fromFile.frames, fromStream.frames);
      // chunks reused once the frames in them are released: the frames still held keep their bytes
      const recycled = await drainRecycling(await openCapture(p, opts), batch, 1 + (t % 4));
      assert.deepEqual(recycled.frames, fromStream.frames);
      // the same from a stream (standard input): its chunks are reused too
      const recycledStream = await drainRecycling(await openCaptureStream(chunked(bytes, 1, 5000, t + 100), 'x', opts), batch, 1 + (t % 4));
      assert.deepEqual(recycledStream.frames, fromStream.frames);
      assert.deepEqual(recycledStream.warnings, fromStream.warnings);
      assert.deepEqual(recycled.warnings.map((w) => w.replace(p, 'x')), fromStream.warnings);
      assert.deepEqual(fromFile.warnings.map((w) => w.replace(p, 'x')), fromStream.warnings);
      assert.equal(fromFile.truncated, fromStream.truncated);
      assert.equal(fromFile.skipped, fromStream.skipped);
      assert.ok(fromFile.frames.length > 0);
    });
  }
});

describe('frame views (ChunkedInput.view)', () => {
  it('are plain Uint8Arrays over the chunk (not Buffers): bytes, subarray, shared memory, pcap and pcapng', async () => {
    const data = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    const ng = new NgBuilder();
    ng.shb();
    ng.idb(1, 0);
    ng.epb(0, 0, 1, data);
    for (const [name, bytes] of [['v.pcap', buildPcap([{ sec: 1, frac: 2, data }])], ['v.pcapng', ng.bytes()]] as const) {
      const p = join(tmp, name);
      writeFileSync(p, bytes);
      const r = await openCapture(p);
      const f = (await r.nextBatch(8))![0]!;
      // the plain constructor (inlined by TurboFan), not a Buffer subclass
      assert.equal(Object.getPrototypeOf(f.data), Uint8Array.prototype, name);
      assert.equal(Buffer.isBuffer(f.data), false);
      assert.equal(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length).toString('hex'), data.toString('hex'));
      // a view into the reader's chunk, not a copy: the chunk is larger than the frame
      assert.ok(f.data.buffer.byteLength > f.data.length);
      const sub = f.data.subarray(2, 6);
      sub[0] = 0xff; // a view: the frame sees it
      assert.equal(f.data[2], 0xff);
      assert.equal(Buffer.concat([f.data, sub]).length, 20);
      await r.close();
    }
  });
});

describe('perf: stream chunks are reused', () => {
  it('a long stream read through a few chunks of shared memory when the frames are released', async () => {
    // every 500th record larger than a chunk: it gets a buffer of its own, plain memory, used once
    const frames = Array.from({ length: 4000 }, (_, i) => ({ sec: i, frac: 0, data: bytesOf(i % 500 === 9 ? 200000 : 1000 + (i % 400), i) }));
    const bytes = buildPcap(frames);
    const chunks = new Set<ArrayBufferLike>();
    const r = await openCaptureStream(chunked(bytes, 1000, 70000, 7), 'x', { chunkSize: 65536 });
    let n = 0;
    for (let b = await r.nextBatch(64); b; b = await r.nextBatch(64)) {
      for (const f of b) {
        assert.ok(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length).equals(frames[f.index - 1]!.data), `frame ${f.index}`);
        if (f.data.length === 200000) assert.equal(sharedMemoryOf(f.data.buffer), undefined, 'an oversized record is in plain memory');
        else chunks.add(f.data.buffer);
      }
      n += b.length;
      r.recycleBefore!(null);
    }
    await r.close();
    assert.equal(n, 4000);
    // ~6 MB through 64 KB chunks: ~90 without reuse
    assert.ok(chunks.size <= 12, `${chunks.size} chunks`);
    // chunks are shared memory (crypto workers read them) seen through a plain alias here
    if (nativeAvailable()) for (const c of chunks) assert.ok(sharedMemoryOf(c) instanceof SharedArrayBuffer && !(c instanceof SharedArrayBuffer));
  });
});
