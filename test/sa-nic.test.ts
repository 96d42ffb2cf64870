/**
 * NIC profiles and offload decisions, NDIS_IPSEC_OFFLOAD_V2 values and encoding, and SaTable
 * applying ADD_SA / UPDATE_SA / DELETE_SA events at frames and times.
 */

import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatCaps } from '../src/sa/check.js';
import { loadSaFile, parseSaText } from '../src/sa/load.js';
import { encodeNdisCaps, nicProfile, toNdisCaps } from '../src/sa/nic.js';
import { SaTable } from '../src/sa/table.js';

const FIX = fileURLToPath(new URL('../../fixtures/sa/', import.meta.url));
const GCM = (salt: string): string => `"000102030405060708090a0b0c0d0e0f ${salt}"`;

function decisions(text: string): [string, boolean, string | null][] {
  return parseSaText(text, 't.yaml', { env: {} }).bundles.map((b) => [b.name, b.offloaded, b.notOffloadedReason]);
}

describe('NIC decisions', () => {
  it('ndis profile: algorithms outside NDIS, capacity counts offloaded bundles only, UDP-ESP types', () => {
    const doc = loadSaFile(join(FIX, 'examples/ndis-capacity.yaml'));
    assert.deepEqual(doc.bundles.map((b) => [b.name, b.offloaded, b.notOffloadedReason]), [
      ['one', true, null],
      ['two', true, null],
      ['ctr', false, 'encryption aes-ctr-128 not in the NIC profile (ndis)'],
      ['four', false, 'saCapacity 2 reached'],
      ['natt', false, 'UDP-ESP type tunnel not in udpEsp'],
    ]);
    assert.ok(doc.warnings.some((w) => w.path === 'sas[3]' && w.message.includes('is not offloaded: saCapacity 2 reached')));
  });

  it('capability overrides: AH+ESP, IPv6, transport, ESN, integrity, transport-over-tunnel', () => {
    const esp = `esp: { spi: SPI, encryption: aes-gcm-128, encryptionKey: ${GCM('01020304')} }`;
    const n = (i: number): string => esp.replace('SPI', String(0x1000 + i));
    const text = `version: 1
nic: { ahEspCombined: false, ipv6: false, transport: false, esn: false, integrity: [hmac-sha1-96], transportTunnelCombined: false }
sas:
  - name: ahesp
    mode: tunnel
    tunnel: { src: 192.0.2.1, dst: 192.0.2.2 }
    ${n(1)}
    ah: { spi: 0x2001, integrity: hmac-sha1-96, integrityKey: "0102030405060708090a0b0c0d0e0f1011121314" }
  - { name: v6, mode: tunnel, tunnel: { src: "2001:db8::1", dst: "2001:db8::2" }, ${n(2)} }
  - { name: tpt, mode: transport, ${n(3)} }
  - { name: esn, esn: true, ${n(4)} }
  - { name: sha256, ah: { spi: 0x2002, integrity: hmac-sha256-128, integrityKey: "${'00'.repeat(32)}" } }
  - { name: tun, mode: tunnel, tunnel: { src: 192.0.2.1, dst: 192.0.2.2 }, ${n(5)} }
  - { name: inner, over: tun, ${n(6)} }
  - { name: auto, ${n(7)} }
`;
    assert.deepEqual(decisions(text), [
      ['ahesp', false, 'AH+ESP bundle but ahEspCombined is false'],
      ['v6', false, 'IPv6 endpoints but ipv6 is false'],
      ['tpt', false, 'transport mode not supported (transport is false)'],
      ['esn', false, 'ESN bundle but esn is false'],
      ['sha256', false, 'integrity hmac-sha256-128 not in the NIC profile (full)'],
      ['tun', true, null],
      ['inner', false, 'transport-over-tunnel bundle but transportTunnelCombined is false'],
      ['auto', true, null],
    ]);
  });

  it('--nic overrides the file\'s whole nic section', () => {
    const text = `version: 1\nnic: { profile: full, saCapacity: 1 }\nsas:\n  - esp: { spi: 4097, encryption: aes-ctr-256, encryptionKey: "${'00'.repeat(36)}", integrity: hmac-sha1-96, integrityKey: "${'00'.repeat(20)}" }\n  - esp: { spi: 4098, encryption: chacha20-poly1305, encryptionKey: "${'00'.repeat(36)}" }\n`;
    assert.deepEqual(decisions(text).map((d) => d[2]), [null, 'saCapacity 1 reached']);
    const doc = parseSaText(text, 't.yaml', { env: {}, nicOverride: 'ndis' });
    assert.deepEqual(doc.bundles.map((b) => b.notOffloadedReason), ['encryption aes-ctr-256 not in the NIC profile (ndis)', 'encryption chacha20-poly1305 not in the NIC profile (ndis)']);
    assert.equal(doc.nic.saCapacity, 1024);
  });
});

