/**
 * Every fixture in fixtures/capture/, read by our reader, against what tshark reported for it
 * when the fixture was made (manifest.json, see scripts/make-capture-fixtures.py): frame count,
 * times to the nanosecond, lengths, interface ids, comments, MD5 of the bytes, link types.
 * Each is read three ways: from the file, from the file with tiny chunks, and as a stream
 * arriving 1..7 bytes at a time (records assembled across chunk boundaries).
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openCapture, openCaptureStream, type CaptureReader } from '../src/capture/reader.js';
import { tsToNs } from '../src/capture/timestamp.js';
import type { CaptureFrame } from '../src/capture/types.js';
import { chunked, FIXTURES, loadManifest, readAll, type ManifestEntry } from './helpers/capture-util.js';

const manifest = loadManifest();

function epochOf(r: CaptureReader, f: CaptureFrame): string {
  const ns = tsToNs(r.interfaces[f.ifId], f.tsHi, f.tsLo);
  const s = ns.toString().padStart(10, '0');
  return `${s.slice(0, -9)}.${s.slice(-9)}`;
}

function check(name: string, m: ManifestEntry, r: CaptureReader, frames: CaptureFrame[]): void {
  assert.equal(r.format, m.format, `${name}: format`);
  assert.equal(frames.length, m.frames.length, `${name}: frame count`);
  assert.deepEqual(r.interfaces.map((i) => i.linkType), m.linkTypes, `${name}: link types`);
  assert.equal(r.truncated, m.truncated === true, `${name}: truncated`);
  frames.forEach((f, i) => {
    const e = m.frames[i];
    const at = `${name} frame ${i + 1}`;
    assert.equal(f.index, i + 1, `${at}: index`);
    assert.equal(f.data.length, e.capLen, `${at}: captured length`);
    assert.equal(f.origLen, e.len, `${at}: original length`);
    assert.equal(f.ifId, e.ifId, `${at}: interface`);
    // tshark shows no time for an SPB; we report 0
    assert.equal(epochOf(r, f), e.epoch ?? '0.000000000', `${at}: time`);
    assert.equal(f.comment, e.comments.length > 0 ? e.comments.join('\n') : null, `${at}: comment`);
    assert.equal(createHash('md5').update(f.data).digest('hex'), e.md5, `${at}: bytes`);
  });
}

describe('capture fixtures against tshark', () => {
  for (const [name, m] of Object.entries(manifest)) {
    const path = join(FIXTURES, name);
    it(`${name} (${m.tool}): file`, async () => {
      const r = await openCapture(path);
      const frames = await readAll(r);
      check(name, m, r, frames);
      assert.equal(r.bytesRead, r.totalBytes);
    });
    it(`${name}: file read in 64-byte chunks`, async () => {
      const r = await openCapture(path, { chunkSize: 64 });
      check(name, m, r, await readAll(r, 3));
    });
    it(`${name}: stream in 1..7-byte pieces`, async () => {
      const r = await openCaptureStream(chunked(readFileSync(path), 1, 7, name.length), name);
      check(name, m, r, await readAll(r, 5));
      assert.equal(r.totalBytes, null);
    });
  }

  it('struct-sections.pcapng: interface details, flags, unknown blocks', async () => {
    const r = await openCapture(join(FIXTURES, 'struct-sections.pcapng'));
    const frames = await readAll(r);
    assert.deepEqual(r.interfaces[0], { linkType: 1, snapLen: 262144, name: 'eth0', description: 'uplink, big-endian section', tsResol: 9, tsOffset: 0 });
    assert.equal(r.interfaces[1].tsResol, 6);
    assert.equal(r.interfaces[1].snapLen, 128);
    assert.deepEqual(r.interfaces[2], { linkType: 101, snapLen: 0, name: 'raw0', description: null, tsResol: 0x94, tsOffset: 3600 });
    assert.equal(r.interfaces[3].description, 'Linux cooked (café)');
    assert.equal(frames[0].epbFlags, 1);
    assert.equal(frames[4].epbFlags, 2); // pack_flags of the obsolete PB
    assert.equal(frames[1].epbFlags, null);
    assert.equal(r.unknownBlocks, 1);
    assert.ok(r.warnings.some((w) => /unknown block type 0x00000bee/.test(w.message)), JSON.stringify(r.warnings));
  });

  it('truncated-eth.pcap: all complete frames, a warning with the offset', async () => {
    const r = await openCapture(join(FIXTURES, 'truncated-eth.pcap'));
    await readAll(r);
    assert.equal(r.truncated, true);
    const w = r.warnings.at(-1);
    assert.ok(w && /^truncated record at byte offset \d+/.test(w.message), JSON.stringify(r.warnings));
  });
});
