/**
 * Header building for the send path: outer tunnel headers (RFC 4301 §5.1.2), the UDP header of
 * UDP-encapsulated ESP (RFC 3948 §2.1), AH (RFC 4302 §2) and ESP (RFC 4303 §2) headers and
 * trailers, and the transport checksums that segmentation needs. Everything writes into a
 * caller-owned buffer at an offset; nothing allocates.
 */
import { foldSum, onesSum, PROTO_AH, PROTO_ESP, PROTO_UDP } from './ip.js';
import { writeU32 } from './ipsec.js';

export { writeU32 };

/** Outer TTL / hop limit of tunnel headers (RFC 4301 §5.1.2.1: "constructed"; 64 is the usual default). */
export const TUNNEL_TTL = 64;

/**
 * RFC 4303 §2.4 default padding: 1, 2, 3, ... (a constant table, as DPDK's pad.h). Padding is at
 * most 255 bytes.
 */
const PAD_TABLE = (() => {
  const t = new Uint8Array(255);
  for (let i = 0; i < 255; i++) t[i] = i + 1;
  return t;
})();

/**
 * ESP padding for `payloadLen` bytes of payload: (payload || padding || padLen || nextHeader) is
 * a multiple of `padUnit` (max(4, cipher block), RFC 4303 §2.4 and RFC 3602 §2.4).
 */
export function espPadLen(payloadLen: number, padUnit: number): number {
  const r = (payloadLen + 2) % padUnit;
  return r === 0 ? 0 : padUnit - r;
}

/** AH header length: 12 fixed bytes + ICV field, padded to 4 (IPv4) or 8 (IPv6) bytes (RFC 4302 §2.6). */
export function ahHeaderLen(ivLen: number, icvLen: number, ipVersion: number): number {
  const n = 12 + ivLen + icvLen;
  const a = ipVersion === 6 ? 8 : 4;
  return Math.ceil(n / a) * a;
}

export function writeU16(d: Uint8Array, o: number, v: number): void {
  d[o] = (v >>> 8) & 0xff;
  d[o + 1] = v & 0xff;
}


/**
 * ESP header (SPI, low 32 bits of the sequence number) at `o` (RFC 4303 §2.1–2.2). The IV follows
 * and is written by the caller.
 */
export function writeEspHeader(d: Uint8Array, o: number, spi: number, seqLow: number): void {
  writeU32(d, o, spi);
  writeU32(d, o + 4, seqLow);
}

/**
 * ESP trailer at `o`: padding 1,2,3,... (RFC 4303 §2.4), Pad Length (§2.5), Next Header (§2.6),
 * then `icvLen` zero bytes reserved for the ICV. Returns the end offset.
 */
export function writeEspTrailer(d: Uint8Array, o: number, padLen: number, nextHeader: number, icvLen: number): number {
  if (padLen) d.set(PAD_TABLE.subarray(0, padLen), o);
  o += padLen;
  d[o] = padLen;
  d[o + 1] = nextHeader;
  o += 2;
  if (icvLen) d.fill(0, o, o + icvLen);
  return o + icvLen;
}

/**
 * AH header at `o` with a zeroed Authentication Data field of `ahLen - 12` bytes
 * (RFC 4302 §2: Next Header, Payload Length = words - 2, Reserved 0, SPI, Sequence Number).
 */
export function writeAhHeader(d: Uint8Array, o: number, nextHeader: number, ahLen: number, spi: number, seqLow: number): void {
  d[o] = nextHeader;
  d[o + 1] = ahLen / 4 - 2; // RFC 4302 §2.2
  d[o + 2] = 0; // RFC 4302 §2.3 Reserved
  d[o + 3] = 0;
  writeU32(d, o + 4, spi);
  writeU32(d, o + 8, seqLow);
  d.fill(0, o + 12, o + ahLen);
}

/**
 * UDP header of UDP-encapsulated ESP (RFC 3948 §2.1): ports from the SA, Length = UDP header +
 * ESP packet, checksum 0 (IPv6 callers fill it in after encryption with {@link setUdpChecksum}).
 */
export function writeUdpHeader(d: Uint8Array, o: number, srcPort: number, dstPort: number, len: number): void {
  writeU16(d, o, srcPort);
  writeU16(d, o + 2, dstPort);
  writeU16(d, o + 4, len);
  d[o + 6] = 0;
  d[o + 7] = 0;
}

