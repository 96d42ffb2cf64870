/**
 * Timestamps and link-type names. The fast double-arithmetic paths are checked against an
 * obvious BigInt + Date oracle on seeded random inputs.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { linkTypeName } from '../src/capture/linktypes.js';
import { openCaptureStream } from '../src/capture/reader.js';
import { secFracToUnits, TS_UNITS, tsToIso, tsToNs } from '../src/capture/timestamp.js';
import type { CaptureInterface } from '../src/capture/types.js';
import { buildPcap, prng } from './helpers/capture-util.js';

const iface = (tsResol: number, tsOffset = 0): CaptureInterface => ({ linkType: 1, snapLen: 0, name: null, description: null, tsResol, tsOffset });

/** Oracle: exact rational arithmetic, then Date for the calendar part. */
function isoOracle(i: CaptureInterface, hi: number, lo: number): string {
  const units = (BigInt(hi) << 32n) + BigInt(lo);
  let num: bigint;
  let den: bigint;
  if (i.tsResol & 0x80) {
    num = units;
    den = 1n << BigInt(i.tsResol & 0x7f);
  } else {
    num = units;
    den = 10n ** BigInt(i.tsResol);
  }
  let ns = (num * 1_000_000_000n) / den + BigInt(i.tsOffset) * 1_000_000_000n;
  let sec = ns / 1_000_000_000n;
  if (ns < 0n && sec * 1_000_000_000n !== ns) sec -= 1n;
  ns -= sec * 1_000_000_000n;
  const d = new Date(Number(sec) * 1000).toISOString();
  return d.slice(0, -5) + '.' + ns.toString().padStart(9, '0') + 'Z';
}

describe('capture timestamps', () => {
  it('known values', () => {
    assert.equal(tsToIso(iface(6), 0, 0), '1970-01-01T00:00:00.000000000Z');
    const us = 1795255200n * 1_000_000n + 123456n;
    assert.equal(tsToIso(iface(6), Number(us >> 32n), Number(us & 0xffffffffn)), '2026-11-21T10:00:00.123456000Z');
    const ns = 1795255200n * 1_000_000_000n + 123456789n;
    assert.equal(tsToIso(iface(9), Number(ns >> 32n), Number(ns & 0xffffffffn)), '2026-11-21T10:00:00.123456789Z');
    assert.equal(tsToNs(iface(9), Number(ns >> 32n), Number(ns & 0xffffffffn)), ns);
    // binary 2^-20 with a one-hour offset
    assert.equal(tsToIso(iface(0x94, 3600), 0, 2 ** 19), '1970-01-01T01:00:00.500000000Z');
    assert.equal(tsToIso(iface(0x94), 0, 3), '1970-01-01T00:00:00.000002861Z');
    assert.equal(tsToIso(iface(6, -1), 0, 0), '1969-12-31T23:59:59.000000000Z');
    assert.equal(tsToIso(iface(12), 0, 1_234_567), '1970-01-01T00:00:00.000001234Z');
  });

  it('fast paths agree with the oracle on random inputs', () => {
    const rnd = prng(42);
    const resols = [0, 1, 3, 6, 9, 0x80, 0x94, 0x9e, 0xa0, 10, 12];
    for (let i = 0; i < 20000; i++) {
      const r = resols[i % resols.length];
      const off = i % 7 === 0 ? Math.floor(rnd() * 7200) - 3600 : 0;
      // keep within Date's range for the oracle: bound hi by the resolution
      const unitsPerSec = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
      const maxHi = Math.max(1, Math.min(2 ** 32, Math.floor((8e12 * unitsPerSec) / 2 ** 32)));
      const hi = Math.floor(rnd() * maxHi);
      const lo = Math.floor(rnd() * 2 ** 32);
      const f = iface(r, off);
      assert.equal(tsToIso(f, hi, lo), isoOracle(f, hi, lo), `resol ${r} hi ${hi} lo ${lo} off ${off}`);
    }
  });

  it('never throws, even where Date would', () => {
    for (const r of [0, 6, 9, 0x80, 0xff, 0x7f]) {
      for (const [hi, lo] of [[0xffffffff, 0xffffffff], [0, 0], [0x80000000, 0]]) {
        assert.match(tsToIso(iface(r, -(2 ** 40)), hi, lo), /^[-+]?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      }
    }
  });

  it('secFracToUnits is exact up to 2^64', () => {
    const rnd = prng(7);
    for (let i = 0; i < 5000; i++) {
      const sec = Math.floor(rnd() * 2 ** 32);
      const p = i & 1 ? 1e9 : 1e6;
      const frac = Math.floor(rnd() * 2 ** 32); // hostile: fraction may exceed a second
      secFracToUnits(sec, frac, p);
      const v = BigInt(sec) * BigInt(p) + BigInt(frac);
      assert.deepEqual([TS_UNITS[0], TS_UNITS[1]], [Number(v >> 32n), Number(v & 0xffffffffn)]);
    }
  });

  it('pcap nanosecond records become interface units', async () => {
    const b = buildPcap([{ sec: 4000000000, frac: 999999999, data: Buffer.alloc(1) }], { nano: true, le: false });
    const r = await openCaptureStream([b], 'mem');
    const [f] = (await r.nextBatch(10))!;
    assert.equal(tsToIso(r.interfaces[0], f.tsHi, f.tsLo), '2096-10-02T07:06:40.999999999Z');
  });

  it('linkTypeName', () => {
    assert.equal(linkTypeName(1), 'Ethernet');
    assert.equal(linkTypeName(101), 'Raw IP');
    assert.equal(linkTypeName(113), 'Linux SLL');
    assert.equal(linkTypeName(276), 'Linux SLL2');
    assert.equal(linkTypeName(0), 'BSD loopback');
    assert.equal(linkTypeName(228), 'Raw IPv4');
    assert.equal(linkTypeName(150), 'USER3');
    assert.equal(linkTypeName(9999), 'link type 9999');
  });

  it('a live stream: frames already received are handed out without waiting for more', async () => {
    const b = buildPcap([{ sec: 1, frac: 0, data: Buffer.alloc(60, 1) }, { sec: 2, frac: 0, data: Buffer.alloc(60, 2) }]);
    let release!: () => void;
    const hold = new Promise<void>((res) => (release = res));
    async function* live(): AsyncGenerator<Buffer> {
      yield b.subarray(0, 24 + 76 + 10); // one record and a bit
      await hold; // the capture goes quiet
      yield b.subarray(24 + 76 + 10);
    }
    const r = await openCaptureStream(live(), 'live');
    const first = await r.nextBatch(100);
    assert.equal(first!.length, 1);
    release();
    const second = await r.nextBatch(100);
    assert.equal(second!.length, 1);
    assert.equal(second![0].data[0], 2);
    assert.equal(await r.nextBatch(100), null);
  });
});
