/**
 * The byte encoders of the hot emit path against their string references: RxOobEncoder
 * (JSON line and pcapng comment) against oobJson/oobComment, writeIsoTs against tsToIso, and
 * the writer's reserveFrame against writeFrame, on seeded random records and frames.
 */
import { strict as assert } from 'node:assert';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { tsToIso, writeIsoTs, ISO_TS_MAX } from '../src/capture/timestamp.js';
import type { CaptureInterface } from '../src/capture/types.js';
import { createCaptureWriterStream } from '../src/capture/writer.js';
import { OobRecord, oobComment, oobJson, type CryptoStatusCode } from '../src/offload/oob.js';
import { putNum, RxOobEncoder } from '../src/offload/oob-encode.js';
import { prng } from './helpers/capture-util.js';

const iface = (tsResol: number, tsOffset = 0): CaptureInterface => ({ linkType: 1, snapLen: 0, name: null, description: null, tsResol, tsOffset });

const STRINGS = ['in', 'gcm-tun', 'peer "quoted"', 'back\\slash', 'tab\there', 'ünïcödé', 'emoji 😀', 'ctl\u0001\u001f', 'lone \ud800 surrogate', 'x'.repeat(300), ''];
const DETAILS = [null, 'ICV mismatch', 'no inbound SA for ESP SPI 0x00001000', 'pad bytes not 1,2,3,...', 'ünï "q" \\ \n', 'lone \udfff', 'y'.repeat(5000)];
const REPLAYS = [null, 'ok', 'duplicate', 'too-old', 'off'] as const;
const RESOLS = [6, 9, 0, 3, 0x80 | 20, 0x80 | 1, 12];

function randomRecord(rnd: () => number, ts: string): OobRecord {
  const r = new OobRecord();
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const num = (): number | null => (rnd() < 0.2 ? null : pick([0, 1, 9, 10, 99, 100, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, Math.floor(rnd() * 2 ** 32)]));
  r.reset(1 + Math.floor(rnd() * (rnd() < 0.1 ? 2 ** 40 : 1e6)), ts, 'rx');
  if (rnd() < 0.8) { r.sa = pick(STRINGS); r.handle = num(); }
  r.spi = rnd() < 0.2 ? null : Math.floor(rnd() * 2 ** 32);
  r.seq = num();
  r.seqHigh = num();
  r.cryptoDone = rnd() < 0.8 ? 1 : 0;
  r.nextCryptoDone = rnd() < 0.2 ? 1 : 0;
  r.saDeleteReq = rnd() < 0.2 ? 1 : 0;
  r.cryptoStatus = Math.floor(rnd() * 8) as CryptoStatusCode;
  r.replay = pick(REPLAYS);
  r.detail = pick(DETAILS);
  return r;
}

