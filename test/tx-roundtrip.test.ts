/**
 * Property test of the send path: rx(tx(x)) == x on random IPv4/IPv6 TCP/UDP/ICMP traffic, for
 * every ESP suite of the registry (all encryptions × compatible integrities, every GCM ICV
 * length), AH with each integrity, and AH+ESP, × transport / tunnel × v4, v6, 4-in-6, 6-in-4 ×
 * plain / UDP-encapsulated ESP, with and without ESN; plus transport over tunnel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ahSa, ahSuites, bundle, ether, espSa, espSuites, Prng, randomPacket, runRx, runTx, saDoc, type BundleOpts } from './tx-helpers.js';

const PACKETS = 4;

interface Shape { mode: 'transport' | 'tunnel'; inner: 4 | 6; outer: 4 | 6 }
const SHAPES: Shape[] = [
  { mode: 'transport', inner: 4, outer: 4 },
  { mode: 'transport', inner: 6, outer: 6 },
  { mode: 'tunnel', inner: 4, outer: 4 },
  { mode: 'tunnel', inner: 6, outer: 6 },
  { mode: 'tunnel', inner: 4, outer: 6 },
  { mode: 'tunnel', inner: 6, outer: 4 },
];

function roundTrip(label: string, r: Prng, b: BundleOpts, inner: 4 | 6): void {
  const doc = saDoc([bundle(b)]);
  const input: Buffer[] = [];
  for (let i = 0; i < PACKETS; i++) input.push(ether(randomPacket(r, inner)));
  const tx = runTx(doc, input);
  for (let i = 0; i < input.length; i++) {
    assert.equal(tx.oob[i]!.txStatus, 'encrypted', `${label} #${i}: ${tx.oob[i]!.detail}`);
    assert.notDeepEqual(tx.outs[i]![0], input[i], `${label} #${i}: unchanged`);
  }
  const rx = runRx(doc, tx.outs.map((o) => o[0]!));
  for (let i = 0; i < input.length; i++) {
    const o = rx.oob[i]!;
    assert.equal(o.cryptoDone, 1, `${label} #${i}: rx did not process (${o.detail})`);
    assert.equal(o.cryptoStatus, 0, `${label} #${i}: rx status ${o.cryptoStatus} (${o.detail})`);
    assert.deepEqual(rx.outs[i], input[i], `${label} #${i}: rx(tx(x)) != x`);
  }
}

test('round trip: every ESP suite × mode × family × UDP encapsulation', () => {
  const r = new Prng(0x5eed0001);
  let n = 0;
  for (const s of espSuites()) {
    for (const sh of SHAPES) {
      for (const udp of [false, true]) {
        const esn = r.int(3) === 0;
        const b: BundleOpts = {
          name: 'out', handle: 1, mode: sh.mode, tunnelFamily: sh.outer,
          esp: espSa(r, 0x1000 + n, s.encryption, s.integrity, s.icv),
          udp: udp ? { type: sh.mode, srcPort: 4500, dstPort: 4500 } : null,
          esn, high: esn ? 7 : 0, next: 1 + r.int(1000),
        };
        roundTrip(`ESP ${s.encryption}/${s.integrity}${s.icv ? '/' + s.icv : ''} ${sh.mode} ${sh.inner}in${sh.outer}${udp ? ' udp' : ''}${esn ? ' esn' : ''}`, r, b, sh.inner);
        n++;
      }
    }
  }
  assert.ok(n > 500);
});

test('round trip: AH with each integrity, and AH+ESP, × mode × family', () => {
  const r = new Prng(0x5eed0002);
  const esps = espSuites().filter((s) => ['aes-gcm-128', 'aes-cbc-128', 'null', '3des-cbc'].includes(s.encryption));
  let n = 0;
  for (const integ of ahSuites()) {
    for (const sh of SHAPES) {
      for (const withEsp of [false, true]) {
        const esn = r.int(3) === 0;
        const s = r.pick(esps);
        const b: BundleOpts = {
          name: 'out', handle: 1, mode: sh.mode, tunnelFamily: sh.outer,
          ah: ahSa(r, 0x2000 + n, integ),
          esp: withEsp ? espSa(r, 0x3000 + n, s.encryption, s.integrity, s.icv) : null,
          esn, high: esn ? 3 : 0,
        };
        roundTrip(`AH ${integ}${withEsp ? `+ESP ${s.encryption}/${s.integrity}` : ''} ${sh.mode} ${sh.inner}in${sh.outer}${esn ? ' esn' : ''}`, r, b, sh.inner);
        n++;
      }
    }
  }
});

test('round trip: transport over tunnel (ESP/ESP, AH/ESP, UDP-encapsulated either side)', () => {
  const r = new Prng(0x5eed0003);
  const cases: { inner: 'esp' | 'ah' | 'ahesp'; udp: 'none' | 'transport-over-tunnel' | 'tunnel-over-transport' }[] = [
    { inner: 'esp', udp: 'none' }, { inner: 'ah', udp: 'none' }, { inner: 'ahesp', udp: 'none' },
    { inner: 'esp', udp: 'transport-over-tunnel' }, { inner: 'esp', udp: 'tunnel-over-transport' },
  ];
  for (const cs of cases) {
    for (const fam of [[4, 4], [6, 6], [4, 6], [6, 4]] as const) {
      const ue = cs.udp === 'none' ? null : { type: cs.udp, srcPort: 4500, dstPort: 4500 };
      const tb = bundle({ name: 'tun', handle: 2, mode: 'tunnel', tunnelFamily: fam[1], esp: espSa(r, 0x4001, 'aes-gcm-256', 'none'), udp: ue, selector: { protocol: 250 } });
      const ub = bundle({
        name: 'tr', handle: 1, mode: 'transport', over: 'tun', udp: cs.inner === 'esp' ? ue : null,
        esp: cs.inner === 'ah' ? null : espSa(r, 0x4002, 'aes-cbc-128', 'hmac-sha256-128'),
        ah: cs.inner === 'esp' ? null : ahSa(r, 0x4003, 'hmac-sha1-96'),
      });
      const doc = saDoc([ub, tb]);
      const input = Array.from({ length: PACKETS }, () => ether(randomPacket(r, fam[0])));
      const tx = runTx(doc, input);
      const label = `${cs.inner} ${cs.udp} ${fam[0]}in${fam[1]}`;
      for (let i = 0; i < input.length; i++) {
        const o = tx.oob[i]!;
        assert.equal(o.txStatus, 'encrypted', `${label}: ${o.detail}`);
        assert.equal(o.handle, 1);
        assert.equal(o.tunnelHandle, 2);
      }
      const rx = runRx(doc, tx.outs.map((o) => o[0]!));
      for (let i = 0; i < input.length; i++) {
        assert.equal(rx.oob[i]!.cryptoStatus, 0, `${label}: ${rx.oob[i]!.detail}`);
        assert.equal(rx.oob[i]!.nextCryptoDone, 1, `${label}: inner not checked: ${rx.oob[i]!.detail}`);
        assert.deepEqual(rx.outs[i], input[i], `${label} #${i}`);
      }
    }
  }
});