describe('NDIS_IPSEC_OFFLOAD_V2', () => {
  it('full profile values', () => {
    const caps = toNdisCaps(nicProfile('full'));
    assert.deepEqual(caps, {
      Encapsulation: 0x7,
      IPv6Supported: true,
      IPv4Options: true,
      IPv6NonIPsecExtensionHeaders: true,
      Ah: true,
      Esp: true,
      AhEspCombined: true,
      Transport: true,
      Tunnel: true,
      TransportTunnelCombined: true,
      LsoSupported: true,
      ExtendedSequenceNumbers: true,
      UdpEsp: 0xf,
      AuthenticationAlgorithms: 0x3f,
      EncryptionAlgorithms: 0x1ff,
      SaOffloadCapacity: 1024,
    });
    assert.deepEqual(toNdisCaps(nicProfile('ndis')), caps, 'ndis differs only in algorithms outside the NDIS bits');
  });

  it('overrides change the masks; 32-byte little-endian encoding at the §2.1 offsets', () => {
    const doc = parseSaText('version: 1\nnic: { profile: ndis, saCapacity: 0x10203, udpEsp: [tunnel, tunnel-over-transport], encryption: [aes-gcm-128, aes-cbc-256, "null"], integrity: [hmac-sha256-128], lso: false, ah: false }\nsas: []\n', 't.yaml', { env: {} });
    const caps = toNdisCaps(doc.nic);
    assert.equal(caps.UdpEsp, 0x2 | 0x8);
    assert.equal(caps.EncryptionAlgorithms, 0x8 | 0x100 | 0x1);
    assert.equal(caps.AuthenticationAlgorithms, 0x4);
    assert.equal(caps.SaOffloadCapacity, 0x10203);
    const buf = encodeNdisCaps(caps);
    assert.equal(buf.length, 32);
    assert.equal(buf.toString('hex'), ['07000000', '01010100', '01010101', '01000100', '0a000000', '04000000', '09010000', '03020100'].join(''));
    assert.deepEqual(encodeNdisCaps(doc.nic), buf);
  });

  it('formatCaps: every field with numeric values, text and JSON', () => {
    const text = formatCaps(nicProfile('full'), false);
    for (const f of ['Encapsulation', 'IPv6Supported', 'IPv4Options', 'IPv6NonIPsecExtensionHeaders', 'Ah', 'Esp', 'AhEspCombined', 'Transport', 'Tunnel', 'TransportTunnelCombined', 'LsoSupported', 'ExtendedSequenceNumbers', 'UdpEsp', 'AuthenticationAlgorithms', 'EncryptionAlgorithms', 'SaOffloadCapacity']) {
      assert.match(text, new RegExp(`\\s${f}\\s`), f);
    }
    assert.match(text, /EncryptionAlgorithms\s+0x000001ff {2}IPSEC_OFFLOAD_V2_ENCRYPTION_NONE \| /);
    assert.match(text, /AuthenticationAlgorithms\s+0x0000003f/);
    assert.match(text, /UdpEsp\s+0x0000000f/);
    assert.match(text, /Encapsulation\s+0x00000007 {2}NDIS_ENCAPSULATION_NULL \| NDIS_ENCAPSULATION_IEEE_802_3 \| NDIS_ENCAPSULATION_IEEE_802_3_P_AND_Q/);
    assert.match(text, /beyond NDIS .*aes-ctr-128.*chacha20-poly1305.*hmac-sha384-192/);
    const json = JSON.parse(formatCaps(nicProfile('ndis'), true));
    assert.equal(json.NDIS_IPSEC_OFFLOAD_V2.EncryptionAlgorithms, 0x1ff);
    assert.equal(json.NDIS_IPSEC_OFFLOAD_V2.AuthenticationAlgorithms, 0x3f);
    assert.deepEqual(json.beyondNdis, { encryption: [], integrity: [] });
    assert.equal(json.bytes.length, 64);
  });
});

