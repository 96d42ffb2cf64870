/**
 * Link-layer decoding: find the IP header inside a frame of a given LINKTYPE, and remember where
 * the "protocol type" field sits so the output can be fixed when the family changes
 * (decapsulating 6-in-4 turns an IPv4 frame into an IPv6 one).
 */

/** How the frame's link layer names its payload's protocol. */
export const TypeField = {
  None: 0,
  /** 2-byte big-endian EtherType (Ethernet, SLL protocol, SLL2 protocol). */
  EtherType: 1,
  /** 4-byte BSD address family, little-endian. */
  NullLE: 2,
  /** 4-byte BSD address family, big-endian. */
  NullBE: 3,
  /** The link type itself names the family (LINKTYPE_IPV4 / LINKTYPE_IPV6). */
  LinkType: 4,
} as const;
export type TypeField = (typeof TypeField)[keyof typeof TypeField];

/** Reused result of decodeL2 (decode in place, no per-frame allocation). */
export class L2Info {
  /** Offset of the IP header, -1 when the frame carries no IP we understand. */
  l3Off = -1;
  /** 4, 6 or 0 (not IP / unknown link type). */
  ipVersion = 0;
  typeField: TypeField = TypeField.None;
  typeOff = -1;
  /** Encapsulation class for the NIC capability check: 'ethernet' | 'vlan' | 'llcsnap' | 'null'. */
  encap: 'ethernet' | 'vlan' | 'llcsnap' | 'null' | 'none' = 'none';
  /** Set when the link-layer header itself is cut short. */
  truncated = false;
}

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;

/** BSD AF_INET6 values differ per OS (24 NetBSD/OpenBSD, 28 FreeBSD, 30 Darwin). */
function nullFamily(v: number): number {
  if (v === 2) return 4;
  if (v === 24 || v === 28 || v === 30) return 6;
  return 0;
}

function etherVersion(t: number): number {
  return t === ETHERTYPE_IPV4 ? 4 : t === ETHERTYPE_IPV6 ? 6 : 0;
}

/** Decode the link layer of `d` (LINKTYPE `linkType`) into `out`. Never throws. */
export function decodeL2(linkType: number, d: Uint8Array, out: L2Info): L2Info {
  out.l3Off = -1;
  out.ipVersion = 0;
  out.typeField = TypeField.None;
  out.typeOff = -1;
  out.encap = 'none';
  out.truncated = false;
  const n = d.length;
  switch (linkType) {
    case 1: {
      // Ethernet II, with any number of 802.1Q / 802.1ad tags.
      if (n < 14) { out.truncated = true; return out; }
      let off = 12;
      let t = (d[off]! << 8) | d[off + 1]!;
      out.encap = 'ethernet';
      while (t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_QINQ_OLD) {
        out.encap = 'vlan';
        off += 4;
        if (off + 2 > n) { out.truncated = true; return out; }
        t = (d[off]! << 8) | d[off + 1]!;
      }
      if (t <= 1500) {
        // IEEE 802.3 length field: LLC/SNAP (AA AA 03, OUI 00 00 00, EtherType).
        if (off + 10 > n) { out.truncated = true; return out; }
        if (d[off + 2] === 0xaa && d[off + 3] === 0xaa && d[off + 4] === 0x03 && d[off + 5] === 0 && d[off + 6] === 0 && d[off + 7] === 0) {
          const st = (d[off + 8]! << 8) | d[off + 9]!;
          out.encap = 'llcsnap';
          out.typeField = TypeField.EtherType;
          out.typeOff = off + 8;
          out.ipVersion = etherVersion(st);
          out.l3Off = out.ipVersion ? off + 10 : -1;
        }
        return out;
      }
      out.typeField = TypeField.EtherType;
      out.typeOff = off;
      out.ipVersion = etherVersion(t);
      out.l3Off = out.ipVersion ? off + 2 : -1;
      return out;
    }
    case 101: // LINKTYPE_RAW: the version nibble says which.
    case 12: // DLT_RAW on some BSDs, same meaning
    case 14: {
      out.encap = 'null';
      if (n < 1) { out.truncated = true; return out; }
      const v = d[0]! >> 4;
      if (v === 4 || v === 6) { out.ipVersion = v; out.l3Off = 0; }
      return out;
    }
    case 228:
    case 229:
      out.encap = 'null';
      out.typeField = TypeField.LinkType;
      out.ipVersion = linkType === 228 ? 4 : 6;
      out.l3Off = 0;
      return out;
    case 113: {
      // Linux cooked v1: 16 bytes, protocol (EtherType) at 14.
      out.encap = 'null';
      if (n < 16) { out.truncated = true; return out; }
      const t = (d[14]! << 8) | d[15]!;
      out.typeField = TypeField.EtherType;
      out.typeOff = 14;
      out.ipVersion = etherVersion(t);
      out.l3Off = out.ipVersion ? 16 : -1;
      return out;
    }
    case 276: {
      // Linux cooked v2: 20 bytes, protocol (EtherType) at 0.
      out.encap = 'null';
      if (n < 20) { out.truncated = true; return out; }
      const t = (d[0]! << 8) | d[1]!;
      out.typeField = TypeField.EtherType;
      out.typeOff = 0;
      out.ipVersion = etherVersion(t);
      out.l3Off = out.ipVersion ? 20 : -1;
      return out;
    }
    case 0: {
      // BSD loopback: 4-byte address family in the writer's host byte order.
      out.encap = 'null';
      if (n < 4) { out.truncated = true; return out; }
      const le = d[0]! | (d[1]! << 8) | (d[2]! << 16) | (d[3]! << 24);
      const be = ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
      let fam = nullFamily(le);
      out.typeField = TypeField.NullLE;
      if (!fam) { fam = nullFamily(be); out.typeField = TypeField.NullBE; }
      if (!fam) { out.typeField = TypeField.None; return out; }
      out.typeOff = 0;
      out.ipVersion = fam;
      out.l3Off = 4;
      return out;
    }
    default:
      return out;
  }
}

/**
 * Rewrite the link-layer type field of a frame header for a new IP version (after
 * decapsulating a tunnel whose inner family differs). Returns false when the link type cannot
 * express it in place (LINKTYPE_IPV4/IPV6: the caller must move the frame to a raw-IP interface).
 */
export function setL2Family(hdr: Uint8Array, info: L2Info, version: number): boolean {
  switch (info.typeField) {
    case TypeField.EtherType: {
      const t = version === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6;
      hdr[info.typeOff] = t >> 8;
      hdr[info.typeOff + 1] = t & 0xff;
      return true;
    }
    case TypeField.NullLE:
    case TypeField.NullBE: {
      // Keep the writer's IPv6 value if it was already IPv6; 24 is the most portable choice.
      const fam = version === 4 ? 2 : 24;
      const o = info.typeOff;
      if (info.typeField === TypeField.NullLE) { hdr[o] = fam; hdr[o + 1] = 0; hdr[o + 2] = 0; hdr[o + 3] = 0; }
      else { hdr[o] = 0; hdr[o + 1] = 0; hdr[o + 2] = 0; hdr[o + 3] = fam; }
      return true;
    }
    case TypeField.LinkType:
      return version === info.ipVersion;
    default:
      return true; // raw IP: the version nibble speaks for itself
  }
}
