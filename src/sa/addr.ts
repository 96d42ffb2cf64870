/**
 * Textual IP addresses and prefixes for the SA file: parse to network-order bytes, format back.
 * Kept free of node:net so the parser reports *why* text is not an address.
 */

import type { Prefix } from './model.js';

/** Parse a dotted-quad IPv4 address; null when not one. */
export function parseIpv4(text: string): Buffer | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^\d{1,3}$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parse an IPv6 address (with `::` compression and an optional embedded IPv4 tail); null when not one. */
export function parseIpv6(text: string): Buffer | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let head = text;
  let v4: Buffer | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    v4 = parseIpv4(text.slice(lastColon + 1));
    if (!v4) return null;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = head.indexOf('::');
  if (dbl !== head.lastIndexOf('::')) return null;
  const split = (s: string): string[] | null => (s === '' ? [] : s.split(':'));
  let groups: string[];
  if (dbl >= 0) {
    const left = split(head.slice(0, dbl));
    const right = split(head.slice(dbl + 2));
    if (!left || !right) return null;
    const fill = 8 - left.length - right.length;
    if (fill < 1) return null;
    groups = [...left, ...new Array<string>(fill).fill('0'), ...right];
  } else {
    groups = head.split(':');
  }
  if (groups.length !== 8) return null;
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i])) return null;
    out.writeUInt16BE(parseInt(groups[i], 16), i * 2);
  }
  if (v4) v4.copy(out, 12);
  return out;
}

/** Parse an IPv4 or IPv6 address. */
export function parseIp(text: string): { family: 4 | 6; addr: Buffer } | null {
  const a4 = parseIpv4(text);
  if (a4) return { family: 4, addr: a4 };
  const a6 = parseIpv6(text);
  if (a6) return { family: 6, addr: a6 };
  return null;
}

/**
 * Parse `ADDR` or `ADDR/LEN`. Returns the prefix with host bits cleared and whether any were set,
 * or an error string.
 */
export function parsePrefix(text: string): { prefix: Prefix; hostBits: boolean } | { error: string } {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addrText);
  if (!ip) return { error: `"${addrText}" is not an IPv4 or IPv6 address` };
  const max = ip.family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
      return { error: `prefix length "/${lenText}" must be 0..${max} for IPv${ip.family}` };
    }
    len = Number(lenText);
  }
  const addr = Buffer.from(ip.addr);
  let hostBits = false;
  for (let bit = len; bit < max; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (addr[byte] & mask) {
      hostBits = true;
      addr[byte] &= ~mask;
    }
  }
  return { prefix: { family: ip.family, addr, len }, hostBits };
}

/** Format an address (4 or 16 bytes) as text; IPv6 in RFC 5952 form. */
export function formatIp(addr: Uint8Array): string {
  if (addr.length === 4) return Array.from(addr).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((addr[i] << 8) | addr[i + 1]);
  // RFC 5952 §4.2: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Format a prefix as `ADDR/LEN` (host prefixes keep their `/32` or `/128`). */
export function formatPrefix(p: Prefix): string {
  return `${formatIp(p.addr)}/${p.len}`;
}
