/**
 * TCP large send (segmentation), as a NIC's LSO does it before IPsec protects each segment
 * (spec/ipsecov2.md §4.3 step 5, §9 item 16): every segment gets a copy of the IP header (IPv4
 * identification incremented per segment, lengths and header checksum fixed) and of the TCP header
 * (sequence number advanced by the bytes before it, FIN and PSH only on the last segment, CWR only
 * on the first — RFC 3168 §6.1.2 / Microsoft LSOv2 rules), with the TCP checksum recomputed.
 */
import { fixIpv4Checksum, type IpInfo, PROTO_TCP } from './ip.js';
import { setL4Checksum, writeU16, writeU32 } from './build.js';

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/** TCP header length of the segment at `tcpOff`, or -1 when it is cut short or malformed. */
export function tcpHeaderLen(d: Uint8Array, tcpOff: number, end: number): number {
  if (tcpOff + 20 > end) return -1;
  const hl = (d[tcpOff + 12]! >>> 4) * 4;
  if (hl < 20 || tcpOff + hl > end) return -1;
  return hl;
}

/** Number of segments for `payloadLen` bytes at `mss` bytes each (at least one). */
export function segmentCount(payloadLen: number, mss: number): number {
  return payloadLen <= mss ? 1 : Math.ceil(payloadLen / mss);
}

/**
 * Write segment `i` of `count` of the TCP datagram `ip` (TCP header at `tcpOff`, `tcpHdrLen`
 * bytes) in `src` into `dst` at `dstOff`. Returns the segment's datagram length.
 */
export function writeTcpSegment(src: Uint8Array, ip: IpInfo, tcpOff: number, tcpHdrLen: number, i: number, count: number, mss: number, dst: Uint8Array, dstOff: number): number {
  const hdrLen = tcpOff - ip.off; // IP header with options / extension headers
  const payStart = tcpOff + tcpHdrLen;
  const from = payStart + i * mss;
  const to = Math.min(from + mss, ip.end);
  dst.set(src.subarray(ip.off, payStart), dstOff);
  dst.set(src.subarray(from, to), dstOff + hdrLen + tcpHdrLen);
  const len = hdrLen + tcpHdrLen + (to - from);
  if (ip.version === 4) {
    writeU16(dst, dstOff + 2, len);
    const id = (((src[ip.off + 4]! << 8) | src[ip.off + 5]!) + i) & 0xffff;
    writeU16(dst, dstOff + 4, id);
    fixIpv4Checksum(dst, dstOff);
  } else {
    writeU16(dst, dstOff + 4, len - 40);
  }
  const t = dstOff + hdrLen;
  const seq = (((src[tcpOff + 4]! << 24) | (src[tcpOff + 5]! << 16) | (src[tcpOff + 6]! << 8) | src[tcpOff + 7]!) + i * mss) >>> 0;
  writeU32(dst, t + 4, seq);
  let flags = src[tcpOff + 13]!;
  if (i !== count - 1) flags &= ~(TCP_FIN | TCP_PSH);
  if (i !== 0) flags &= ~TCP_CWR;
  dst[t + 13] = flags;
  const rel = dstOff - ip.off;
  setL4Checksum(dst, ip.srcOff + rel, ip.dstOff + rel, ip.addrLen, PROTO_TCP, t, dstOff + len, 16);
  return len;
}
