/**
 * Send-path behaviour: SA selection and its tie-break, bypass / not-offloaded / seq-exhausted /
 * oversize, ESN rollover, large send, tunnel header fields, AH alignment, UDP encapsulation,
 * link-layer fix-ups, and IV determinism (--iv-seed) including across worker counts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nicProfile } from '../src/sa/nic.js';
import { runCapture, type RunOptions } from '../src/pipeline/run.js';
import { foldSum, onesSum } from '../src/packet/ip.js';
import { pseudoSum } from '../src/packet/build.js';
import { ahSa, bundle, ether, espSa, ipPacket, pcapBytes, Prng, runRx, runTx, saDoc, V4_DST, V6_DST } from './tx-helpers.js';

const pfx = (a: number[], len: number) => ({ family: 4 as const, addr: Buffer.from(a), len });

test('selection: most specific selector wins, file order breaks ties, inbound never used', () => {
  const r = new Prng(1);
  const nic = nicProfile('full');
  nic.encryption = nic.encryption.filter((e) => e !== 'des-cbc');
  const mk = (name: string, handle: number, sel: object, enc = 'aes-gcm-128', direction: 'inbound' | 'outbound' = 'outbound') =>
    bundle({ name, handle, mode: 'transport', esp: espSa(r, 0x100 + handle, enc, 'none'), selector: sel, direction });
  const doc = saDoc([
    mk('in-any', 9, { dst: pfx([10, 2, 0, 0], 32) }, 'aes-gcm-128', 'inbound'),
    mk('wide', 1, { dst: pfx([10, 2, 0, 0], 16) }),
    mk('narrow', 2, { dst: pfx([10, 2, 0, 0], 24) }),
    mk('narrow-tcp', 3, { dst: pfx([10, 2, 0, 0], 24), protocol: 6 }),
    mk('narrow-twin', 4, { dst: pfx([10, 2, 0, 0], 24) }),
    mk('src-too', 5, { dst: pfx([10, 2, 0, 0], 16), src: pfx([10, 1, 0, 0], 16) }),
    mk('old-des', 6, { dst: pfx([10, 9, 0, 0], 16) }, 'des-cbc'),
  ], nic);
  const pk = (dst: number[], proto: 'tcp' | 'udp', src = [10, 1, 0, 1]) => ether(ipPacket(r, { family: 4, proto, payloadLen: 20, src: Buffer.from(src), dst: Buffer.from(dst) }));
  const input = [
    pk([10, 2, 0, 5], 'udp'), // narrow (over its twin, file order)
    pk([10, 2, 0, 5], 'tcp'), // narrow-tcp
    pk([10, 2, 1, 5], 'udp'), // src-too (same dst length, longer src)
    pk([10, 2, 1, 5], 'udp', [10, 7, 0, 1]), // wide
    pk([10, 3, 0, 1], 'udp'), // bypass
    pk([10, 9, 0, 1], 'udp'), // not offloaded
  ];
  const tx = runTx(doc, input);
  assert.deepEqual(tx.oob.map((o) => [o.txStatus, o.handle]), [
    ['encrypted', 2], ['encrypted', 3], ['encrypted', 5], ['encrypted', 1], ['bypass', null], ['not-offloaded', 6],
  ]);
  assert.deepEqual(tx.outs[4]![0], input[4]);
  assert.deepEqual(tx.outs[5]![0], input[5]);
  assert.match(tx.oob[5]!.detail!, /des-cbc/);
  // Output that is already ESP is bypassed, not protected twice.
  const again = runTx(doc, [tx.outs[0]![0]!]);
  assert.equal(again.oob[0]!.txStatus, 'bypass');
  assert.match(again.oob[0]!.detail!, /already IPsec/);
  assert.deepEqual(again.outs[0]![0], tx.outs[0]![0]);
});

test('sequence numbers: OOB spi/seq, exhausted without ESN, ESN rollover across 2^32', () => {
  const r = new Prng(2);
  const input = [0, 1, 2, 3].map(() => ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: 30 })));
  const plain = saDoc([bundle({ name: 'a', handle: 1, mode: 'transport', esp: espSa(r, 0xc001, 'aes-cbc-128', 'hmac-sha256-128'), next: 0xfffffffe })]);
  const tx = runTx(plain, input);
  assert.deepEqual(tx.oob.map((o) => [o.txStatus, o.seq, o.spi]), [
    ['encrypted', 0xfffffffe, 0xc001], ['encrypted', 0xffffffff, 0xc001], ['seq-exhausted', null, 0xc001], ['seq-exhausted', null, 0xc001],
  ]);
  assert.deepEqual(tx.outs[2]![0], input[2]);
  const esn = saDoc([bundle({ name: 'e', handle: 1, mode: 'tunnel', esn: true, esp: espSa(r, 0xc002, 'aes-gcm-128', 'none'), ah: ahSa(r, 0xa002, 'hmac-sha1-96'), next: 0xfffffffe, high: 0 })]);
  const t2 = runTx(esn, input);
  assert.deepEqual(t2.oob.map((o) => [o.txStatus, o.seqHigh, o.seq]), [['encrypted', 0, 0xfffffffe], ['encrypted', 0, 0xffffffff], ['encrypted', 1, 0], ['encrypted', 1, 1]]);
  const rx = runRx(esn, t2.outs.map((o) => o[0]!));
  rx.oob.forEach((o, i) => assert.equal(o.cryptoStatus, 0, `#${i}: ${o.detail}`));
  assert.deepEqual(rx.outs, input);
});

test('large send: TCP segmented to the MTU, then each segment protected; oversize without lso', () => {
  const r = new Prng(3);
  for (const family of [4, 6] as const) {
    const big = ipPacket(r, { family, proto: 'tcp', payloadLen: 5000, tcpFlags: 0x80 | 0x18 | 0x01, tcpSeq: 0xfffff000, df: true });
    const doc = saDoc([bundle({ name: 'l', handle: 1, mode: 'transport', esp: espSa(r, 0xd001, 'aes-cbc-256', 'hmac-sha256-128'), next: 10 })]);
    const tx = runTx(doc, [ether(big)], { mtu: 1400 });
    const segs = tx.outs[0]!;
    assert.equal(tx.oob[0]!.txStatus, 'encrypted', tx.oob[0]!.detail ?? '');
    assert.equal(tx.oob[0]!.detail, `LSO: ${segs.length} segments`);
    assert.ok(segs.length >= 4);
    for (const s of segs) assert.ok(s.length - 14 <= 1400, `segment of ${s.length - 14} bytes`);
    const rx = runRx(doc, segs);
    const ipOff = 14;
    const hl = family === 4 ? (big[0]! & 15) * 4 : 40;
    const tcpHl = (big[hl + 12]! >> 4) * 4;
    let payload = Buffer.alloc(0);
    rx.outs.forEach((p, i) => {
      assert.equal(rx.oob[i]!.cryptoStatus, 0, rx.oob[i]!.detail ?? '');
      assert.equal(rx.oob[i]!.seq, 10 + i, 'consecutive ESP sequence numbers');
      const ip = p.subarray(ipOff);
      const t = ip.subarray(hl);
      assert.equal(t.readUInt32BE(4), (0xfffff000 + payload.length) >>> 0, 'TCP sequence advanced');
      const flags = t[13]!;
      assert.equal((flags & 0x09) !== 0, i === rx.outs.length - 1, 'FIN/PSH only on the last segment');
      assert.equal((flags & 0x80) !== 0, i === 0, 'CWR only on the first segment');
      if (family === 4) {
        assert.equal(ip.readUInt16BE(4), (big.readUInt16BE(4) + i) & 0xffff, 'IP id incremented');
        assert.equal(foldSum(onesSum(ip, 0, hl)), 0xffff, 'IPv4 header checksum');
      }
      const s = pseudoSum(ip, family === 4 ? 12 : 8, family === 4 ? 16 : 24, family === 4 ? 4 : 16, 6, t.length);
      assert.equal(foldSum(onesSum(t, 0, t.length, s)), 0xffff, 'TCP checksum');
      payload = Buffer.concat([payload, t.subarray(tcpHl)]);
    });
    assert.deepEqual(payload, big.subarray(hl + tcpHl));
    // Without lso in the NIC profile: reported, unchanged. Non-TCP: never segmented.
    const nic = nicProfile('full');
    nic.lso = false;
    const off = saDoc([bundle({ name: 'l', handle: 1, mode: 'transport', esp: espSa(r, 0xd002, 'aes-gcm-128', 'none') })], nic);
    const t2 = runTx(off, [ether(big)], { mtu: 1400 });
    assert.equal(t2.oob[0]!.txStatus, 'oversize');
    assert.deepEqual(t2.outs[0], [ether(big)]);
    const udp = ether(ipPacket(r, { family, proto: 'udp', payloadLen: 1400 }));
    assert.equal(runTx(doc, [udp], { mtu: 1400 }).oob[0]!.txStatus, 'oversize');
  }
});

test('tunnel header: DSCP/ECN and DF copied, TTL 64, per-run IPv4 id, EtherType and raw link type fixed', () => {
  const r = new Prng(4);
  const d4 = saDoc([bundle({ name: 't', handle: 1, mode: 'tunnel', tunnelFamily: 4, esp: espSa(r, 0xe001, 'aes-gcm-128', 'none') })]);
  const inner = [ipPacket(r, { family: 4, proto: 'udp', payloadLen: 10, tos: 0xb9, df: true }), ipPacket(r, { family: 4, proto: 'udp', payloadLen: 10, tos: 0x02, df: false }), ipPacket(r, { family: 6, proto: 'udp', payloadLen: 10, tos: 0x2f })];
  const tx = runTx(d4, inner.map(ether));
  const o = tx.outs.map((x) => x[0]!.subarray(14));
  assert.deepEqual(o.map((x) => [x[1], x[6]! & 0x40, x[8], x.readUInt16BE(4)]), [[0xb9, 0x40, 64, 0], [0x02, 0, 64, 1], [0x2f, 0, 64, 2]]);
  assert.equal(tx.outs[2]![0]!.readUInt16BE(12), 0x0800, '6-in-4: EtherType IPv4');
  assert.equal(tx.oob[0]!.tunnelHandle, 1);
  const d6 = saDoc([bundle({ name: 't', handle: 1, mode: 'tunnel', tunnelFamily: 6, esp: espSa(r, 0xe002, 'aes-gcm-128', 'none') })]);
  const t6 = runTx(d6, inner.map(ether));
  const v6 = t6.outs[0]![0]!;
  assert.equal(v6.readUInt16BE(12), 0x86dd, '4-in-6: EtherType IPv6');
  assert.equal(((v6[14]! & 15) << 4) | (v6[15]! >> 4), 0xb9, 'traffic class copied');
  assert.equal(v6[14 + 7], 64, 'hop limit');
  // LINKTYPE_IPV4 input whose frames become IPv6: the frame must move to a raw-IP interface.
  const raw = runTx(d6, [inner[0]!], { linkType: 228 });
  assert.equal(raw.raw[0], true);
  assert.equal(raw.outs[0]![0]![0]! >> 4, 6);
});

test('AH length alignment (RFC 4302 §2.6), UDP encapsulation ports and checksums (RFC 3948)', () => {
  const r = new Prng(5);
  for (const [family, ahLen] of [[4, 28], [6, 32]] as const) {
    const doc = saDoc([bundle({ name: 'a', handle: 1, mode: 'transport', ah: ahSa(r, 0xa001, 'hmac-sha256-128') })]);
    const tx = runTx(doc, [ether(ipPacket(r, { family, proto: 'udp', payloadLen: 17 }))]);
    const ip = tx.outs[0]![0]!.subarray(14);
    const ah = ip.subarray(family === 4 ? 20 : 40);
    assert.equal((ah[1]! + 2) * 4, ahLen);
    assert.equal(ip[family === 4 ? 9 : 6], 51);
  }
  for (const family of [4, 6] as const) {
    const doc = saDoc([bundle({ name: 'u', handle: 1, mode: 'transport', esp: espSa(r, 0xb001, 'aes-gcm-128', 'none'), udp: { type: 'transport', srcPort: 4501, dstPort: 4502 } })]);
    const tx = runTx(doc, [ether(ipPacket(r, { family, proto: 'tcp', payloadLen: 33 }))]);
    const ip = tx.outs[0]![0]!.subarray(14);
    const hl = family === 4 ? 20 : 40;
    const u = ip.subarray(hl);
    assert.deepEqual([u.readUInt16BE(0), u.readUInt16BE(2), u.readUInt16BE(4)], [4501, 4502, ip.length - hl]);
    assert.equal(u.readUInt32BE(8), 0xb001, 'ESP right after UDP');
    if (family === 4) assert.equal(u.readUInt16BE(6), 0, 'IPv4: checksum 0');
    else assert.equal(foldSum(onesSum(u, 0, u.length, pseudoSum(ip, 8, 24, 16, 17, u.length))), 0xffff, 'IPv6: valid checksum');
    const rx = runRx(doc, tx.outs.map((x) => x[0]!));
    assert.equal(rx.oob[0]!.cryptoStatus, 0, rx.oob[0]!.detail ?? '');
  }
});

function ivs(frames: Buffer[], ivOff: number, ivLen: number): string[] {
  return frames.map((f) => f.subarray(ivOff, ivOff + ivLen).toString('hex'));
}

test('--iv-seed: byte-identical runs; without it every IV differs between runs', () => {
  const r = new Prng(6);
  const input = Array.from({ length: 50 }, () => ether(ipPacket(r, { family: 4, proto: 'udp', payloadLen: r.int(100) })));
  for (const [enc, ivLen] of [['aes-cbc-128', 16], ['aes-gcm-128', 8], ['3des-cbc', 8]] as const) {
    const doc = saDoc([bundle({ name: 's', handle: 1, mode: 'transport', esp: espSa(r, 0xf001, enc, enc.startsWith('aes-gcm') ? 'none' : 'hmac-sha1-96') })]);
    const a = runTx(doc, input, { ivSeed: '00112233' }).outs.map((o) => o[0]!);
    const b = runTx(doc, input, { ivSeed: '0x00112233', batch: 7 }).outs.map((o) => o[0]!);
    assert.deepEqual(a, b, `${enc}: same seed, same bytes (whatever the batching)`);
    const c = runTx(doc, input, { ivSeed: '00112234' }).outs.map((o) => o[0]!);
    const ivOff = 14 + 20 + 8;
    ivs(a, ivOff, ivLen).forEach((iv, i) => assert.notEqual(iv, ivs(c, ivOff, ivLen)[i], `${enc}: another seed, another IV`));
    const x = ivs(runTx(doc, input).outs.map((o) => o[0]!), ivOff, ivLen);
    const y = ivs(runTx(doc, input).outs.map((o) => o[0]!), ivOff, ivLen);
    x.forEach((iv, i) => assert.notEqual(iv, y[i], `${enc}: random IVs differ, packet ${i}`));
    assert.equal(new Set(x).size, x.length, `${enc}: no IV repeats within a run`);
  }
});

test('pipeline: --iv-seed output is byte-identical for 0 and 2 workers', async () => {
  const r = new Prng(7);
  const dir = mkdtempSync(join(tmpdir(), 'tx-pipe-'));
  try {
    const input = Array.from({ length: 300 }, (_, i) => ether(ipPacket(r, { family: i % 3 ? 4 : 6, proto: 'udp', payloadLen: r.int(600), dst: i % 3 ? V4_DST : V6_DST })));
    writeFileSync(join(dir, 'in.pcap'), pcapBytes(input));
    const doc = saDoc([
      bundle({ name: 'cbc', handle: 1, mode: 'tunnel', esp: espSa(r, 0x9001, 'aes-cbc-128', 'hmac-sha256-128'), selector: { dst: { family: 4, addr: V4_DST, len: 32 } } }),
      bundle({ name: 'gcm', handle: 2, mode: 'transport', esp: espSa(r, 0x9002, 'aes-gcm-256', 'none'), ah: ahSa(r, 0x9003, 'aes-gmac-128') }),
    ]);
    const run = async (workers: number, out: string): Promise<Buffer> => {
      const opts: RunOptions = {
        path: 'tx', input: join(dir, 'in.pcap'), output: join(dir, out), oob: join(dir, out + '.jsonl'), format: 'pcapng', sa: doc,
        inPlace: false, dropFailed: false, anyDirection: false, esn: 'infer', replayWindow: null, workers, ivSeed: 'c0ffee', mtu: 1500, progress: false, batchFrames: 64,
      };
      const res = await runCapture(opts);
      assert.equal(res.stats.outcomes.get('encrypted'), 300);
      return readFileSync(join(dir, out));
    };
    const a = await run(0, 'a.pcapng');
    const b = await run(2, 'b.pcapng');
    assert.ok(a.equals(b), 'workers 0 and 2 write the same bytes');
    assert.equal(readFileSync(join(dir, 'a.pcapng.jsonl'), 'utf8'), readFileSync(join(dir, 'b.pcapng.jsonl'), 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('large send in tunnel mode and transport over tunnel: every segment decrypts to the original stream', () => {
  const r = new Prng(8);
  const big = ipPacket(r, { family: 4, proto: 'tcp', payloadLen: 4000, tcpFlags: 0x19 });
  const docs = [
    saDoc([bundle({ name: 't', handle: 1, mode: 'tunnel', tunnelFamily: 6, esp: espSa(r, 0x7001, 'aes-gcm-128', 'none') })]),
    saDoc([
      bundle({ name: 'u', handle: 1, mode: 'transport', over: 't', esp: espSa(r, 0x7002, 'aes-cbc-128', 'hmac-sha1-96'), ah: ahSa(r, 0x7003, 'hmac-sha256-128') }),
      bundle({ name: 't', handle: 2, mode: 'tunnel', esp: espSa(r, 0x7004, 'aes-gcm-256', 'none'), selector: { protocol: 250 }, udp: { type: 'transport-over-tunnel', srcPort: 4500, dstPort: 4500 } }),
    ]),
  ];
  for (const doc of docs) {
    const tx = runTx(doc, [ether(big)], { mtu: 1280 });
    assert.equal(tx.oob[0]!.txStatus, 'encrypted', tx.oob[0]!.detail ?? '');
    const segs = tx.outs[0]!;
    assert.ok(segs.length >= 4);
    for (const s of segs) assert.ok(s.length - 14 <= 1280);
    const rx = runRx(doc, segs);
    let payload = Buffer.alloc(0);
    rx.outs.forEach((p, i) => {
      assert.equal(rx.oob[i]!.cryptoStatus, 0, rx.oob[i]!.detail ?? '');
      const t = p.subarray(14 + 20);
      payload = Buffer.concat([payload, t.subarray((t[12]! >> 4) * 4)]);
    });
    assert.deepEqual(payload, big.subarray(20 + (big[20 + 12]! >> 4) * 4));
  }
});