describe('SaTable events', () => {
  const body = (spi: number, extra = ''): string => `{ ${extra}esp: { spi: ${spi}, encryption: aes-gcm-128, encryptionKey: ${GCM('01020304')} } }`;
  const text = `version: 1
nic: { saCapacity: 2 }
sas:
  - name: a
    esn: true
    ah: { spi: 0x3001, integrity: hmac-sha1-96, integrityKey: "0102030405060708090a0b0c0d0e0f1011121314" }
    esp: { spi: 0x1001, encryption: aes-gcm-128, encryptionKey: ${GCM('01020304')} }
  - { name: b, ${body(0x1002).slice(2)}
events:
  - { at: { frame: 10 }, update: { sa: a, spi: 0x3001, high: 7 } }
  - { at: { frame: 10 }, update: { sa: b, high: 1 } }
  - { at: { frame: 20 }, add: { name: c, ${body(0x1003).slice(2)} }
  - { at: { frame: 30 }, delete: { sa: a } }
  - { at: { time: "2026-01-01T00:00:01.000000002Z" }, add: { name: d, ${body(0x1004).slice(2)} }
  - { at: { frame: 40 }, update: { sa: a, high: 9 } }
  - { at: { frame: 40 }, update: { sa: d, spi: 0x9999, high: 9 } }
  - { at: { frame: 40 }, delete: { sa: c } }
  - { at: { frame: 50 }, add: { name: e, handle: 3, ${body(0x1005).slice(2)} }
`;
  const T0 = 1_767_225_600_000_000_000n; // 2026-01-01T00:00:00Z

  it('applies add/update/delete in timeline order like the OIDs', () => {
    const doc = parseSaText(text, 't.yaml', { env: {} });
    const table = new SaTable(doc);
    assert.deepEqual(table.applyEventsUpTo(1, T0), []);
    assert.equal(table.offloadedCount(), 2);

    const c10 = table.applyEventsUpTo(10, T0);
    assert.deepEqual(c10.map((c) => c.kind), ['update', 'rejected']);
    assert.ok(c10[0].kind === 'update' && c10[0].member === 'ah' && c10[0].high === 7 && c10[0].spi === 0x3001);
    assert.equal(table.byName('a')!.sequence.high, 7);
    assert.equal(doc.bundles[0].sequence.high, 0, 'the document itself is not changed');
    assert.ok(c10[1].kind === 'rejected' && c10[1].op === 'UPDATE_SA' && c10[1].statusCode === 0xc000000d);
    assert.equal(c10[1].diagnostic.message, 'frame 10: UPDATE_SA failed: bundle "b" (handle 2) does not use ESN → NDIS_STATUS_INVALID_PARAMETER (0xC000000D)');

    // frame 20: the add exceeds capacity (2 offloaded): known to the host, not offloaded.
    const c20 = table.applyEventsUpTo(20, T0);
    assert.ok(c20[0].kind === 'add' && c20[0].bundle.handle === 4 && !c20[0].bundle.offloaded);
    assert.equal(c20[0].bundle.notOffloadedReason, 'saCapacity 2 reached');
    assert.match(table.warnings.at(-1)!.message, /^frame 20: ADD_SA "c" \(handle 4\) not offloaded: saCapacity 2 reached$/);

    // frame 30: delete frees capacity; the time event is due at this frame's timestamp.
    const c30 = table.applyEventsUpTo(30, T0 + 1_000_000_002n);
    assert.deepEqual(c30.map((c) => [c.kind, 'bundle' in c ? c.bundle.name : null]), [['delete', 'a'], ['add', 'd']]);
    const d = table.byName('d')!;
    assert.equal(d.handle, 5, 'adds are numbered after every handle of the file (explicit ones too)');
    assert.equal(d.offloaded, true);
    assert.equal(table.byHandle(1), undefined);

    const c40 = table.applyEventsUpTo(40, T0 + 2_000_000_000n);
    assert.deepEqual(c40.map((c) => c.kind), ['rejected', 'rejected', 'delete']);
    assert.ok(c40[0].kind === 'rejected' && c40[0].diagnostic.message.includes('no live bundle named "a"'));
    assert.ok(c40[1].kind === 'rejected' && c40[1].diagnostic.message.includes('has no SA with SPI 0x00009999'));

    // frame 50: an explicit handle never used before is honoured (capacity is full again).
    const c50 = table.applyEventsUpTo(50, T0 + 3_000_000_000n);
    assert.ok(c50[0].kind === 'add' && c50[0].bundle.handle === 3 && !c50[0].bundle.offloaded, 'b and d fill saCapacity 2');
    assert.deepEqual(table.bundles().map((b) => [b.handle, b.name]), [[2, 'b'], [3, 'e'], [5, 'd']]);
    assert.equal(table.pendingCount(), 0);
    assert.deepEqual(table.applyEventsUpTo(60, T0 + 4_000_000_000n), []);
  });

  it('an add whose handle was used before gets the next never-used one', () => {
    const doc = parseSaText(text, 't.yaml', { env: {} });
    const add = doc.events.find((e) => e.kind === 'add' && e.bundle.name === 'e')!;
    assert.ok(add.kind === 'add');
    add.bundle.handle = 1; // as if the file had reused handle 1 (the loader refuses that)
    const table = new SaTable(doc);
    table.applyEventsUpTo(30, T0 + 2_000_000_000n);
    const c = table.applyEventsUpTo(50, T0 + 3_000_000_000n).find((x) => x.kind === 'add')!;
    assert.ok(c.kind === 'add' && c.bundle.handle === 6);
  });

  it('events due before the first frame apply at once; the loader numbers adds after the sas', () => {
    const doc = loadSaFile(join(FIX, 'examples/full.yaml'));
    const table = new SaTable(doc);
    const changes = table.applyEventsUpTo(9000, 0n);
    assert.deepEqual(changes.map((c) => c.kind), ['update', 'delete', 'add']);
    assert.equal(table.byName('b-to-a-2')!.handle, 7);
    assert.equal(table.pendingCount(), 1);
  });
});
