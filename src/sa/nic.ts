/**
 * The emulated NIC: profiles `full` and `ndis`, the `nic:` section of the SA file, the offload
 * decision per bundle, and the NDIS_IPSEC_OFFLOAD_V2 capability structure
 * (spec/ipsecov2.md §2.1–2.4, §3.8).
 */

import type { Node } from 'yaml';
import { ENCRYPTION, INTEGRITY, NDIS_ENCRYPTION, NDIS_INTEGRITY, encryptionAlgorithm, integrityAlgorithm } from '../crypto/registry.js';
import { UDP_ESP_TYPES } from './bundle.js';
import type { Bundle, NicProfile, SaDocument, UdpEspType } from './model.js';
import { joinPath, suggest } from './reader.js';
import type { Reader } from './reader.js';

export const PROFILE_NAMES = ['full', 'ndis'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

const BOOL_KEYS = ['ipv6', 'ipv4Options', 'ipv6NonIpsecExtensionHeaders', 'ah', 'esp', 'ahEspCombined', 'transport', 'tunnel', 'transportTunnelCombined', 'lso', 'esn'] as const;
export const NIC_KEYS = ['profile', 'saCapacity', ...BOOL_KEYS, 'udpEsp', 'integrity', 'encryption'] as const;

/** Default SaOffloadCapacity of both profiles. */
export const DEFAULT_SA_CAPACITY = 1024;

/**
 * A NIC profile with every capability set. `ndis` has exactly the NDIS algorithm set
 * (registry ndisId ≠ 0); `full` has every algorithm the emulator implements.
 */
export function nicProfile(name: ProfileName): NicProfile {
  const ndis = name === 'ndis';
  return {
    profile: name,
    saCapacity: DEFAULT_SA_CAPACITY,
    ipv6: true,
    ipv4Options: true,
    ipv6NonIpsecExtensionHeaders: true,
    ah: true,
    esp: true,
    ahEspCombined: true,
    transport: true,
    tunnel: true,
    transportTunnelCombined: true,
    lso: true,
    esn: true,
    udpEsp: [...UDP_ESP_TYPES],
    integrity: ndis ? [...NDIS_INTEGRITY] : Object.keys(INTEGRITY).filter((n) => n !== 'none'),
    encryption: ndis ? [...NDIS_ENCRYPTION] : Object.keys(ENCRYPTION),
  };
}

/** Parse a profile name given on the command line (`--nic`); throws a plain Error on a bad name. */
export function profileFromName(name: string): NicProfile {
  if ((PROFILE_NAMES as readonly string[]).includes(name)) return nicProfile(name as ProfileName);
  const s = suggest(name, PROFILE_NAMES);
  throw new Error(`unknown NIC profile "${name}"${s ? ` (did you mean "${s}"?)` : ''}; profiles: ${PROFILE_NAMES.join(', ')}`);
}

/** Read the `nic:` section (profile + per-field overrides). */
export function readNic(r: Reader, node: Node | undefined): NicProfile {
  if (!node) return nicProfile('full');
  const f = r.fields(node, 'nic', NIC_KEYS);
  if (!f) return nicProfile('full');
  const nic = nicProfile(r.oneOf(f, 'profile', PROFILE_NAMES) ?? 'full');
  nic.saCapacity = r.int(f, 'saCapacity', 0, 0xffffffff) ?? nic.saCapacity;
  for (const k of BOOL_KEYS) nic[k] = r.bool(f, k) ?? nic[k];
  const list = (key: 'udpEsp' | 'integrity' | 'encryption', known: readonly string[], canon: (s: string) => string): string[] | undefined => {
    const n = r.get(f, key);
    if (!n) return undefined;
    const items = r.seq(n, joinPath('nic', key));
    if (!items) return undefined;
    const out: string[] = [];
    items.forEach((item, i) => {
      const v = r.oneOfNode(item, joinPath(joinPath('nic', key), i), known);
      if (v !== undefined && !out.includes(canon(v))) out.push(canon(v));
    });
    return out;
  };
  nic.udpEsp = (list('udpEsp', UDP_ESP_TYPES, (s) => s) as UdpEspType[] | undefined) ?? nic.udpEsp;
  nic.integrity = list('integrity', Object.keys(INTEGRITY), (s) => s)?.filter((n) => n !== 'none') ?? nic.integrity;
  nic.encryption = list('encryption', [...Object.keys(ENCRYPTION), 'none'], (s) => (s === 'none' ? 'null' : s)) ?? nic.encryption;
  return nic;
}

function familyOf(b: Bundle): Set<4 | 6> {
  const fam = new Set<4 | 6>();
  if (b.tunnel) fam.add(b.tunnel.family);
  if (b.selector.src) fam.add(b.selector.src.family);
  if (b.selector.dst) fam.add(b.selector.dst.family);
  return fam;
}

/**
 * Why `nic` cannot take `b` (a capability or algorithm outside the profile), or null when it
 * can. Capacity is not considered here (see decideOffload / SaTable).
 */
export function capabilityReason(b: Bundle, nic: NicProfile): string | null {
  const where = `the NIC profile (${nic.profile})`;
  if (b.esp && !nic.esp) return 'ESP bundle but esp is false';
  if (b.ah && !nic.ah) return 'AH bundle but ah is false';
  if (b.esp && b.ah && !nic.ahEspCombined) return 'AH+ESP bundle but ahEspCombined is false';
  if (b.esp && !nic.encryption.includes(b.esp.encryption)) return `encryption ${b.esp.encryption} not in ${where}`;
  if (b.esp && b.esp.integrity !== 'none' && !nic.integrity.includes(b.esp.integrity)) return `integrity ${b.esp.integrity} not in ${where}`;
  if (b.ah && !nic.integrity.includes(b.ah.integrity)) return `integrity ${b.ah.integrity} not in ${where}`;
  if (familyOf(b).has(6) && !nic.ipv6) return 'IPv6 endpoints but ipv6 is false';
  if (b.mode === 'transport' && !nic.transport) return 'transport mode not supported (transport is false)';
  if (b.mode === 'tunnel' && !nic.tunnel) return 'tunnel mode not supported (tunnel is false)';
  if (b.mode === null && !nic.transport && !nic.tunnel) return 'neither transport nor tunnel mode supported';
  if (b.over !== null && !nic.transportTunnelCombined) return 'transport-over-tunnel bundle but transportTunnelCombined is false';
  if (b.udpEncapsulation && !nic.udpEsp.includes(b.udpEncapsulation.type)) return `UDP-ESP type ${b.udpEncapsulation.type} not in udpEsp`;
  if (b.esn && !nic.esn) return 'ESN bundle but esn is false';
  return null;
}

/** The capacity refusal reason. */
export function capacityReason(nic: NicProfile): string {
  return `saCapacity ${nic.saCapacity} reached`;
}

/**
 * Decide, in file order, which of the document's initial bundles the NIC offloads: a bundle
 * needs every capability it uses, and capacity counts offloaded bundles only (as the stack
 * counts successful ADD_SA). Sets `offloaded`/`notOffloadedReason` on each bundle.
 */
export function decideOffload(doc: SaDocument): void {
  let used = 0;
  for (const b of doc.bundles) {
    let reason = capabilityReason(b, doc.nic);
    if (!reason && used >= doc.nic.saCapacity) reason = capacityReason(doc.nic);
    b.offloaded = reason === null;
    b.notOffloadedReason = reason;
    if (!reason) used++;
  }
}

// --- NDIS_IPSEC_OFFLOAD_V2 (spec/ipsecov2.md §2.1) ---------------------------------------------

/** NDIS_ENCAPSULATION_* (§2.4). */
export const NDIS_ENCAPSULATION = { NULL: 0x1, IEEE_802_3: 0x2, IEEE_802_3_P_AND_Q: 0x4, IEEE_802_3_P_AND_Q_IN_OOB: 0x8, IEEE_LLC_SNAP_ROUTED: 0x10 } as const;

/**
 * UdpEsp flag per SA-file type (§2.3, §6.2). `transport-over-tunnel` is case 3 (only the outer
 * tunnel ESP is UDP-wrapped, IPSEC_OFFLOAD_V2_TRANSPORT_OVER_UDP_ESP_ENCAPSULATION_TUNNEL) and
 * `tunnel-over-transport` names case 4 (plain tunnel ESP carrying UDP-wrapped transport ESP,
 * IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT_OVER_TUNNEL).
 */
export const UDP_ESP_FLAG: Readonly<Record<UdpEspType, number>> = { transport: 0x1, tunnel: 0x2, 'transport-over-tunnel': 0x4, 'tunnel-over-transport': 0x8 };

/** NDIS_IPSEC_OFFLOAD_V2 with numeric values, field names as in ntddndis.h. */
export interface NdisIpsecOffloadV2 {
  Encapsulation: number;
  IPv6Supported: boolean;
  IPv4Options: boolean;
  IPv6NonIPsecExtensionHeaders: boolean;
  Ah: boolean;
  Esp: boolean;
  AhEspCombined: boolean;
  Transport: boolean;
  Tunnel: boolean;
  TransportTunnelCombined: boolean;
  LsoSupported: boolean;
  ExtendedSequenceNumbers: boolean;
  UdpEsp: number;
  AuthenticationAlgorithms: number;
  EncryptionAlgorithms: number;
  SaOffloadCapacity: number;
}

/**
 * The capability structure the emulated NIC reports. Encapsulation is NULL | IEEE_802_3 |
 * IEEE_802_3_P_AND_Q (0x7): Ethernet is mandatory, 802.1Q is required of every NDIS 6 miniport
 * (§2.7), and raw-IP link types count as NULL encapsulation (§2.4). Algorithms outside the NDIS
 * set (ndisId 0) have no bit and do not appear in the masks.
 */
export function toNdisCaps(nic: NicProfile): NdisIpsecOffloadV2 {
  const enc = nic.encryption.reduce((m, n) => m | (encryptionAlgorithm(n)?.ndisId ?? 0), 0);
  const auth = nic.integrity.reduce((m, n) => m | (integrityAlgorithm(n)?.ndisId ?? 0), 0);
  return {
    Encapsulation: NDIS_ENCAPSULATION.NULL | NDIS_ENCAPSULATION.IEEE_802_3 | NDIS_ENCAPSULATION.IEEE_802_3_P_AND_Q,
    IPv6Supported: nic.ipv6,
    IPv4Options: nic.ipv4Options,
    IPv6NonIPsecExtensionHeaders: nic.ipv6NonIpsecExtensionHeaders,
    Ah: nic.ah,
    Esp: nic.esp,
    AhEspCombined: nic.ahEspCombined,
    Transport: nic.transport,
    Tunnel: nic.tunnel,
    TransportTunnelCombined: nic.transportTunnelCombined,
    LsoSupported: nic.lso,
    ExtendedSequenceNumbers: nic.esn,
    UdpEsp: nic.udpEsp.reduce((m, t) => m | UDP_ESP_FLAG[t], 0),
    AuthenticationAlgorithms: auth >>> 0,
    EncryptionAlgorithms: enc >>> 0,
    SaOffloadCapacity: nic.saCapacity >>> 0,
  };
}

/** Byte offset of each field in the 32-byte structure (§2.1; no pointers, same on x86/x64). */
export const NDIS_CAPS_LAYOUT: ReadonlyArray<readonly [keyof NdisIpsecOffloadV2, number, 1 | 4]> = [
  ['Encapsulation', 0, 4],
  ['IPv6Supported', 4, 1],
  ['IPv4Options', 5, 1],
  ['IPv6NonIPsecExtensionHeaders', 6, 1],
  ['Ah', 7, 1],
  ['Esp', 8, 1],
  ['AhEspCombined', 9, 1],
  ['Transport', 10, 1],
  ['Tunnel', 11, 1],
  ['TransportTunnelCombined', 12, 1],
  ['LsoSupported', 13, 1],
  ['ExtendedSequenceNumbers', 14, 1],
  ['UdpEsp', 16, 4],
  ['AuthenticationAlgorithms', 20, 4],
  ['EncryptionAlgorithms', 24, 4],
  ['SaOffloadCapacity', 28, 4],
];

/**
 * NDIS_IPSEC_OFFLOAD_V2 as 32 little-endian bytes (offset 15 is alignment padding, zero).
 * Accepts the structure or a NIC profile.
 */
export function encodeNdisCaps(capsOrNic: NdisIpsecOffloadV2 | NicProfile): Buffer {
  const caps = 'profile' in capsOrNic ? toNdisCaps(capsOrNic) : capsOrNic;
  const buf = Buffer.alloc(32);
  for (const [field, off, size] of NDIS_CAPS_LAYOUT) {
    const v = caps[field];
    if (size === 1) buf[off] = v ? 1 : 0;
    else buf.writeUInt32LE(Number(v) >>> 0, off);
  }
  return buf;
}
