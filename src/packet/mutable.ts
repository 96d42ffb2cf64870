/**
 * AH integrity input: zero the fields of an IP header that may change in transit
 * (RFC 4302 §3.3.3.1). Works on a COPY of the datagram (the engine's crypto buffer), never on the
 * frame that will be written out.
 */
import { PROTO_DSTOPTS, PROTO_HOPOPTS, PROTO_ROUTING, PROTO_FRAGMENT } from './ip.js';

/**
 * IPv4 options kept in the ICV input (RFC 4302 Appendix A1): EOL, NOP, Security, Extended
 * Security, Commercial Security, Router Alert, Sender Directed Multi-Destination Delivery.
 * Every other option is zeroed entirely (type, length and data).
 */
const IMMUTABLE_V4_OPTIONS = new Set([0x00, 0x01, 0x82, 0x85, 0x86, 0x94, 0x95]);

/**
 * Zero the mutable fields of the IPv4 header at d[off..off+ihl) in place.
 * RFC 4302 §3.3.3.1.1.1: TOS (DSCP/ECN), Flags, Fragment Offset, TTL and Header Checksum.
 */
export function zeroMutableIpv4(d: Uint8Array, off: number): void {
  const ihl = (d[off]! & 0x0f) * 4;
  d[off + 1] = 0; // TOS / DSCP+ECN
  d[off + 6] = 0; // flags + fragment offset
  d[off + 7] = 0;
  d[off + 8] = 0; // TTL
  d[off + 10] = 0; // header checksum
  d[off + 11] = 0;
  // Options (RFC 4302 §3.3.3.1.1.2).
  let p = off + 20;
  const end = off + ihl;
  while (p < end) {
    const t = d[p]!;
    if (t === 0x00) break; // End of Option List: the rest is padding, left as sent
    if (t === 0x01) { p++; continue; }
    if (p + 1 >= end) { d[p] = 0; break; }
    let len = d[p + 1]!;
    if (len < 2 || p + len > end) len = end - p; // malformed: zero the rest
    if (!IMMUTABLE_V4_OPTIONS.has(t)) d.fill(0, p, p + len);
    p += len;
  }
}

/**
 * Zero the mutable fields of the IPv6 header at `off` and of the hop-by-hop / destination
 * options headers that precede `stop` (the AH header), in place.
 * RFC 4302 §3.3.3.1.2.1: Traffic Class, Flow Label and Hop Limit are zeroed.
 * RFC 4302 §3.3.3.1.2.2: an option whose type has the 0x20 bit ("may change en route") has
 * its Option Data treated as zero; its type and length stay. Routing headers are left as
 * received (at the final destination they already hold the predictable values).
 */
export function zeroMutableIpv6(d: Uint8Array, off: number, stop: number): void {
  d[off] = d[off]! & 0xf0;
  d[off + 1] = 0;
  d[off + 2] = 0;
  d[off + 3] = 0;
  d[off + 7] = 0; // hop limit
  let nh = d[off + 6]!;
  let p = off + 40;
  while (p < stop && (nh === PROTO_HOPOPTS || nh === PROTO_DSTOPTS || nh === PROTO_ROUTING || nh === PROTO_FRAGMENT)) {
    const len = nh === PROTO_FRAGMENT ? 8 : (d[p + 1]! + 1) * 8;
    if (p + len > stop) return;
    if (nh === PROTO_HOPOPTS || nh === PROTO_DSTOPTS) {
      let q = p + 2;
      const e = p + len;
      while (q < e) {
        const t = d[q]!;
        if (t === 0) { q++; continue; } // Pad1
        if (q + 1 >= e) break;
        const ol = d[q + 1]!;
        if (q + 2 + ol > e) break;
        if (t & 0x20) d.fill(0, q + 2, q + 2 + ol);
        q += 2 + ol;
      }
    }
    nh = d[p]!;
    p += len;
  }
}