describe('perf: OOB byte encoders', () => {
  it('putNum prints numbers like template literals', () => {
    const b = Buffer.alloc(64);
    const ns: (number | null)[] = [0, 1, 9, 10, 11, 99, 100, 12345, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, 1.5, null];
    // every digit count and its edges
    for (let p = 10; p <= 1e9; p *= 10) ns.push(p - 1, p, p + 1, p * 5 + 7);
    const rnd = prng(3);
    for (let i = 0; i < 20000; i++) ns.push(Math.floor(rnd() * 2 ** 32), Math.floor(rnd() * 1e6));
    for (const n of ns) {
      const end = putNum(b, 3, n);
      assert.equal(b.toString('latin1', 3, end), `${n}`);
    }
  });

  it('writeIsoTs = tsToIso for random times and resolutions', () => {
    const rnd = prng(7);
    const b = Buffer.alloc(ISO_TS_MAX + 8);
    for (let i = 0; i < 20000; i++) {
      const ifc = iface(RESOLS[i % RESOLS.length]!, i % 11 === 0 ? Math.floor((rnd() - 0.5) * 2e9) : 0);
      const hi = i % 5 === 0 ? Math.floor(rnd() * 2 ** 32) : Math.floor(rnd() * 0x200000);
      const lo = Math.floor(rnd() * 2 ** 32);
      const end = writeIsoTs(ifc, hi, lo, b, 2);
      assert.ok(end - 2 <= ISO_TS_MAX);
      assert.equal(b.toString('latin1', 2, end), tsToIso(ifc, hi, lo), `resol ${ifc.tsResol} ${hi} ${lo}`);
    }
  });

  it('writeIsoTs = tsToIso along runs of frames (same second, second and word boundaries, mixed interfaces)', () => {
    const rnd = prng(8);
    const b = Buffer.alloc(ISO_TS_MAX);
    const ifs = [iface(6), iface(9), iface(0), iface(3), iface(9, 5), iface(0x80 | 10), iface(6)];
    for (let run = 0; run < 300; run++) {
      const ifc = ifs[run % ifs.length]!;
      const other = ifs[(run + 3) % ifs.length]!;
      // start near a second boundary and near the 2^32 wrap of the low word
      let hi = Math.floor(rnd() * 0x1000);
      let lo = run % 3 === 0 ? 2 ** 32 - 1 - Math.floor(rnd() * 3000) : Math.floor(rnd() * 2 ** 32);
      for (let k = 0; k < 200; k++) {
        const useOther = rnd() < 0.05;
        const i = useOther ? other : ifc;
        const end = writeIsoTs(i, hi, lo, b, 0);
        assert.equal(b.toString('latin1', 0, end), tsToIso(i, hi, lo), `run ${run} resol ${i.tsResol} ${hi} ${lo}`);
        lo += 1 + Math.floor(rnd() * (rnd() < 0.1 ? 3000 : 30));
        if (lo >= 2 ** 32) { lo -= 2 ** 32; hi++; }
      }
    }
  });

  it('RxOobEncoder = oobJson + newline and oobComment, byte for byte', () => {
    const rnd = prng(11);
    const enc = new RxOobEncoder();
    for (let i = 0; i < 20000; i++) {
      const ifc = iface(RESOLS[i % RESOLS.length]!);
      const hi = Math.floor(rnd() * 0x100000);
      const lo = Math.floor(rnd() * 2 ** 32);
      const r = randomRecord(rnd, tsToIso(ifc, hi, lo));
      if (i % 97 === 0) (r as { replay: unknown }).replay = 'weird';
      if (i % 89 === 0) r.cryptoDone = 2 as 0;
      enc.load(r, ifc, hi, lo);
      const lb = enc.lineBound();
      const b = Buffer.alloc(lb + 16, 0xee);
      const end = enc.writeLine(b, 5);
      assert.ok(end - 5 <= lb, 'line bound');
      assert.equal(b.subarray(5, end).toString('utf8'), oobJson(r) + '\n');
      assert.deepEqual(b.subarray(5, end), Buffer.from(oobJson(r) + '\n', 'utf8'));
      const cb = enc.bound();
      const c = Buffer.alloc(cb + 16, 0xee);
      const cend = enc.write(c, 3);
      assert.ok(cend - 3 <= cb, 'comment bound');
      assert.deepEqual(c.subarray(3, cend), Buffer.from(oobComment(r), 'utf8'));
    }
  });

  it('the JSON line takes the time from the frame, not the record', () => {
    const enc = new RxOobEncoder();
    const r = new OobRecord();
    r.reset(3, '', 'rx');
    r.replay = 'weird' as 'ok'; // string fallback path too
    const ifc = iface(9);
    for (const rep of ['ok', 'weird'] as const) {
      r.replay = rep as 'ok';
      enc.load(r, ifc, 1, 2);
      const b = Buffer.alloc(enc.lineBound());
      const s = b.toString('utf8', 0, enc.writeLine(b, 0));
      r.ts = tsToIso(ifc, 1, 2);
      assert.equal(s, oobJson(r) + '\n');
      r.ts = '';
    }
  });
});

function collect(): { stream: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const stream = new Writable({ write(c: Buffer, _e, cb) { parts.push(Buffer.from(c)); cb(); } });
  return { stream, bytes: () => Buffer.concat(parts) };
}

describe('perf: writer reserveFrame', () => {
  for (const format of ['pcapng', 'pcap'] as const) {
    it(`${format}: reserveFrame + caller-written data = writeFrame`, async () => {
      const rnd = prng(format === 'pcap' ? 3 : 4);
      const a = collect();
      const b = collect();
      const wa = createCaptureWriterStream(a.stream, { format, bufferSize: 8192 });
      const wb = createCaptureWriterStream(b.stream, { format, bufferSize: 8192 });
      const ifc = iface(9);
      wa.addInterface(ifc);
      wb.addInterface(ifc);
      const enc = new RxOobEncoder();
      for (let i = 0; i < 3000; i++) {
        const len = i % 50 === 0 ? 9000 + Math.floor(rnd() * 3000) : Math.floor(rnd() * 1600);
        const data = Buffer.alloc(len);
        for (let k = 0; k < len; k += 7) data[k] = Math.floor(rnd() * 256);
        const r = randomRecord(rnd, '');
        if (i % 400 === 1) r.detail = 'ü'.repeat(40000); // over 65535 bytes: cut at a character boundary
        const hi = 0;
        const lo = Math.floor(rnd() * 2 ** 32);
        r.ts = tsToIso(ifc, hi, lo);
        enc.load(r, ifc, hi, lo);
        const orig = len + (i % 3 === 0 ? 17 : 0);
        const flags = i % 7 === 0 ? 0x12345 : null;
        const comment = i % 5 === 0 ? null : enc;
        wa.writeFrame(0, hi, lo, data, orig, comment === null ? null : oobComment(r), flags);
        const o = wb.reserveFrame(0, hi, lo, len, orig, comment, flags);
        assert.ok(o >= 0);
        wb.frameBuf.set(data, o);
        if (i % 100 === 0) { await wa.flush(); await wb.flush(); }
      }
      assert.equal(wa.bytesWritten, wb.bytesWritten);
      await wa.close();
      await wb.close();
      assert.deepEqual(b.bytes(), a.bytes());
    });
  }
});
