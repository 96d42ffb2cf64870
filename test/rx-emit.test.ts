/**
 * The addon's rx output writer (src/pipeline/rx-emit.ts, NativeEmit in src/crypto/native.ts)
 * against the JS writers: every rx fixture, and synthetic captures whose runs cross seconds,
 * interfaces and sequence numbers near 2^32, must give the same pcapng and OOB bytes both ways;
 * a run the addon refuses must be written by the JS writers instead. Frames written from the job
 * data (blocks built around the payloads where the crypto step left them, pwritev) must give the
 * same bytes as frames copied into the writer's buffer, across many batches and workers (a job
 * buffer reused before its writes were done would show), and a run that does not fit its room
 * is copied. Without the addon the JS writers run both times and the checks still hold.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCapture, type RunOptions } from '../src/pipeline/run.js';
import { createNativeEmit, nativeAvailable } from '../src/crypto/native.js';
import { loadSaFile } from '../src/sa/load.js';
import type { SaDocument } from '../src/sa/model.js';
import { buildPcap, NgBuilder, readEspFrames } from './helpers/capture-util.js';
import { firstDiff, loadRxManifest, RX_DIR, rxSa } from './helpers/rx-fixtures.js';
import { ether, ipPacket, Prng } from './tx-helpers.js';
import { transCbcSa, tunGcmSa, writeSaFile } from './helpers/sa-yaml.js';

interface Outs {
  pcapng: Buffer | null;
  oob: Buffer | null;
  native: number;
  refused: number;
  scattered: number;
}

type Variant = Partial<Pick<RunOptions, 'dropFailed' | 'inPlace' | 'workers' | 'anyDirection' | 'nativeEmit' | 'scatteredWrites' | 'batchFrames'>> & { noCapture?: boolean; noOob?: boolean };

async function rx(input: string, sa: SaDocument, v: Variant): Promise<Outs> {
  const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-emit-'));
  try {
    const output = v.noCapture ? null : join(dir, 'out.pcapng');
    const oob = v.noOob ? null : join(dir, 'oob.jsonl');
    const res = await runCapture({
      path: 'rx', input, output, oob, format: 'pcapng', sa, inPlace: v.inPlace ?? false, dropFailed: v.dropFailed ?? false,
      anyDirection: v.anyDirection ?? false, esn: 'infer', replayWindow: null, workers: v.workers ?? 0, ivSeed: null, mtu: 1500,
      progress: false, nativeEmit: v.nativeEmit ?? true, scatteredWrites: v.scatteredWrites ?? true, batchFrames: v.batchFrames,
    });
    return {
      pcapng: output ? readFileSync(output) : null,
      oob: oob ? readFileSync(oob) : null,
      native: res.stats.nativeOutputFrames,
      refused: res.stats.refusedOutputFrames,
      scattered: res.stats.scatteredOutputFrames,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function same(label: string, a: Outs, b: Outs): void {
  if (a.pcapng || b.pcapng) assert.ok(a.pcapng!.equals(b.pcapng!), `${label}: pcapng differs: ${firstDiff(a.pcapng!, b.pcapng!)}`);
  if (a.oob || b.oob) assert.ok(a.oob!.equals(b.oob!), `${label}: OOB differs: ${firstDiff(a.oob!, b.oob!)}`);
}

/** Output of the addon's writer (default) and of the JS writers only; returns the frames the addon wrote. */
async function compare(label: string, input: string, sa: SaDocument, v: Variant = {}): Promise<number> {
  return (await compareOuts(label, input, sa, v)).native;
}

/** compare(), returning the addon's run's outputs. */
async function compareOuts(label: string, input: string, sa: SaDocument, v: Variant = {}): Promise<Outs> {
  const nat = await rx(input, sa, v);
  const js = await rx(input, sa, { ...v, nativeEmit: false });
  assert.equal(js.native, 0);
  same(label, nat, js);
  assert.equal(nat.refused, 0, `${label}: the addon refused a run`);
  return nat;
}

/** Plain frames (nanosecond pcap) through tx with a fixed IV seed; returns the ESP capture's path. */
async function encrypt(dir: string, frames: { sec: number; frac: number; data: Buffer }[], sa: SaDocument): Promise<string> {
  const plainPcap = join(dir, 'plain.pcap');
  writeFileSync(plainPcap, buildPcap(frames, { nano: true }));
  const esp = join(dir, 'esp.pcap');
  await runCapture({
    path: 'tx', input: plainPcap, output: esp, oob: null, format: 'pcap', sa, inPlace: false, dropFailed: false,
    anyDirection: false, esn: 'infer', replayWindow: null, workers: 0, ivSeed: '0102', mtu: 9000, progress: false,
  });
  return esp;
}

