/**
 * Packet decoding: link layers, IPv4/IPv6 (options, extension headers, fragments), RFC 3948
 * port-4500 demultiplexing, AH mutable-field zeroing (RFC 4302 §3.3.3.1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeL2, L2Info, setL2Family, TypeField } from '../src/packet/l2.js';
import { decodeIp, fixIpv4Checksum, IpError, IpInfo, ipv4ChecksumOk } from '../src/packet/ip.js';
import { formatIp } from '../src/sa/addr.js';
import { IpsecInfo, IpsecKind, locateIpsec } from '../src/packet/ipsec.js';
import { zeroMutableIpv4, zeroMutableIpv6 } from '../src/packet/mutable.js';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

const V4_ESP = hex('45000030 1234 4000 40 32 0000 c0000202 c0000201' + '0000c001 00000007' + '00'.repeat(20));

test('l2: Ethernet, 802.1Q, QinQ, LLC/SNAP', () => {
  const l2 = new L2Info();
  const eth = Buffer.concat([hex('ffffffffffff 020000000001 0800'), V4_ESP]);
  decodeL2(1, eth, l2);
  assert.equal(l2.l3Off, 14);
  assert.equal(l2.ipVersion, 4);
  assert.equal(l2.encap, 'ethernet');
  const q = Buffer.concat([hex('ffffffffffff 020000000001 8100 0064 86dd')]);
  decodeL2(1, q, l2);
  assert.equal(l2.l3Off, 18);
  assert.equal(l2.ipVersion, 6);
  assert.equal(l2.encap, 'vlan');
  const qinq = hex('ffffffffffff 020000000001 88a8 0001 8100 0064 0800 45');
  decodeL2(1, qinq, l2);
  assert.equal(l2.l3Off, 22);
  assert.equal(l2.typeOff, 20);
  const snap = hex('ffffffffffff 020000000001 0030 aaaa03 000000 0800 45');
  decodeL2(1, snap, l2);
  assert.equal(l2.encap, 'llcsnap');
  assert.equal(l2.l3Off, 22);
  decodeL2(1, hex('ffffffffffff0200'), l2);
  assert.equal(l2.truncated, true);
  assert.equal(l2.l3Off, -1);
});

test('l2: raw, IPv4/IPv6 link types, SLL, SLL2, BSD NULL in both byte orders', () => {
  const l2 = new L2Info();
  decodeL2(101, V4_ESP, l2);
  assert.deepEqual([l2.l3Off, l2.ipVersion], [0, 4]);
  decodeL2(229, hex('60'), l2);
  assert.deepEqual([l2.l3Off, l2.ipVersion, l2.typeField], [0, 6, TypeField.LinkType]);
  decodeL2(113, Buffer.concat([hex('0000 0001 0006 020000000001 0000 0800'), V4_ESP]), l2);
  assert.deepEqual([l2.l3Off, l2.ipVersion], [16, 4]);
  decodeL2(276, Buffer.concat([hex('86dd 0000 00000002 0001 00 06 020000000001 0000'), V4_ESP]), l2);
  assert.deepEqual([l2.l3Off, l2.ipVersion], [20, 6]);
  decodeL2(0, Buffer.concat([hex('02000000'), V4_ESP]), l2);
  assert.deepEqual([l2.l3Off, l2.ipVersion, l2.typeField], [4, 4, TypeField.NullLE]);
  decodeL2(0, Buffer.concat([hex('0000001e'), V4_ESP]), l2);
  assert.deepEqual([l2.l3Off, l2.ipVersion, l2.typeField], [4, 6, TypeField.NullBE]);
  decodeL2(147, V4_ESP, l2);
  assert.equal(l2.l3Off, -1);
});

test('l2: family rewrite after decapsulation', () => {
  const l2 = new L2Info();
  const eth = Buffer.concat([hex('ffffffffffff 020000000001 0800'), V4_ESP]);
  decodeL2(1, eth, l2);
  assert.equal(setL2Family(eth, l2, 6), true);
  assert.equal(eth.readUInt16BE(12), 0x86dd);
  const nul = Buffer.concat([hex('02000000'), V4_ESP]);
  decodeL2(0, nul, l2);
  setL2Family(nul, l2, 6);
  assert.equal(nul.readUInt32LE(0), 24);
  decodeL2(228, V4_ESP, l2);
  assert.equal(setL2Family(V4_ESP, l2, 6), false, 'LINKTYPE_IPV4 cannot carry IPv6');
});

test('ip: IPv4 lengths, options, fragments, truncation', () => {
  const ip = new IpInfo();
  decodeIp(V4_ESP, 0, V4_ESP.length, ip);
  assert.equal(ip.error, IpError.None);
  assert.deepEqual([ip.version, ip.payloadOff, ip.proto, ip.end, ip.fragment, ip.options], [4, 20, 50, 48, false, false]);
  assert.equal(formatIp(V4_ESP.subarray(ip.dstOff, ip.dstOff + 4)), '192.0.2.1');
  const cut = V4_ESP.subarray(0, 40);
  decodeIp(cut, 0, cut.length, ip);
  assert.equal(ip.error, IpError.Truncated);
  const bad = Buffer.from(V4_ESP);
  bad[0] = 0x44;
  decodeIp(bad, 0, bad.length, ip);
  assert.equal(ip.error, IpError.Bad);
  const frag = Buffer.from(V4_ESP);
  frag.writeUInt16BE(0x2000, 6); // MF
  decodeIp(frag, 0, frag.length, ip);
  assert.equal(ip.fragment, true);
  const lie = Buffer.from(V4_ESP);
  lie.writeUInt16BE(10, 2);
  decodeIp(lie, 0, lie.length, ip);
  assert.equal(ip.error, IpError.Bad);
  const c = Buffer.from(V4_ESP);
  fixIpv4Checksum(c, 0);
  assert.ok(ipv4ChecksumOk(c, 0));
});

test('ip: IPv6 walks hop-by-hop, routing and destination options; fragment header flags reassembly', () => {
  const ip = new IpInfo();
  // 40 header + HBH (8) + DST (8) + ESP(8)
  const v6 = hex('60000000 0018 00 40' + '20010000000000000000000000000001' + '20010000000000000000000000000002' + '3c00 0104 00000000' + '3200 0104 00000000' + '0000c001 00000001');
  decodeIp(v6, 0, v6.length, ip);
  assert.equal(ip.error, IpError.None);
  assert.deepEqual([ip.payloadOff, ip.proto, ip.protoFieldOff, ip.extHeaders], [56, 50, 48, true]);
  assert.equal(formatIp(v6.subarray(ip.dstOff, ip.dstOff + 16)), '2001::2');
  const fr = hex('60000000 0010 2c 40' + '20010000000000000000000000000001' + '20010000000000000000000000000002' + '32000001 00000001' + '0000c001 00000001');
  decodeIp(fr, 0, fr.length, ip);
  assert.equal(ip.fragment, true);
  assert.equal(ip.proto, 50);
});

test('ipsec: ESP, AH, UDP 4500 (ESP, IKE marker, keepalive), truncated headers', () => {
  const ip = new IpInfo();
  const s = new IpsecInfo();
  decodeIp(V4_ESP, 0, V4_ESP.length, ip);
  locateIpsec(V4_ESP, ip, null, s);
  assert.deepEqual([s.kind, s.spi, s.seq, s.off], [IpsecKind.Esp, 0xc001, 7, 20]);
  const udp = (payload: string): Buffer => {
    const p = hex(payload);
    const b = Buffer.concat([hex('45000000 0000 0000 40 11 0000 0a000001 0a000002'), hex('11941194'), Buffer.alloc(4), p]);
    b.writeUInt16BE(b.length, 2);
    b.writeUInt16BE(8 + p.length, 24);
    return b;
  };
  for (const [payload, kind] of [['ff', IpsecKind.Keepalive], ['00000000 aabbccdd', IpsecKind.Ike], ['0000c001 00000001 0000', IpsecKind.Esp]] as const) {
    const b = udp(payload);
    decodeIp(b, 0, b.length, ip);
    locateIpsec(b, ip, null, s);
    assert.equal(s.kind, kind, payload);
  }
  const esp = udp('0000c001 00000001');
  decodeIp(esp, 0, esp.length, ip);
  locateIpsec(esp, ip, null, s);
  assert.deepEqual([s.udpOff, s.off, s.spi], [20, 28, 0xc001]);
  const other = udp('0000c001');
  other.writeUInt16BE(53, 20);
  other.writeUInt16BE(53, 22);
  decodeIp(other, 0, other.length, ip);
  assert.equal(locateIpsec(other, ip, null, s).kind, IpsecKind.None);
  assert.equal(locateIpsec(other, ip, new Set([53]), s).kind, IpsecKind.Esp, 'extra NAT-T port from the SA file');
  const ah = hex('45000024 0000 0000 40 33 0000 0a000001 0a000002' + '11 04 0000 0000a001 00000009');
  decodeIp(ah, 0, ah.length, ip);
  locateIpsec(ah, ip, null, s);
  assert.deepEqual([s.kind, s.spi, s.seq, s.ahLen, s.ahNext, s.truncated], [IpsecKind.Ah, 0xa001, 9, 24, 17, true]);
  const short = hex('4500001a 0000 0000 40 32 0000 0a000001 0a000002 0000c0');
  decodeIp(short, 0, short.length, ip);
  locateIpsec(short, ip, null, s);
  assert.deepEqual([s.kind, s.hasSpi, s.truncated], [IpsecKind.Esp, false, true]);
});

test('AH ICV input: IPv4 mutable fields and options (RFC 4302 §3.3.3.1.1, App. A1)', () => {
  // IHL 8: Router Alert (kept), Record Route (zeroed), NOP + EOL
  const h = hex('48 b8 0034 1234 4000 3f 33 abcd 0a000001 0a000002' + '94040000' + '07070400 000000' + '01');
  assert.equal(h.length, 32);
  zeroMutableIpv4(h, 0);
  assert.equal(h[1], 0, 'TOS');
  assert.equal(h.readUInt16BE(6), 0, 'flags + offset');
  assert.equal(h[8], 0, 'TTL');
  assert.equal(h.readUInt16BE(10), 0, 'checksum');
  assert.equal(h.readUInt16BE(4), 0x1234, 'identification kept');
  assert.equal(h.readUInt32BE(20), 0x94040000, 'router alert kept');
  assert.deepEqual([...h.subarray(24, 31)], [0, 0, 0, 0, 0, 0, 0], 'record route zeroed entirely');
  assert.equal(h[31], 1, 'NOP kept');
});

test('AH ICV input: IPv6 traffic class, flow label, hop limit and mutable option data (RFC 4302 §3.3.3.1.2)', () => {
  const v6 = hex('6abcdef0 0010 00 40' + '20010000000000000000000000000001' + '20010000000000000000000000000002' +
    // HBH: next 51, len 0 (8 bytes): option 0x3e (mutable bit 0x20 set) len 2 data ffff, then PadN 0? use Pad1 x2
    '33 00 3e 02 ffff 00 00' + '00000000 00000000');
  zeroMutableIpv6(v6, 0, 48);
  assert.equal(v6.readUInt32BE(0), 0x60000000);
  assert.equal(v6[7], 0, 'hop limit');
  assert.deepEqual([...v6.subarray(40, 48)], [0x33, 0, 0x3e, 2, 0, 0, 0, 0], 'mutable option data zeroed, type and length kept');
});
