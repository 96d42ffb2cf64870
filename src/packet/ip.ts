/**
 * IPv4 / IPv6 decoding down to the first header that is not an IPv6 extension header, with the
 * locations the engines need to verify AH and to rewrite headers after decapsulation.
 * Decodes in place into a reused IpInfo; checks every length before reading; never throws.
 */

export const PROTO_HOPOPTS = 0;
export const PROTO_IPV4 = 4;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_IPV6 = 41;
export const PROTO_ROUTING = 43;
export const PROTO_FRAGMENT = 44;
export const PROTO_ESP = 50;
export const PROTO_AH = 51;
export const PROTO_ICMPV6 = 58;
export const PROTO_NONE = 59;
export const PROTO_DSTOPTS = 60;

export const IpError = {
  None: 0,
  /** Fewer bytes captured than the header says (snaplen or a cut frame). */
  Truncated: 1,
  /** A length field that cannot be right (IHL < 5, total length < header, ...). */
  Bad: 2,
} as const;
export type IpError = (typeof IpError)[keyof typeof IpError];

export class IpInfo {
  version = 0;
  /** Offset of the IP header. */
  off = 0;
  /** End of the datagram per its length field, bounded by the bytes available. */
  end = 0;
  /** End per the length field (may exceed `end` when the capture is cut). */
  declaredEnd = 0;
  /** Offset of the first non-extension header (the upper protocol or AH/ESP). */
  payloadOff = 0;
  /** Upper protocol at payloadOff. */
  proto = 0;
  /** Offset of the byte that holds `proto` (IPv4 protocol, or the last next-header field). */
  protoFieldOff = 0;
  srcOff = 0;
  dstOff = 0;
  addrLen = 4;
  /** IPv4 MF/offset set, or an IPv6 fragment header before payloadOff. */
  fragment = false;
  /** IPv4 options present (IHL > 5). */
  options = false;
  /** IPv6 extension headers other than AH/ESP before payloadOff. */
  extHeaders = false;
  error: IpError = IpError.None;
  detail = '';
}

function fail(out: IpInfo, e: IpError, detail: string): IpInfo {
  out.error = e;
  out.detail = detail;
  return out;
}

/** Decode the IP datagram at d[off..limit). */
export function decodeIp(d: Uint8Array, off: number, limit: number, out: IpInfo): IpInfo {
  out.error = IpError.None;
  out.detail = '';
  out.off = off;
  out.fragment = false;
  out.options = false;
  out.extHeaders = false;
  out.version = 0;
  if (off >= limit) return fail(out, IpError.Truncated, 'no IP header');
  const v = d[off]! >> 4;
  out.version = v;
  if (v === 4) {
    if (off + 20 > limit) return fail(out, IpError.Truncated, 'truncated IPv4 header');
    const ihl = (d[off]! & 0x0f) * 4;
    if (ihl < 20) return fail(out, IpError.Bad, `IPv4 header length ${ihl} < 20`);
    if (off + ihl > limit) return fail(out, IpError.Truncated, 'truncated IPv4 options');
    const total = (d[off + 2]! << 8) | d[off + 3]!;
    if (total < ihl) return fail(out, IpError.Bad, `IPv4 total length ${total} < header length ${ihl}`);
    out.declaredEnd = off + total;
    out.end = Math.min(off + total, limit);
    out.options = ihl > 20;
    const fragField = ((d[off + 6]! << 8) | d[off + 7]!) & 0x3fff;
    out.fragment = fragField !== 0;
    out.proto = d[off + 9]!;
    out.protoFieldOff = off + 9;
    out.srcOff = off + 12;
    out.dstOff = off + 16;
    out.addrLen = 4;
    out.payloadOff = off + ihl;
    if (out.declaredEnd > limit) return fail(out, IpError.Truncated, `IPv4 total length ${total} but only ${limit - off} bytes captured`);
    return out;
  }
  if (v === 6) {
    if (off + 40 > limit) return fail(out, IpError.Truncated, 'truncated IPv6 header');
    const plen = (d[off + 4]! << 8) | d[off + 5]!;
    out.srcOff = off + 8;
    out.dstOff = off + 24;
    out.addrLen = 16;
    out.declaredEnd = off + 40 + plen;
    out.end = Math.min(out.declaredEnd, limit);
    let nh = d[off + 6]!;
    let nhOff = off + 6;
    let p = off + 40;
    if (plen === 0 && nh !== PROTO_NONE) return fail(out, IpError.Bad, 'IPv6 payload length 0 (jumbogram) not supported');
    // Walk hop-by-hop, routing, fragment and destination-options headers (RFC 8200 §4).
    for (;;) {
      if (nh === PROTO_HOPOPTS || nh === PROTO_ROUTING || nh === PROTO_DSTOPTS || nh === PROTO_FRAGMENT) {
        if (p + 8 > out.end) return fail(out, out.declaredEnd > limit ? IpError.Truncated : IpError.Bad, 'truncated IPv6 extension header');
        const len = nh === PROTO_FRAGMENT ? 8 : (d[p + 1]! + 1) * 8;
        if (p + len > out.end) return fail(out, out.declaredEnd > limit ? IpError.Truncated : IpError.Bad, 'IPv6 extension header runs past the payload');
        if (nh === PROTO_FRAGMENT) {
          // RFC 8200 §4.5: a fragment header means reassembly is needed (even offset 0, M 0).
          out.fragment = true;
        }
        out.extHeaders = true;
        nhOff = p;
        nh = d[p]!;
        p += len;
        continue;
      }
      break;
    }
    out.proto = nh;
    out.protoFieldOff = nhOff;
    out.payloadOff = p;
    if (out.declaredEnd > limit) return fail(out, IpError.Truncated, `IPv6 payload length ${plen} but only ${limit - off - 40} bytes captured`);
    return out;
  }
  return fail(out, IpError.Bad, `IP version ${v}`);
}

/** RFC 1071 one's-complement sum over d[off..end). */
export function onesSum(d: Uint8Array, off: number, end: number, sum = 0): number {
  let i = off;
  for (; i + 1 < end; i += 2) sum += (d[i]! << 8) | d[i + 1]!;
  if (i < end) sum += d[i]! << 8;
  return sum;
}

export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Recompute the IPv4 header checksum of the header at `off` in place. */
export function fixIpv4Checksum(d: Uint8Array, off: number): void {
  const ihl = (d[off]! & 0x0f) * 4;
  d[off + 10] = 0;
  d[off + 11] = 0;
  const c = ~foldSum(onesSum(d, off, off + ihl)) & 0xffff;
  d[off + 10] = c >> 8;
  d[off + 11] = c & 0xff;
}

/** True when the IPv4 header checksum at `off` verifies. */
export function ipv4ChecksumOk(d: Uint8Array, off: number): boolean {
  const ihl = (d[off]! & 0x0f) * 4;
  return foldSum(onesSum(d, off, off + ihl)) === 0xffff;
}

/** Set the IP length field of the datagram at `off` so that it ends at `end` (v4: fixes checksum). */
export function setIpLength(d: Uint8Array, off: number, end: number): void {
  if (d[off]! >> 4 === 4) {
    const total = end - off;
    d[off + 2] = total >> 8;
    d[off + 3] = total & 0xff;
    fixIpv4Checksum(d, off);
  } else {
    const plen = end - off - 40;
    d[off + 4] = plen >> 8;
    d[off + 5] = plen & 0xff;
  }
}
