/**
 * The in-memory model of the SA file (spec/sa-file.md) after loading and checking: what the
 * emulated NIC knows. The loader (sa/load.ts) produces it; the engines (offload/) consume it.
 * Keys live here as Buffers and must never be printed (see sa/fingerprint in sa/check.ts).
 */

export type Direction = 'inbound' | 'outbound';
export type Mode = 'transport' | 'tunnel';
export type UdpEspType = 'transport' | 'tunnel' | 'transport-over-tunnel' | 'tunnel-over-transport';

/** An address prefix; `addr` is 4 or 16 bytes in network order. */
export interface Prefix {
  family: 4 | 6;
  addr: Buffer;
  len: number;
}

export interface Selector {
  /** null = any */
  src: Prefix | null;
  dst: Prefix | null;
  /** IP protocol number or null = any */
  protocol: number | null;
  srcPort: number | null;
  dstPort: number | null;
}

export interface TunnelEndpoints {
  family: 4 | 6;
  src: Buffer;
  dst: Buffer;
}

export interface UdpEncap {
  type: UdpEspType;
  srcPort: number;
  dstPort: number;
}

/** ESP member of a bundle. Algorithm names are the SA file's (registry keys in crypto/registry.ts). */
export interface EspSa {
  spi: number;
  /** 'null' | 'des-cbc' | '3des-cbc' | 'aes-cbc-128' | ... | 'aes-gcm-128' | 'aes-ctr-128' | 'chacha20-poly1305' */
  encryption: string;
  /** Cipher key INCLUDING the salt for GCM/CTR/ChaCha (as in the file). Empty for null. */
  encryptionKey: Buffer;
  /** 'none' | 'hmac-sha1-96' | ... | 'aes-gmac-128' ... */
  integrity: string;
  /** Integrity key (with salt for GMAC). Empty for none. */
  integrityKey: Buffer;
  /** ICV length in bytes actually used (GCM 8/12/16; otherwise from the integrity algorithm). */
  icvLength: number;
}

export interface AhSa {
  spi: number;
  integrity: string;
  integrityKey: Buffer;
  icvLength: number;
}

/** One ADD_SA = one bundle = one OffloadHandle. */
export interface Bundle {
  name: string;
  handle: number;
  direction: Direction;
  /** null: inbound bundle without a mode (rx follows the payload's next header). */
  mode: Mode | null;
  /** Name of the tunnel bundle this transport bundle rides in (transport-over-tunnel). */
  over: string | null;
  selector: Selector;
  /**
   * Outer header endpoints (ADD_SA IPv4/IPv6Endpoints for a tunnel). Required for mode tunnel,
   * rejected for mode transport; for an inbound bundle without a mode it is optional and names
   * the outer addresses to match whatever the packet turns out to be (importers write key files'
   * address pairs this way, since those files do not say the mode).
   */
  tunnel: TunnelEndpoints | null;
  udpEncapsulation: UdpEncap | null;
  esn: boolean;
  /** 0 = anti-replay off. */
  replayWindow: number;
  sequence: { next: number; high: number };
  lifetime: { packets: number | null; bytes: number | null };
  esp: EspSa | null;
  ah: AhSa | null;
  /** Decided against the NIC profile when the file (or an add event) is loaded. */
  offloaded: boolean;
  /** Why not offloaded (null when offloaded). */
  notOffloadedReason: string | null;
}

/** The NIC profile: NDIS_IPSEC_OFFLOAD_V2 in the SA file's words. */
export interface NicProfile {
  profile: 'full' | 'ndis';
  saCapacity: number;
  ipv6: boolean;
  ipv4Options: boolean;
  ipv6NonIpsecExtensionHeaders: boolean;
  ah: boolean;
  esp: boolean;
  ahEspCombined: boolean;
  transport: boolean;
  tunnel: boolean;
  transportTunnelCombined: boolean;
  lso: boolean;
  esn: boolean;
  udpEsp: UdpEspType[];
  integrity: string[];
  encryption: string[];
}

export type EventAt = { frame: number } | { time: string; /** parsed, ns since epoch */ ns: bigint };

export type SaEvent =
  | { at: EventAt; kind: 'update'; sa: string; spi: number | null; high: number }
  | { at: EventAt; kind: 'delete'; sa: string }
  | { at: EventAt; kind: 'add'; bundle: Bundle };

export interface Diagnostic {
  level: 'error' | 'warning';
  /** File the problem is in. */
  file: string;
  /** Path inside the document, e.g. `sas[2].esp.encryptionKey`, or '' for the whole file. */
  path: string;
  /** 1-based line/column for YAML (and JSON when known), else null. */
  line: number | null;
  col: number | null;
  message: string;
}

export interface SaDocument {
  file: string;
  nic: NicProfile;
  bundles: Bundle[];
  events: SaEvent[];
  /** Warnings found while loading (errors make the loader throw SaFileError). */
  warnings: Diagnostic[];
}
