/**
 * Hostile input: files cut at every byte, corrupt lengths, undeclared interfaces, random
 * mutations of valid files (seeded), things that are not captures at all, and a long stream
 * read with flat memory.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LINKTYPE_USER0 } from '../src/capture/linktypes.js';
import { CaptureFormatError, openCapture, openCaptureStream, type CaptureReader } from '../src/capture/reader.js';
import type { CaptureFrame } from '../src/capture/types.js';
import { buildPcap, bytesOf, chunked, FIXTURES, NgBuilder, prng, readAll } from './helpers/capture-util.js';

const tmp = mkdtempSync(join(tmpdir(), 'ipsecov2-capture-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function readBytes(b: Uint8Array, opts: { maxFrameLen?: number } = {}): Promise<{ r: CaptureReader; frames: CaptureFrame[] }> {
  const r = await openCaptureStream([Buffer.from(b)], 'mem', opts);
  return { r, frames: await readAll(r) };
}

const pcapSample = buildPcap([
  { sec: 1, frac: 2, data: bytesOf(60, 1) },
  { sec: 3, frac: 4, data: bytesOf(1, 2) },
  { sec: 5, frac: 6, data: bytesOf(0, 3) },
  { sec: 7, frac: 8, data: bytesOf(77, 4), orig: 1500 },
]);
const ngBuilder = new NgBuilder(true)
  .shb()
  .idb(1, 0, [[2, Buffer.from('eth0')]])
  .epb(0, 0, 1, bytesOf(61, 5), 61, [[1, Buffer.from('hi')]])
  .raw(0x1234, Buffer.alloc(8))
  .spb(bytesOf(13, 6))
  .shb(false)
  .idb(101, 64)
  .epb(0, 0, 2, bytesOf(40, 7));
const ngSample = ngBuilder.bytes();
const pcapEnds = [24 + 16 + 60, 24 + 32 + 61, 24 + 48 + 61, 24 + 64 + 61 + 77];

describe('capture robustness', () => {
  for (const [name, sample, headerLen, ends, clean] of [
    ['pcap', pcapSample, 24, pcapEnds, [24, ...pcapEnds]],
    ['pcapng', ngSample, 12, ngBuilder.packetEnds, ngBuilder.blockEnds],
  ] as const) {
    it(`${name} cut at every byte offset: never throws after the header, keeps complete frames`, async () => {
      const full = (await readBytes(sample)).frames;
      assert.equal(full.length, ends.length);
      for (let cut = 0; cut < sample.length; cut++) {
        const part = sample.subarray(0, cut);
        if (cut < headerLen) {
          await assert.rejects(readBytes(part), CaptureFormatError, `cut ${cut}`);
          continue;
        }
        const { r, frames } = await readBytes(part);
        const expected = ends.filter((e) => e <= cut).length;
        assert.equal(frames.length, expected, `cut ${cut}`);
        assert.equal(r.truncated, !clean.includes(cut), `cut ${cut}: truncated`);
        frames.forEach((f, i) => assert.deepEqual(f.data, full[i].data, `cut ${cut} frame ${i}`));
        if (r.truncated) assert.match(r.warnings.at(-1)!.message, /^truncated (record|block) at byte offset \d+/);
      }
    });
  }

  it('a cut exactly between records is a clean end', async () => {
    const { r, frames } = await readBytes(pcapSample.subarray(0, 24 + 16 + 60));
    assert.equal(frames.length, 1);
    assert.equal(r.truncated, false);
    assert.deepEqual(r.warnings, []);
  });

  it('truncated record: warning names the byte offset', async () => {
    const { r, frames } = await readBytes(pcapSample.subarray(0, 24 + 16 + 60 + 10));
    assert.equal(frames.length, 1);
    assert.equal(r.truncated, true);
    assert.deepEqual(r.warnings, [{ offset: 100, message: 'truncated record at byte offset 100 (10 of 16 bytes present)' }]);
  });

  it('pcap record over maxFrameLen stops the read with a warning', async () => {
    const b = buildPcap([{ sec: 0, frac: 0, data: bytesOf(10, 1) }, { sec: 0, frac: 0, data: bytesOf(300, 1) }, { sec: 0, frac: 0, data: bytesOf(10, 1) }]);
    const { r, frames } = await readBytes(b, { maxFrameLen: 256 });
    assert.equal(frames.length, 1);
    assert.match(r.warnings[0].message, /record at byte offset 50 claims 300 captured bytes, over the limit of 256/);
  });

  it('pcapng block over the limit is skipped when plausible, the rest is read', async () => {
    const b = new NgBuilder().shb().idb(1).epb(0, 0, 0, bytesOf(5000, 1)).epb(0, 0, 1, bytesOf(20, 2)).bytes();
    const { r, frames } = await readBytes(b, { maxFrameLen: 100 });
    assert.equal(frames.length, 1);
    assert.equal(r.skippedRecords, 1);
    assert.match(r.warnings[0].message, /is 5032 bytes, over the limit of 65636; skipped \(packet lost\)|holds 5000 bytes, over the limit of 100; skipped/);
    // a file: skipping a block larger than a chunk goes through the file
    const p = join(tmp, 'big.pcapng');
    const big = new NgBuilder().shb().idb(1).epb(0, 0, 0, bytesOf(300000, 1)).epb(0, 0, 1, bytesOf(20, 2)).bytes();
    writeFileSync(p, big);
    const rf = await openCapture(p, { chunkSize: 4096 });
    const ff = await readAll(rf);
    assert.equal(ff.length, 1);
    assert.deepEqual(ff[0].data, bytesOf(20, 2));
    assert.equal(rf.skippedRecords, 1);
  });

  it('pcapng block lengths: not a multiple of 4, under 12, trailer mismatch', async () => {
    const base = () => new NgBuilder().shb().idb(1).epb(0, 0, 0, bytesOf(8, 1));
    let { r, frames } = await readBytes(base().raw(6, Buffer.alloc(28), 42).epb(0, 0, 1, bytesOf(8, 2)).bytes());
    assert.equal(frames.length, 1);
    assert.match(r.warnings[0].message, /has an invalid length 42; stopped reading/);
    ({ r, frames } = await readBytes(base().raw(6, Buffer.alloc(28), 8).bytes()));
    assert.equal(frames.length, 1);
    assert.match(r.warnings[0].message, /invalid length 8/);
    ({ r, frames } = await readBytes(base().raw(6, Buffer.alloc(28), undefined, 44).epb(0, 0, 1, bytesOf(8, 2)).bytes()));
    assert.equal(frames.length, 2);
    assert.match(r.warnings[0].message, /trailing length 44 differs from leading length 40; skipped/);
    assert.equal(r.skippedRecords, 1);
  });

  it('packet naming an undeclared interface: kept on a synthesized USER0 interface', async () => {
    const b = new NgBuilder().shb().idb(1).epb(0, 0, 0, bytesOf(8, 1)).epb(5, 0, 1, bytesOf(9, 2)).epb(7, 0, 2, bytesOf(10, 3)).idb(101).epb(1, 0, 3, bytesOf(11, 4)).bytes();
    const { r, frames } = await readBytes(b);
    assert.deepEqual(frames.map((f) => f.ifId), [0, 1, 1, 2]);
    assert.equal(r.interfaces[1].linkType, LINKTYPE_USER0);
    assert.equal(r.interfaces[2].linkType, 101);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0].message, /names interface 5, but its section declares 1; such frames are kept on interface 1 \(LINKTYPE_USER0\)/);
  });

  it('SPB: captured length bounded by the snaplen; original length kept', async () => {
    const b = new NgBuilder().shb().idb(1, 16).spb(bytesOf(16, 1), 1500).bytes();
    const { frames } = await readBytes(b);
    assert.equal(frames[0].data.length, 16);
    assert.equal(frames[0].origLen, 1500);
  });

  it('pcapng major version 2 stops the read; bad byte-order magic in a later section too', async () => {
    let { r, frames } = await readBytes(new NgBuilder().shb(true, 2).idb(1).epb(0, 0, 0, bytesOf(8, 1)).bytes());
    assert.equal(frames.length, 0);
    assert.match(r.warnings[0].message, /pcapng version 2\.0; only 1\.x is supported/);
    const b = new NgBuilder().shb().idb(1).epb(0, 0, 0, bytesOf(8, 1)).bytes();
    const bad = Buffer.concat([b, Buffer.from('0a0d0d0a1c00000011223344', 'hex'), Buffer.alloc(16)]);
    ({ r, frames } = await readBytes(bad));
    assert.equal(frames.length, 1);
    assert.match(r.warnings[0].message, /bad byte-order magic 0x44332211/);
  });

  it('not a capture: CaptureFormatError naming the file and what was found', async () => {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['in.txt', Buffer.from('hello world, this is text'), /^in\.txt: not a pcap or pcapng file \(starts with 'hello wo'\)$/],
      ['empty', Buffer.alloc(0), /^empty: empty file, not a pcap or pcapng capture$/],
      ['x.gz', Buffer.from('1f8b0800000000000003', 'hex'), /gzip-compressed data/],
      ['bin', Buffer.from('00010203040506070809', 'hex'), /starts with 0x0001020304050607/],
      ['short', Buffer.from('d4c3b2a10200', 'hex'), /truncated pcap file header \(6 of 24 bytes\)/],
      ['bom', Buffer.from('0a0d0d0a1c000000deadbeef', 'hex'), /not a pcapng file/],
      ['tiny', Buffer.from('abcd', 'hex'), /only 2 bytes/],
    ];
    for (const [label, bytes, re] of cases) {
      const p = join(tmp, label);
      writeFileSync(p, bytes);
      await assert.rejects(openCapture(p), (e: unknown) => e instanceof CaptureFormatError && e.code === 'ERR_CAPTURE_FORMAT' && re.test(e.message.replace(tmp + '/', '')), label);
    }
    await assert.rejects(openCapture(join(tmp, 'missing.pcap')), { code: 'ENOENT' });
  });

  it('fuzz: 4000 seeded mutations of valid files never throw after open and never hang', { timeout: 120_000 }, async () => {
    const seeds = [
      pcapSample,
      ngSample,
      buildPcap([{ sec: 9, frac: 999999, data: bytesOf(40, 9) }, { sec: 9, frac: 1, data: bytesOf(3, 9) }], { le: false, nano: true }),
      readFileSync(join(FIXTURES, 'struct-sections.pcapng')),
      readFileSync(join(FIXTURES, 'mergecap-multi.pcapng')).subarray(0, 700),
    ];
    const rnd = prng(0x1b2c3d4);
    let opened = 0;
    let frames = 0;
    for (let i = 0; i < 4000; i++) {
      const b = Buffer.from(seeds[i % seeds.length]);
      const n = 1 + Math.floor(rnd() * 6);
      for (let k = 0; k < n; k++) {
        const at = Math.floor(rnd() * b.length);
        const kind = rnd();
        if (kind < 0.5) b[at] = Math.floor(rnd() * 256);
        else if (kind < 0.8 && at + 4 <= b.length) b.writeUInt32LE(Math.floor(rnd() * 2 ** 32), at & ~3);
        else if (at + 4 <= b.length) b.writeUInt32LE([0, 1, 12, 13, 0xffffffff, 0x7ffffffc, 1 << 20][Math.floor(rnd() * 7)], at & ~3);
      }
      const cut = rnd() < 0.2 ? Math.floor(rnd() * b.length) : b.length;
      let r: CaptureReader;
      try {
        r = await openCaptureStream(chunked(b.subarray(0, cut), 1, 97, i), `fuzz#${i}`, { maxFrameLen: 4096 });
      } catch (e) {
        assert.ok(e instanceof CaptureFormatError, `fuzz#${i}: open threw ${String(e)}`);
        continue;
      }
      opened++;
      let batches = 0;
      for (let bt = await r.nextBatch(8); bt !== null; bt = await r.nextBatch(8)) {
        frames += bt.length;
        for (const f of bt) {
          assert.ok(f.ifId >= 0 && f.ifId < r.interfaces.length, `fuzz#${i}: ifId ${f.ifId}`);
          assert.ok(f.origLen >= f.data.length);
          assert.ok(f.data.length <= 4096);
        }
        assert.ok(++batches < 10000, `fuzz#${i}: runaway`);
      }
      assert.ok(r.warnings.length <= 102);
    }
    assert.ok(opened > 2000, `opened ${opened}`);
    assert.ok(frames > 1000, `frames ${frames}`);
  });

  it('streams 256 MiB with flat memory (chunks collected as frames are dropped)', { timeout: 120_000 }, async () => {
    const frame = bytesOf(1400, 1);
    const rec = buildPcap([{ sec: 1, frac: 2, data: frame }]).subarray(24);
    const header = buildPcap([]);
    const perChunk = 47; // records per yielded piece: records straddle piece boundaries
    const recs = Buffer.concat(Array.from({ length: perChunk }, () => rec));
    const piece = Buffer.concat([recs.subarray(7), recs.subarray(0, 7)]);
    const total = 256 * 1024 * 1024;
    async function* gen(): AsyncGenerator<Buffer> {
      yield Buffer.concat([header, rec.subarray(0, 7)]);
      for (let sent = 0; sent < total; sent += piece.length) yield piece;
    }
    const r = await openCaptureStream(gen(), 'synthetic');
    let n = 0;
    let peak = 0;
    const start = process.memoryUsage().rss;
    const t0 = process.hrtime.bigint();
    for (let b = await r.nextBatch(512); b !== null; b = await r.nextBatch(512)) {
      n += b.length;
      if ((n & 0x3fff) < b.length) peak = Math.max(peak, process.memoryUsage().rss - start);
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    assert.equal(r.truncated, true); // the generator ends mid-record
    assert.ok(n > 180000, `${n} frames`);
    assert.ok(peak < 200 * 1024 * 1024, `RSS grew by ${(peak / 1048576).toFixed(0)} MiB`);
    process.stderr.write(`# capture stream: ${n} frames in ${secs.toFixed(2)} s (${Math.round(n / secs)} frames/s), RSS +${(peak / 1048576).toFixed(0)} MiB\n`);
  });
});
