/**
 * What bounds the bench's 200k-frame rows: the same capture cut to its first N frames and run
 * end to end, so the run's fixed costs (start-up, V8's warm-up) and its steady per-frame cost are
 * read off the same machine in the same minutes. The first thousand frames run interpreted (tens
 * of µs each), the steady rate is under a µs: on 200k frames the fixed part is about half.
 */
import { closeSync, openSync, readSync, renameSync, writeSync } from 'node:fs';

/**
 * Copy the first `n` records of the classic pcap file `src` (either byte order, µs or ns) to
 * `dst` (written to `dst.tmp`, then renamed). A record cut short at the end of `src` is left
 * out. Returns the records copied.
 */
export function cutPcap(src: string, n: number, dst: string): number {
  const fd = openSync(src, 'r');
  try {
    const hdr = Buffer.alloc(24);
    if (readSync(fd, hdr, 0, 24, 0) !== 24) throw new Error(`${src}: shorter than a pcap file header`);
    const magic = hdr.readUInt32LE(0);
    const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
    if (!le && magic !== 0xd4c3b2a1 && magic !== 0x4d3cb2a1) throw new Error(`${src}: not a classic pcap file (magic 0x${magic.toString(16).padStart(8, '0')})`);
    const out = openSync(dst + '.tmp', 'w');
    let k = 0;
    try {
      writeSync(out, hdr);
      const rh = Buffer.alloc(16);
      let data = Buffer.alloc(65536);
      let pos = 24;
      while (k < n) {
        if (readSync(fd, rh, 0, 16, pos) !== 16) break;
        const incl = le ? rh.readUInt32LE(8) : rh.readUInt32BE(8);
        if (data.length < incl) data = Buffer.alloc(incl);
        if (readSync(fd, data, 0, incl, pos + 16) !== incl) break;
        writeSync(out, rh);
        writeSync(out, data, 0, incl);
        pos += 16 + incl;
        k++;
      }
    } finally {
      closeSync(out);
    }
    renameSync(dst + '.tmp', dst);
    return k;
  } finally {
    closeSync(fd);
  }
}

/** One capture's run time on its first `frames` frames. */
export interface CutRow {
  frames: number;
  secs: number;
}

export interface FixedCosts {
  /** Per row: µs a frame over the frames since the row before (null for the first row). */
  perFrameUs: (number | null)[];
  /** The last two rows' µs a frame: the steady rate (NaN when the noise made it ≤ 0). */
  steadyUs: number;
  /** The last row's frames at the steady rate, and the rest of its time (start-up, warm-up). */
  steadySecs: number;
  fixedSecs: number;
}

/** Rows in increasing frame counts (at least two). */
export function fixedCosts(rows: readonly CutRow[]): FixedCosts {
  if (rows.length < 2) throw new Error('fixedCosts: need at least two rows');
  const perFrameUs = rows.map((r, i) => {
    if (i === 0) return null;
    const p = rows[i - 1]!;
    return ((r.secs - p.secs) / (r.frames - p.frames)) * 1e6;
  });
  const last = rows[rows.length - 1]!;
  const us = perFrameUs[perFrameUs.length - 1]!;
  const steadyUs = us > 0 ? us : NaN;
  const steadySecs = (last.frames * steadyUs) / 1e6;
  return { perFrameUs, steadyUs, steadySecs, fixedSecs: last.secs - steadySecs };
}
