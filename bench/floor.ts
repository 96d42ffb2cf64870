/**
 * The floor (bench/floor.c): a minimal C program that writes, for the bench's AES-GCM captures,
 * the same pcapng and OOB bytes as `ipsecov2 rx --any-direction`, with none of the tool's rules
 * and no start-up beyond exec. Its time is the least this machine's cores, OpenSSL and kernel
 * need for that I/O and crypto with one core working and one writing (floorSplit in the bench
 * also runs two on two halves: that work split ideally). The
 * bench times it beside the tool and tshark; the tests check its bytes against the tool's.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/floor.c in the source tree (this module runs from dist/bench/). */
export const FLOOR_SRC = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'bench', 'floor.c');

/**
 * Compile floor.c to `dst` (unless `dst` is newer than the source) with the system's C compiler
 * and OpenSSL (libssl-dev). Returns null when built, else why not.
 */
export function buildFloor(dst: string, cc = process.env.CC ?? 'cc'): string | null {
  if (existsSync(dst) && statSync(dst).mtimeMs >= statSync(FLOOR_SRC).mtimeMs) return null;
  const r = spawnSync(cc, ['-O2', '-o', dst, FLOOR_SRC, '-lcrypto', '-lpthread'], { encoding: 'utf8' });
  if (r.error) return `${cc}: ${r.error.message}`;
  if (r.status !== 0) return `${cc} failed: ${(r.stderr || '').trim().split('\n').slice(0, 3).join(' / ')}`;
  return null;
}

export interface FloorRun {
  /** Wall seconds from spawn to exit, as the bench times ipsecov2. */
  secs: number;
  frames: number;
  userS: number;
  sysS: number;
  maxRssMB: number;
}

/** The floor's command line for `input` (one AES-GCM SA: `keyHex` = 16-byte key + 4-byte salt). */
export function floorArgs(input: string, out: string, oob: string, keyHex: string, spi: number, sa: string): string[] {
  return [input, out, oob, keyHex, `0x${spi.toString(16)}`, sa];
}

/** Run the floor (arguments as floorArgs). Throws on failure. */
export function runFloor(bin: string, input: string, out: string, oob: string, keyHex: string, spi: number, sa: string): FloorRun {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(bin, floorArgs(input, out, oob, keyHex, spi, sa), { encoding: 'utf8' });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`floor ${input} failed (${r.status ?? r.signal}): ${(r.stderr || '').trim()}`);
  const m = /^(\d+) frames ([\d.]+) s user ([\d.]+) sys ([\d.]+) rss (\d+) KB$/m.exec(r.stdout);
  if (!m) throw new Error(`floor: unexpected output ${JSON.stringify(r.stdout)}`);
  return { secs, frames: Number(m[1]), userS: Number(m[3]), sysS: Number(m[4]), maxRssMB: Number(m[5]) / 1024 };
}

/** The first byte offset where files a and b differ (their common length when one is a prefix of the other), or -1 when equal. */
export function firstDifference(a: string, b: string): number {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  try {
    const ba = Buffer.allocUnsafe(1 << 20);
    const bb = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ;) {
      const na = readSync(fa, ba, 0, ba.length, pos);
      const nb = readSync(fb, bb, 0, bb.length, pos);
      const n = Math.min(na, nb);
      if (ba.compare(bb, 0, n, 0, n) !== 0) {
        for (let i = 0; i < n; i++) if (ba[i] !== bb[i]) return pos + i;
      }
      if (na !== nb) return pos + n;
      if (na === 0) return -1;
      pos += na;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}