describe('rx output written by the addon = the JS writers', () => {
  it('every rx fixture, pcapng + OOB; drop-failed, in-place, OOB only and pcapng only on a sample', async () => {
    const m = loadRxManifest();
    let native = 0;
    let i = 0;
    for (const c of m.cases) {
      const input = join(RX_DIR, c.capture);
      const sa = rxSa(c.saFile);
      native += await compare(c.name, input, sa);
      if (i++ % 4 === 0) {
        native += await compare(`${c.name} copied into the writer's buffer`, input, sa, { scatteredWrites: false });
        await compare(`${c.name} --drop-failed`, input, sa, { dropFailed: true });
        await compare(`${c.name} --in-place`, input, sa, { inPlace: true });
        native += await compare(`${c.name} OOB only`, input, sa, { noCapture: true });
        native += await compare(`${c.name} pcapng only`, input, sa, { noOob: true });
      }
    }
    if (nativeAvailable()) assert.ok(native > 100, `the addon wrote only ${native} frames of the fixtures`);
    else assert.equal(native, 0);
  });

  it('frames written from the job data = copied = JS: many small batches, 0 and 2 workers, transport and tunnel, v4 and v6; small frames copied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-emit-'));
    try {
      const saFile = writeSaFile(join(dir, 'sa.yaml'), [
        tunGcmSa(),
        transCbcSa(),
        { name: 'tun6', mode: 'tunnel', dst: 'fd00:6::/64', tunnel: { src: 'fd00::2', dst: 'fd00::1' }, esp: `spi: 0x6006, encryption: aes-gcm-128, encryptionKey: "${'66'.repeat(20)}", icvLength: 16` },
        { name: 'trans6', mode: 'transport', dst: 'fd00:7::/64', esp: `spi: 0x7007, encryption: aes-cbc-256, encryptionKey: "${'77'.repeat(32)}", integrity: hmac-sha1-96, integrityKey: "${'88'.repeat(20)}"` },
      ]);
      const sa = loadSaFile(saFile);
      const r = new Prng(21);
      const dsts = [Buffer.from([10, 1, 1, 9]), Buffer.from([10, 2, 2, 9]), Buffer.from('fd000006000000000000000000000009', 'hex'), Buffer.from('fd000007000000000000000000000009', 'hex')];
      // 560..1400-byte datagrams, and as many of 0..300 bytes among them (in the same runs): jobs
      // under EMIT_ROOM_MIN_LEN get no room, and their frames are copied
      const large = (i: number): boolean => (i % 3 === 1) === i < 4500;
      const frames = Array.from({ length: 6000 }, (_, i) => {
        const dst = dsts[i % 4]!;
        const payloadLen = large(i) ? 560 + ((i * 53) % 840) : (i * 53) % 300;
        return { sec: 1700000000 + (i >> 6), frac: i * 1000, data: ether(ipPacket(r, { family: dst.length === 4 ? 4 : 6, proto: 'udp', payloadLen, dst })) };
      });
      const esp = await encrypt(dir, frames, sa);
      for (const v of [{ workers: 0, batchFrames: 16 }, { workers: 2, batchFrames: 16 }, { workers: 2 }] as Variant[]) {
        const label = `workers ${v.workers}, batches of ${v.batchFrames ?? 'any'}`;
        const w = await compareOuts(label, esp, sa, { ...v, anyDirection: true });
        const copied = await rx(esp, sa, { ...v, anyDirection: true, scatteredWrites: false });
        same(`${label}: copied`, w, copied);
        assert.equal(copied.scattered, 0);
        if (nativeAvailable()) {
          // the large frames (the first frame, small, declares the output interface)
          assert.equal(w.scattered, frames.filter((_, i) => large(i)).length, `${label}: frames written from the job data`);
          assert.equal(copied.native, w.native);
        } else assert.equal(w.scattered, 0);
      }
      if (nativeAvailable()) {
        // a run the addon refuses in place (the same checks as emit's) is written by the JS
        // writers; every frame the addon writes otherwise is refused, or in a run with no room
        const ne = createNativeEmit()!;
        ne.emitInPlace = () => false;
        const refused = await rx(esp, sa, { anyDirection: true, nativeEmit: ne });
        same('refused in place', refused, await rx(esp, sa, { anyDirection: true, nativeEmit: false }));
        const normal = await rx(esp, sa, { anyDirection: true });
        assert.equal(refused.scattered, 0);
        assert.ok(refused.refused > 0 && normal.scattered > 0);
        assert.equal(refused.native + refused.refused, normal.native);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a frame whose headers need more room than its job left before it (IPv6, 64 bytes of destination options, transport) is copied', { skip: nativeAvailable() ? false : 'native addon unavailable' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-emit-'));
    try {
      const saFile = writeSaFile(join(dir, 'sa.yaml'), [
        tunGcmSa(),
        { name: 'trans6', mode: 'transport', dst: 'fd00:7::/64', esp: `spi: 0x7007, encryption: aes-cbc-256, encryptionKey: "${'77'.repeat(32)}", integrity: hmac-sha1-96, integrityKey: "${'88'.repeat(20)}"` },
      ]);
      const sa = loadSaFile(saFile);
      const r = new Prng(23);
      const dst6 = Buffer.from('fd000007000000000000000000000009', 'hex');
      const frames = Array.from({ length: 200 }, (_, i) => {
        if (i % 2 === 0) return { sec: 1700000000, frac: i, data: ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: 600, dst: Buffer.from([10, 1, 1, 9]) })) };
        // IPv6 + destination options (next header 60; 64 bytes: PadN) + the UDP datagram
        const ip = ipPacket(r, { family: 6, proto: 'udp', payloadLen: 600, dst: dst6 });
        const opts = Buffer.alloc(64);
        opts[0] = ip[6]!;
        opts[1] = 7; // (7 + 1) * 8 bytes
        opts[2] = 1; // PadN
        opts[3] = 60;
        const v6 = Buffer.concat([ip.subarray(0, 40), opts, ip.subarray(40)]);
        v6[6] = 60;
        v6.writeUInt16BE(v6.length - 40, 4);
        return { sec: 1700000000, frac: i, data: ether(v6) };
      });
      const esp = await encrypt(dir, frames, sa);
      // the IPv4 frames (but the first: it declares the output interface) are written from the job
      // data, the IPv6 ones (122 bytes needed before) copied: in runs of one frame, and in runs of
      // an IPv4 and an IPv6 frame (the IPv6 job second, after the IPv4 one's room)
      for (const [batchFrames, scattered] of [[1, frames.length / 2 - 1], [2, frames.length / 2 - 1], [0, frames.length / 2 - 1]] as const) {
        const out = await compareOuts(`IPv6 destination options, batches of ${batchFrames}`, esp, sa, { anyDirection: true, batchFrames: batchFrames || undefined });
        assert.equal(out.native, frames.length - 1);
        assert.equal(out.scattered, scattered, `batches of ${batchFrames}`);
        const recs = out.oob!.toString().trim().split('\n').map((l) => JSON.parse(l) as { cryptoStatus: string });
        assert.ok(recs.every((o) => o.cryptoStatus === 'CRYPTO_SUCCESS'), 'every frame decrypted');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a run that does not fit its room (an SA name of 300 characters in each comment) is copied', { skip: nativeAvailable() ? false : 'native addon unavailable' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-emit-'));
    try {
      const saFile = writeSaFile(join(dir, 'sa.yaml'), [tunGcmSa('t'.repeat(300)), transCbcSa()]);
      const sa = loadSaFile(saFile);
      const r = new Prng(22);
      // the long name's frames first, then the short name's: only those are written from the job data
      const frames = Array.from({ length: 400 }, (_, i) => ({
        sec: 1700000000, frac: i, data: ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: 600, dst: Buffer.from([10, i < 200 ? 1 : 2, i < 200 ? 1 : 2, 9]) })),
      }));
      const esp = await encrypt(dir, frames, sa);
      // batches of 1: a run of one frame, whose room alone says it does not fit (no next frame's block)
      for (const batchFrames of [100, 1]) {
        const out = await compareOuts(`long SA name, batches of ${batchFrames}`, esp, sa, { anyDirection: true, batchFrames });
        assert.equal(out.native, frames.length - 1);
        assert.equal(out.scattered, 200, `${out.scattered} frames written from the job data, expected the short name's`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs across seconds, interfaces, transport and tunnel SAs, sequence numbers near 2^32, workers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-emit-'));
    try {
      // two SAs (tunnel GCM, transport CBC + SHA-256) and a third whose sequence numbers start near 2^32
      const saFile = writeSaFile(join(dir, 'sa.yaml'), [
        tunGcmSa(),
        transCbcSa('trans.v-2:x'),
        { name: 'high', mode: 'tunnel', dst: '10.3.3.0/24', tunnel: { src: '192.0.2.4', dst: '192.0.2.3' }, extra: 'sequence: { next: 4294967000 }', esp: `spi: 0xfffffff0, encryption: aes-gcm-256, encryptionKey: "${'44'.repeat(36)}", icvLength: 16` },
      ]);
      const sa = loadSaFile(saFile);
      const r = new Prng(11);
      const dsts = [Buffer.from([10, 1, 1, 9]), Buffer.from([10, 2, 2, 9]), Buffer.from([10, 3, 3, 9])];
      const frames = Array.from({ length: 3000 }, (_, i) => {
        const data = ether(ipPacket(r, { family: i % 7 === 3 ? 6 : 4, proto: 'udp', payloadLen: (i * 37) % 700, dst: dsts[i % 3]! }));
        // 0.37 s apart: a run of frames spans many seconds (the date part changes inside a run)
        return { sec: 1700000000 + Math.floor((i * 370) / 1000), frac: ((i * 370) % 1000) * 1000000 + i, data };
      });
      // nanosecond pcap in, then the same frames on two pcapng interfaces of different resolutions
      const esp = await encrypt(dir, frames, sa);
      let native = await compare('synthetic pcap', esp, sa, { anyDirection: true });
      native += await compare('synthetic pcap, 2 workers', esp, sa, { anyDirection: true, workers: 2 });
      const espFrames = readEspFrames(readFileSync(esp));
      const ng = new NgBuilder();
      ng.shb();
      ng.idb(1, 65535, [[9, Buffer.from([9])]]);
      ng.idb(1, 65535, [[9, Buffer.from([6])]]);
      espFrames.forEach((f, i) => {
        const ns = BigInt(f.sec) * 1_000_000_000n + BigInt(f.frac);
        const ts = i % 2 === 0 ? ns : ns / 1000n;
        ng.epb(i % 2, Number(ts >> 32n), Number(ts & 0xffffffffn), f.data, f.data.length);
      });
      const espNg = join(dir, 'esp.pcapng');
      writeFileSync(espNg, ng.bytes());
      native += await compare('synthetic pcapng, two interfaces', espNg, sa, { anyDirection: true });
      // plain frames (IPv6 ones match no selector, the third SA runs out of sequence numbers) take the JS writers
      if (nativeAvailable()) assert.ok(native > 5000, `the addon wrote only ${native} frames`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('numbers of every digit count: sequence numbers across each power of ten, timestamp fractions with leading zeros', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-emit-'));
    try {
      // SA k (k = 1..9) starts at 10^k - 2: its four frames have k and k + 1 digits; one more ends at 2^32 - 1
      const starts = [1, ...Array.from({ length: 9 }, (_, k) => 10 ** (k + 1) - 2), 4294967292];
      const saFile = writeSaFile(join(dir, 'sa.yaml'), starts.map((next, k) => ({
        name: `d${k}`, mode: 'tunnel', dst: `10.5.${k}.0/24`, tunnel: { src: '192.0.2.6', dst: '192.0.2.5' }, extra: `sequence: { next: ${next} }`,
        esp: `spi: ${0x5000 + k}, encryption: aes-gcm-128, encryptionKey: "${'55'.repeat(20)}", icvLength: 16`,
      })));
      const sa = loadSaFile(saFile);
      const r = new Prng(5);
      const fracs = [0, 1, 9, 10, 99, 100, 12345, 999999, 1000000, 99999999, 100000000, 999999999];
      const frames = Array.from({ length: starts.length * 4 }, (_, i) => ({
        sec: 1700000000 + i, frac: fracs[i % fracs.length]!,
        data: ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: 40 + i, dst: Buffer.from([10, 5, i % starts.length, 7]) })),
      }));
      const out = await compareOuts('digit counts', await encrypt(dir, frames, sa), sa, { anyDirection: true });
      // all but the first frame (it declares the output interface, the JS way)
      if (nativeAvailable()) assert.equal(out.native, frames.length - 1);
      const seqs = new Set(out.oob!.toString().trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq));
      for (const s0 of starts) for (let d = 0; d < 4; d++) assert.ok(seqs.has(s0 + d), `sequence number ${s0 + d} not in the output`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a run the addon refuses is written by the JS writers', { skip: nativeAvailable() ? false : 'native addon unavailable' }, async () => {
    const c = loadRxManifest().cases.find((x) => x.capture.startsWith('esp-aes-gcm-128-icv16-tunnel-v4'))!;
    const input = join(RX_DIR, c.capture);
    const sa = rxSa(c.saFile);
    const ne = createNativeEmit()!;
    ne.emit = () => false;
    ne.emitInPlace = () => false;
    const refused = await rx(input, sa, { nativeEmit: ne });
    const js = await rx(input, sa, { nativeEmit: false });
    same('refused', refused, js);
    assert.equal(refused.native, 0);
    assert.ok(refused.refused > 0, 'no run was offered to the addon');
  });
});