/**
 * Outer IPv4 header of a tunnel (RFC 4301 §5.1.2.1), 20 bytes, no options ("never copied").
 * `tos` = DSCP and ECN copied from the inner header (DSCP: RFC 4301 default "copy"; ECN: RFC 6040
 * §4.1 normal mode copies the inner ECN field). `df` per RFC 4301 §8.1 default "copy" from an
 * inner IPv4 header. TTL is constructed ({@link TUNNEL_TTL}). Checksum computed.
 */
export function writeOuterIpv4(d: Uint8Array, o: number, totalLen: number, tos: number, id: number, df: boolean, proto: number, src: Uint8Array, dst: Uint8Array): void {
  d[o] = 0x45;
  d[o + 1] = tos;
  writeU16(d, o + 2, totalLen);
  writeU16(d, o + 4, id & 0xffff);
  d[o + 6] = df ? 0x40 : 0;
  d[o + 7] = 0;
  d[o + 8] = TUNNEL_TTL;
  d[o + 9] = proto;
  d[o + 10] = 0;
  d[o + 11] = 0;
  d.set(src, o + 12);
  d.set(dst, o + 16);
  const c = ~foldSum(onesSum(d, o, o + 20)) & 0xffff;
  writeU16(d, o + 10, c);
}

/**
 * Outer IPv6 header of a tunnel (RFC 4301 §5.1.2.2; RFC 2473 §6): traffic class copied from the
 * inner header (DSCP + ECN as for IPv4), flow label copied from an inner IPv6 header (0 otherwise),
 * hop limit {@link TUNNEL_TTL}.
 */
export function writeOuterIpv6(d: Uint8Array, o: number, payloadLen: number, tclass: number, flow: number, nextHeader: number, src: Uint8Array, dst: Uint8Array): void {
  d[o] = 0x60 | (tclass >>> 4);
  d[o + 1] = ((tclass & 0x0f) << 4) | ((flow >>> 16) & 0x0f);
  d[o + 2] = (flow >>> 8) & 0xff;
  d[o + 3] = flow & 0xff;
  writeU16(d, o + 4, payloadLen);
  d[o + 6] = nextHeader;
  d[o + 7] = TUNNEL_TTL;
  d.set(src, o + 8);
  d.set(dst, o + 24);
}

/**
 * One's-complement sum of the IPv4/IPv6 pseudo-header (RFC 768, RFC 793, RFC 8200 §8.1):
 * addresses at srcOff/dstOff (`addrLen` 4 or 16 bytes each), protocol and upper-layer length.
 */
export function pseudoSum(d: Uint8Array, srcOff: number, dstOff: number, addrLen: number, proto: number, l4Len: number): number {
  let s = onesSum(d, srcOff, srcOff + addrLen);
  s = onesSum(d, dstOff, dstOff + addrLen, s);
  return s + proto + (l4Len >>> 16) + (l4Len & 0xffff);
}

/**
 * Recompute the TCP/UDP checksum of the segment at d[l4Off..l4End) whose checksum field is at
 * `l4Off + csumRel` (TCP 16, UDP 6). UDP: a computed 0 is sent as 0xFFFF (RFC 768).
 */
export function setL4Checksum(d: Uint8Array, srcOff: number, dstOff: number, addrLen: number, proto: number, l4Off: number, l4End: number, csumRel: number): void {
  d[l4Off + csumRel] = 0;
  d[l4Off + csumRel + 1] = 0;
  let s = pseudoSum(d, srcOff, dstOff, addrLen, proto, l4End - l4Off);
  s = onesSum(d, l4Off, l4End, s);
  let c = ~foldSum(s) & 0xffff;
  if (c === 0 && proto === PROTO_UDP) c = 0xffff;
  writeU16(d, l4Off + csumRel, c);
}

/** UDP checksum of UDP-encapsulated ESP over IPv6 (RFC 8200 §8.1: mandatory for IPv6). */
export function setUdpChecksum(d: Uint8Array, srcOff: number, dstOff: number, addrLen: number, udpOff: number, udpEnd: number): void {
  setL4Checksum(d, srcOff, dstOff, addrLen, PROTO_UDP, udpOff, udpEnd, 6);
}

/** True when an IP protocol number is an IPsec header (ESP or AH). */
export function isIpsecProto(p: number): boolean {
  return p === PROTO_ESP || p === PROTO_AH;
}
