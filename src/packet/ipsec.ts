/**
 * Locating the IPsec header of an IP datagram: ESP (protocol 50), AH (51), or ESP inside UDP
 * (RFC 3948 §2: port 4500; a 4-byte zero non-ESP marker is IKE, a single 0xFF byte is a
 * NAT-keepalive, anything else starts with a non-zero SPI).
 */
import { type IpInfo, PROTO_AH, PROTO_ESP, PROTO_UDP } from './ip.js';

export const IpsecKind = {
  None: 0,
  Esp: 1,
  Ah: 2,
  /** UDP 4500 with the non-ESP marker: IKE control traffic. */
  Ike: 3,
  /** UDP 4500 carrying the single byte 0xFF. */
  Keepalive: 4,
} as const;
export type IpsecKind = (typeof IpsecKind)[keyof typeof IpsecKind];

export const NAT_T_PORT = 4500;

export class IpsecInfo {
  kind: IpsecKind = IpsecKind.None;
  /** Offset of the ESP or AH header. */
  off = 0;
  /** Offset of the UDP header for UDP-encapsulated ESP, else -1. */
  udpOff = -1;
  spi = 0;
  seq = 0;
  /** SPI known (at least 4 bytes present). */
  hasSpi = false;
  /** Header shorter than its fixed part (ESP 8 bytes, AH 12 bytes + ICV). */
  truncated = false;
  /** AH: total header length from Payload Length ((len + 2) * 4), next header. */
  ahLen = 0;
  ahNext = 0;
}

/**
 * Find the IPsec header of the datagram described by `ip` in `d`. `extraPorts` lists UDP ports
 * besides 4500 that carry ESP (from SA files' udpEncapsulation), or null.
 */
export function locateIpsec(d: Uint8Array, ip: IpInfo, extraPorts: ReadonlySet<number> | null, out: IpsecInfo): IpsecInfo {
  out.kind = IpsecKind.None;
  out.udpOff = -1;
  out.hasSpi = false;
  out.truncated = false;
  out.spi = 0;
  out.seq = 0;
  out.ahLen = 0;
  out.ahNext = 0;
  const end = ip.end;
  let p = ip.payloadOff;
  if (ip.proto === PROTO_UDP) {
    if (p + 8 > end) return out;
    const sport = (d[p]! << 8) | d[p + 1]!;
    const dport = (d[p + 2]! << 8) | d[p + 3]!;
    const isNatT = dport === NAT_T_PORT || sport === NAT_T_PORT || (extraPorts !== null && (extraPorts.has(dport) || extraPorts.has(sport)));
    if (!isNatT) return out;
    const u = p + 8;
    const n = end - u;
    if (n === 1 && d[u] === 0xff) { out.kind = IpsecKind.Keepalive; out.udpOff = p; return out; }
    if (n >= 4 && d[u] === 0 && d[u + 1] === 0 && d[u + 2] === 0 && d[u + 3] === 0) { out.kind = IpsecKind.Ike; out.udpOff = p; return out; }
    if (n < 4) return out; // too short to be anything we know: plain UDP
    out.udpOff = p;
    p = u;
    return esp(d, p, end, out);
  }
  if (ip.proto === PROTO_ESP) return esp(d, p, end, out);
  if (ip.proto === PROTO_AH) {
    out.kind = IpsecKind.Ah;
    out.off = p;
    if (p + 12 > end) {
      out.truncated = true;
      if (p + 8 <= end) { out.hasSpi = true; out.spi = readU32(d, p + 4); }
      return out;
    }
    out.ahNext = d[p]!;
    out.ahLen = (d[p + 1]! + 2) * 4;
    out.spi = readU32(d, p + 4);
    out.seq = readU32(d, p + 8);
    out.hasSpi = true;
    if (p + out.ahLen > end) out.truncated = true;
    return out;
  }
  return out;
}

function esp(d: Uint8Array, p: number, end: number, out: IpsecInfo): IpsecInfo {
  out.kind = IpsecKind.Esp;
  out.off = p;
  if (p + 4 <= end) { out.hasSpi = true; out.spi = readU32(d, p); }
  if (p + 8 > end) { out.truncated = true; return out; }
  out.seq = readU32(d, p + 4);
  return out;
}

export function readU32(d: Uint8Array, o: number): number {
  return ((d[o]! << 24) | (d[o + 1]! << 16) | (d[o + 2]! << 8) | d[o + 3]!) >>> 0;
}

export function writeU32(d: Uint8Array, o: number, v: number): void {
  d[o] = v >>> 24;
  d[o + 1] = (v >>> 16) & 0xff;
  d[o + 2] = (v >>> 8) & 0xff;
  d[o + 3] = v & 0xff;
}
