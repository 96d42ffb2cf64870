/**
 * The bench's fixed-cost table (bench/fixed-costs.ts): captures cut to their first N records, and
 * the arithmetic that splits a run into its steady per-frame part and the rest.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cutPcap, fixedCosts } from '../bench/fixed-costs.js';

/** A classic pcap of records with 10, 70000, 0, 3 and 60 bytes of data (each filled with its index). */
function pcap(le: boolean): { file: Buffer; ends: number[] } {
  const u32 = (v: number): Buffer => { const b = Buffer.alloc(4); if (le) b.writeUInt32LE(v); else b.writeUInt32BE(v); return b; };
  const parts: Buffer[] = [u32(0xa1b2c3d4), Buffer.from(le ? [2, 0, 4, 0] : [0, 2, 0, 4]), Buffer.alloc(8), u32(262144), u32(1)];
  const ends: number[] = [24];
  let len = 24;
  [10, 70000, 0, 3, 60].forEach((n, i) => {
    const rec = Buffer.concat([u32(1700000000 + i), u32(i), u32(n), u32(n + 4), Buffer.alloc(n, i + 1)]);
    parts.push(rec);
    len += rec.length;
    ends.push(len);
  });
  return { file: Buffer.concat(parts), ends };
}

test('cutPcap: the header and the first n records, byte for byte, in either byte order', () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-cut-'));
  try {
    for (const le of [true, false]) {
      const { file, ends } = pcap(le);
      const src = join(d, `in-${le}.pcap`);
      writeFileSync(src, file);
      for (const n of [0, 1, 2, 3, 5]) {
        const dst = join(d, `out-${le}-${n}.pcap`);
        assert.equal(cutPcap(src, n, dst), n);
        assert.deepEqual(readFileSync(dst), file.subarray(0, ends[n]), `${le ? 'LE' : 'BE'}, ${n} records`);
        assert.equal(existsSync(dst + '.tmp'), false);
      }
      // more than there are: all of them
      const all = join(d, `all-${le}.pcap`);
      assert.equal(cutPcap(src, 99, all), 5);
      assert.deepEqual(readFileSync(all), file);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('cutPcap: a record cut short at the end is left out; a file that is not a pcap is refused by name', () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-cut-'));
  try {
    const { file, ends } = pcap(true);
    const src = join(d, 'short.pcap');
    writeFileSync(src, file.subarray(0, ends[2]! + 5)); // the third record's header cut
    const dst = join(d, 'out.pcap');
    assert.equal(cutPcap(src, 10, dst), 2);
    assert.deepEqual(readFileSync(dst), file.subarray(0, ends[2]));
    const bad = join(d, 'bad.pcap');
    writeFileSync(bad, Buffer.from('0a0d0d0a' + '00'.repeat(40), 'hex'));
    assert.throws(() => cutPcap(bad, 1, dst), (e: Error) => e.message.includes(bad) && e.message.includes('not a classic pcap'));
    writeFileSync(bad, Buffer.alloc(10));
    assert.throws(() => cutPcap(bad, 1, dst), /shorter than a pcap file header/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('fixedCosts: µs a frame between rows, the steady rate from the last two, the rest fixed', () => {
  const f = fixedCosts([
    { frames: 1, secs: 0.12 },
    { frames: 1001, secs: 0.15 },
    { frames: 20001, secs: 0.22 },
    { frames: 50001, secs: 0.28 },
    { frames: 200001, secs: 0.41 },
  ]);
  const close = (a: number, b: number): boolean => Math.abs(a - b) < 1e-9;
  assert.equal(f.perFrameUs[0], null);
  assert.ok(close(f.perFrameUs[1]!, 30));
  assert.ok(close(f.perFrameUs[2]!, (0.07 / 19000) * 1e6));
  assert.ok(close(f.perFrameUs[3]!, 2));
  assert.ok(close(f.steadyUs, (0.13 / 150000) * 1e6));
  assert.ok(close(f.steadySecs, 200001 * (0.13 / 150000)));
  assert.ok(close(f.fixedSecs + f.steadySecs, 0.41));
  // the noise can make the last step free or negative: no steady rate then
  const n = fixedCosts([{ frames: 1, secs: 0.2 }, { frames: 10, secs: 0.19 }]);
  assert.ok(Number.isNaN(n.steadyUs) && Number.isNaN(n.fixedSecs));
  assert.throws(() => fixedCosts([{ frames: 1, secs: 0.1 }]), /two rows/);
});
