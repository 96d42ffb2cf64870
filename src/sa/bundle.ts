/**
 * One `sas[]` entry (or an `events[].add`) of the SA file → a Bundle: one ADD_SA, one
 * OffloadHandle (spec/sa-file.md, spec/ipsecov2.md §3.2–3.5). Checks that need only the entry
 * itself live here; checks across bundles (names, handles, `over`, duplicate SPIs) are in load.ts.
 */

import { isScalar } from 'yaml';
import type { Node } from 'yaml';
import { ENCRYPTION, INTEGRITY, encryptionAlgorithm, integrityAlgorithm } from '../crypto/registry.js';
import { parseIp, parsePrefix } from './addr.js';
import { readKey } from './keys.js';
import type { KeyContext } from './keys.js';
import type { AhSa, Bundle, Direction, EspSa, Mode, Prefix, Selector, TunnelEndpoints, UdpEncap, UdpEspType } from './model.js';
import { describe, joinPath, suggest } from './reader.js';
import type { Fields, Reader } from './reader.js';

export const BUNDLE_KEYS = ['name', 'handle', 'direction', 'mode', 'over', 'selector', 'tunnel', 'udpEncapsulation', 'esn', 'replayWindow', 'sequence', 'lifetime', 'esp', 'ah'] as const;
export const UDP_ESP_TYPES: readonly UdpEspType[] = ['transport', 'tunnel', 'transport-over-tunnel', 'tunnel-over-transport'];
const PROTOCOLS: Record<string, number | null> = { any: null, icmp: 1, tcp: 6, udp: 17, icmpv6: 58 };
const U32 = 0xffffffff;

/** A bundle as read, before handles/names are assigned and cross-bundle checks run. */
export interface ParsedBundle {
  bundle: Bundle;
  path: string;
  node: Node;
  /** Handle/name as written (null = default). */
  handle: number | null;
  name: string | null;
  fields: Fields;
}

/** Read one bundle mapping. Returns null when it is not a mapping at all. */
export function readBundle(r: Reader, node: Node, path: string, kctx: KeyContext): ParsedBundle | null {
  const f = r.fields(node, path, BUNDLE_KEYS, 'an SA bundle (mapping)');
  if (!f) return null;
  const name = r.str(f, 'name') ?? null;
  if (name !== null && !/^[A-Za-z0-9_.:-]+$/.test(name)) r.error(joinPath(path, 'name'), f.values.get('name'), 'names may use letters, digits, "_", ".", ":" and "-"');
  const handle = r.int(f, 'handle', 1, U32) ?? null;
  const direction: Direction = r.oneOf(f, 'direction', ['inbound', 'outbound'] as const) ?? 'inbound';
  const mode: Mode | null = r.oneOf(f, 'mode', ['transport', 'tunnel'] as const) ?? null;
  const over = r.str(f, 'over') ?? null;
  const esn = r.bool(f, 'esn') ?? false;

  let replayWindow = 64;
  const rwNode = r.get(f, 'replayWindow');
  if (rwNode) {
    const v = r.intNode(rwNode, joinPath(path, 'replayWindow'), 0, U32);
    if (v !== undefined && v !== 0 && (v < 32 || v > 4096)) {
      r.error(joinPath(path, 'replayWindow'), rwNode, `${v} is not allowed: 0 (anti-replay off) or 32..4096`);
    } else if (v !== undefined) replayWindow = v;
  }

  const selector = readSelector(r, f, path);
  const tunnel = readTunnel(r, f, path);
  const udpEncapsulation = readUdpEncap(r, f, path);
  const sequence = readSequence(r, f, path, esn);
  const lifetime = readLifetime(r, f, path);
  const esp = r.get(f, 'esp') ? readEsp(r, r.get(f, 'esp')!, joinPath(path, 'esp'), kctx) : null;
  const ah = r.get(f, 'ah') ? readAh(r, r.get(f, 'ah')!, joinPath(path, 'ah'), kctx) : null;

  if (!f.values.has('esp') && !f.values.has('ah')) r.error(path, node, 'a bundle needs esp:, ah: or both');
  if (direction === 'outbound' && mode === null && r.get(f, 'mode') === undefined) {
    r.error(joinPath(path, 'mode'), node, 'outbound bundles need mode: transport or tunnel (tx builds the packet)');
  }
  if (mode === 'tunnel' && !f.values.has('tunnel')) {
    r.error(joinPath(path, 'tunnel'), f.values.get('mode') ?? node, 'tunnel mode needs tunnel: { src, dst } (the outer header endpoints)');
  }
  if (mode === 'transport' && tunnel) r.error(joinPath(path, 'tunnel'), f.keys.get('tunnel'), 'tunnel endpoints given but mode is transport');
  if (over !== null && mode === 'tunnel') r.error(joinPath(path, 'over'), f.values.get('over'), 'over: is for the transport bundle of transport-over-tunnel, but this bundle is mode tunnel');
  if (udpEncapsulation) {
    if (!f.values.has('esp') || r.isNull(f.values.get('esp'))) r.error(joinPath(path, 'udpEncapsulation'), f.keys.get('udpEncapsulation'), 'UDP encapsulation carries ESP only; this bundle has no esp:');
    if (udpEncapsulation.type === 'transport' && mode === 'tunnel') r.error(joinPath(path, 'udpEncapsulation.type'), f.keys.get('udpEncapsulation'), 'type transport is for transport-mode ESP, but mode is tunnel');
    if (udpEncapsulation.type === 'tunnel' && mode === 'transport') r.error(joinPath(path, 'udpEncapsulation.type'), f.keys.get('udpEncapsulation'), 'type tunnel is for tunnel-mode ESP, but mode is transport');
  }

  const bundle: Bundle = {
    name: name ?? '',
    handle: handle ?? 0,
    direction,
    mode,
    over,
    selector,
    tunnel,
    udpEncapsulation,
    esn,
    replayWindow,
    sequence,
    lifetime,
    esp,
    ah,
    offloaded: false,
    notOffloadedReason: null,
  };
  return { bundle, path, node, handle, name, fields: f };
}

function readPrefix(r: Reader, f: Fields, name: string): Prefix | null {
  const node = r.get(f, name);
  if (!node) return null;
  const path = joinPath(f.path, name);
  if (!isScalar(node) || typeof node.value !== 'string') {
    r.error(path, node, `an address or prefix (10.0.0.0/8, 2001:db8::/32) or "any" expected, got ${describe(node)}`);
    return null;
  }
  if (node.value === 'any') return null;
  const p = parsePrefix(node.value.trim());
  if ('error' in p) {
    r.error(path, node, p.error);
    return null;
  }
  if (p.hostBits) r.warning(path, node, `host bits set in ${node.value}; using ${p.prefix.family === 4 ? 'the network address' : 'the prefix'} /${p.prefix.len}`);
  return p.prefix;
}

function readPort(r: Reader, f: Fields, name: string): number | null {
  const node = r.get(f, name);
  if (!node) return null;
  if (isScalar(node) && node.value === 'any') return null;
  return r.intNode(node, joinPath(f.path, name), 0, 65535) ?? null;
}

function readSelector(r: Reader, parent: Fields, path: string): Selector {
  const sel: Selector = { src: null, dst: null, protocol: null, srcPort: null, dstPort: null };
  const node = r.get(parent, 'selector');
  if (!node) return sel;
  const f = r.fields(node, joinPath(path, 'selector'), ['src', 'dst', 'protocol', 'srcPort', 'dstPort']);
  if (!f) return sel;
  sel.src = readPrefix(r, f, 'src');
  sel.dst = readPrefix(r, f, 'dst');
  if (sel.src && sel.dst && sel.src.family !== sel.dst.family) r.error(joinPath(f.path, 'dst'), f.values.get('dst'), 'src and dst are of different address families');
  const pNode = r.get(f, 'protocol');
  if (pNode) {
    if (isScalar(pNode) && typeof pNode.value === 'string') {
      if (pNode.value in PROTOCOLS) sel.protocol = PROTOCOLS[pNode.value];
      else {
        const s = suggest(pNode.value, Object.keys(PROTOCOLS));
        r.error(joinPath(f.path, 'protocol'), pNode, `${describe(pNode)} is not a protocol: any | tcp | udp | icmp | icmpv6 | 0..255${s ? ` (did you mean "${s}"?)` : ''}`);
      }
    } else sel.protocol = r.intNode(pNode, joinPath(f.path, 'protocol'), 0, 255) ?? null;
  }
  sel.srcPort = readPort(r, f, 'srcPort');
  sel.dstPort = readPort(r, f, 'dstPort');
  if ((sel.srcPort !== null || sel.dstPort !== null) && sel.protocol !== 6 && sel.protocol !== 17 && sel.protocol !== 132) {
    r.warning(f.path, node, 'ports are only matched for protocol tcp, udp (or 132, SCTP)');
  }
  return sel;
}

function readTunnel(r: Reader, parent: Fields, path: string): TunnelEndpoints | null {
  const node = r.get(parent, 'tunnel');
  if (!node) return null;
  const f = r.fields(node, joinPath(path, 'tunnel'), ['src', 'dst']);
  if (!f) return null;
  const addr = (name: 'src' | 'dst'): { family: 4 | 6; addr: Buffer } | null => {
    const n = r.get(f, name);
    if (!n) {
      r.error(joinPath(f.path, name), node, `tunnel ${name} address missing`);
      return null;
    }
    const ip = isScalar(n) && typeof n.value === 'string' ? parseIp(n.value.trim()) : null;
    if (!ip) r.error(joinPath(f.path, name), n, `an IPv4 or IPv6 address expected (no prefix), got ${describe(n)}`);
    return ip;
  };
  const src = addr('src');
  const dst = addr('dst');
  if (!src || !dst) return null;
  if (src.family !== dst.family) {
    r.error(joinPath(f.path, 'dst'), f.values.get('dst'), 'tunnel src and dst are of different address families');
    return null;
  }
  return { family: src.family, src: src.addr, dst: dst.addr };
}

function readUdpEncap(r: Reader, parent: Fields, path: string): UdpEncap | null {
  const node = r.get(parent, 'udpEncapsulation');
  if (!node) return null;
  const f = r.fields(node, joinPath(path, 'udpEncapsulation'), ['type', 'srcPort', 'dstPort']);
  if (!f) return null;
  const type = r.oneOf(f, 'type', UDP_ESP_TYPES);
  if (!f.values.has('type')) r.error(joinPath(f.path, 'type'), node, `type missing: ${UDP_ESP_TYPES.join(' | ')}`);
  const srcPort = r.int(f, 'srcPort', 1, 65535) ?? 4500;
  const dstPort = r.int(f, 'dstPort', 1, 65535) ?? 4500;
  return type ? { type, srcPort, dstPort } : null;
}

function readSequence(r: Reader, parent: Fields, path: string, esn: boolean): { next: number; high: number } {
  const seq = { next: 1, high: 0 };
  const node = r.get(parent, 'sequence');
  if (!node) return seq;
  const f = r.fields(node, joinPath(path, 'sequence'), ['next', 'high']);
  if (!f) return seq;
  seq.next = r.int(f, 'next', 0, U32, true) ?? 1;
  seq.high = r.int(f, 'high', 0, U32, true) ?? 0;
  if (seq.high !== 0 && !esn) r.error(joinPath(f.path, 'high'), f.values.get('high'), 'sequence.high needs esn: true (without ESN there are no high-order bits)');
  if (seq.next === 0 && seq.high === 0) r.error(joinPath(f.path, 'next'), f.values.get('next'), 'sequence numbers start at 1 (RFC 4303 §3.3.3)');
  return seq;
}

function readLifetime(r: Reader, parent: Fields, path: string): { packets: number | null; bytes: number | null } {
  const lt = { packets: null as number | null, bytes: null as number | null };
  const node = r.get(parent, 'lifetime');
  if (!node) return lt;
  const f = r.fields(node, joinPath(path, 'lifetime'), ['packets', 'bytes']);
  if (!f) return lt;
  lt.packets = r.int(f, 'packets', 1, Number.MAX_SAFE_INTEGER) ?? null;
  lt.bytes = r.int(f, 'bytes', 1, Number.MAX_SAFE_INTEGER) ?? null;
  return lt;
}

/** SPI as an integer or "0x..." hex string; 0..255 are reserved (RFC 4303 §2.1). */
function readSpi(r: Reader, f: Fields): number {
  const node = r.get(f, 'spi');
  const path = joinPath(f.path, 'spi');
  if (!node) {
    r.error(path, f.node, 'spi missing');
    return 0;
  }
  if (isScalar(node) && typeof node.value === 'string' && !/^\s*0x[0-9a-f]+\s*$/i.test(node.value)) {
    r.error(path, node, `${describe(node)}: an SPI is an integer or a hex string with 0x ("0x0000c001")`);
    return 0;
  }
  const spi = r.intNode(node, path, 0, U32, true);
  if (spi === undefined) return 0;
  if (spi <= 255) r.error(path, node, `SPI ${hex32(spi)} is reserved: 0 and 1..255 are not usable SPIs (RFC 4303 §2.1)`);
  return spi;
}

/** An SPI as 0x%08x (the form SA files, reports and OOB records use). */
export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

/** "20 bytes expected (16 key + 4 salt), got 16 — the 4-byte salt is missing?" and friends. */
function checkKeyLength(r: Reader, path: string, node: Node | undefined, got: number, alg: { name: string; keyLen: number; saltLen: number }, table: Record<string, { name: string; keyLen: number; saltLen: number }>): boolean {
  const want = alg.keyLen + alg.saltLen;
  if (got === want) return true;
  const family = alg.name.replace(/-\d+$/, '');
  const alt = Object.values(table).find((a) => a.name !== alg.name && a.name.replace(/-\d+$/, '') === family && a.keyLen + a.saltLen === got);
  let msg = alg.saltLen ? `${want} bytes expected (${alg.keyLen} key + ${alg.saltLen} salt), got ${got}` : `${want} bytes expected for ${alg.name}, got ${got}`;
  if (alg.saltLen && got === alg.keyLen) msg += ` — the ${alg.saltLen}-byte salt is missing?`;
  else if (alt) msg += ` — did you mean ${alt.name}?`;
  r.error(path, node, msg);
  return false;
}

function algorithmName(r: Reader, f: Fields, name: string, known: readonly string[], aliases: Record<string, string> = {}): string | undefined {
  const node = r.get(f, name);
  if (!node) return undefined;
  const v = isScalar(node) && typeof node.value === 'string' ? node.value : null;
  if (v !== null && (known.includes(v) || v in aliases)) return aliases[v] ?? v;
  const s = v !== null ? suggest(v, known) : null;
  r.error(joinPath(f.path, name), node, `unknown algorithm ${describe(node)}${s ? ` (did you mean "${s}"?)` : ''}; known: ${known.join(', ')}`);
  return undefined;
}

function readEsp(r: Reader, node: Node, path: string, kctx: KeyContext): EspSa | null {
  const f = r.fields(node, path, ['spi', 'encryption', 'encryptionKey', 'integrity', 'integrityKey', 'icvLength']);
  if (!f) return null;
  const spi = readSpi(r, f);
  const encName = algorithmName(r, f, 'encryption', Object.keys(ENCRYPTION), { none: 'null' }) ?? (f.values.has('encryption') && !r.isNull(f.values.get('encryption')) ? undefined : 'null');
  const intName = algorithmName(r, f, 'integrity', Object.keys(INTEGRITY)) ?? (r.get(f, 'integrity') ? undefined : 'none');
  const encKey = readKey(r, f, 'encryptionKey', kctx);
  const intKey = readKey(r, f, 'integrityKey', kctx);
  const enc = encName !== undefined ? encryptionAlgorithm(encName) : undefined;
  const integ = intName !== undefined ? integrityAlgorithm(intName) : undefined;
  const ekPath = joinPath(path, 'encryptionKey');
  const ikPath = joinPath(path, 'integrityKey');

  if (enc) {
    if (enc.keyLen + enc.saltLen === 0) {
      if (encKey && encKey.length) r.error(ekPath, f.values.get('encryptionKey'), `encryption ${enc.name} takes no key`);
    } else if (encKey === undefined) r.error(ekPath, f.node, `encryptionKey missing: ${enc.name} needs ${enc.keyLen + enc.saltLen} bytes${enc.saltLen ? ` (${enc.keyLen} key + ${enc.saltLen} salt)` : ''}`);
    else if (encKey) checkKeyLength(r, ekPath, f.values.get('encryptionKey') ?? undefined, encKey.length, enc, ENCRYPTION);
    if (enc.status === 'MUST NOT') r.warning(joinPath(path, 'encryption'), f.values.get('encryption'), `${enc.name} is MUST NOT in RFC 8221; loaded for old captures only`);
  }
  if (enc && integ) {
    if (enc.aead && integ.name !== 'none') r.error(joinPath(path, 'integrity'), f.values.get('integrity'), `integrity must be none for combined-mode encryption ${enc.name} (it carries its own ICV)`);
    if (integ.kind === 'gmac' && enc.name !== 'null') r.error(joinPath(path, 'integrity'), f.values.get('integrity'), `${integ.name} in ESP needs encryption: "null" (RFC 4543 ENCR_NULL_AUTH_AES_GMAC)`);
    if (!enc.aead && enc.name !== 'null' && integ.name === 'none') r.warning(path, f.node, `encryption ${enc.name} without integrity: packets are not authenticated (RFC 8221 forbids this outside tests)`);
    if (enc.name === 'null' && integ.name === 'none') r.error(path, f.node, 'ESP with neither encryption nor integrity protects nothing');
  }
  if (integ) {
    if (integ.name === 'none' || (enc && enc.aead)) {
      if (intKey && intKey.length) r.error(ikPath, f.values.get('integrityKey'), enc?.aead ? `integrityKey given, but ${enc.name} is combined mode: its key (with salt) is encryptionKey` : 'integrityKey given but integrity is none');
    } else if (intKey === undefined) r.error(ikPath, f.node, `integrityKey missing: ${integ.name} needs ${integ.keyLen + integ.saltLen} bytes`);
    else if (intKey) checkKeyLength(r, ikPath, f.values.get('integrityKey') ?? undefined, intKey.length, integ, INTEGRITY);
    if (integ.status === 'MUST NOT') r.warning(joinPath(path, 'integrity'), f.values.get('integrity'), `${integ.name} is MUST NOT in RFC 8221; loaded for old captures only`);
  }

  let icvLength = integ?.icvLen ?? 0;
  const icvNode = r.get(f, 'icvLength');
  if (enc?.aead) icvLength = enc.icvLengths[0];
  if (icvNode && enc) {
    const v = r.intNode(icvNode, joinPath(path, 'icvLength'), 0, 1024);
    if (!enc.aead) r.error(joinPath(path, 'icvLength'), icvNode, `icvLength applies to combined-mode encryption only; the ICV of ${integ?.name ?? 'this SA'} is ${integ?.icvLen ?? 0} bytes`);
    else if (v !== undefined && !enc.icvLengths.includes(v)) {
      const bits = [64, 96, 128].includes(v) ? ` (icvLength is in bytes: ${v} bits = ${v / 8})` : '';
      r.error(joinPath(path, 'icvLength'), icvNode, `icvLength ${v} is not allowed for ${enc.name}: ${[...enc.icvLengths].sort((a, b) => a - b).join(' | ')}${bits}`);
    } else if (v !== undefined) icvLength = v;
  }
  if (!enc || !integ) return null;
  return {
    spi,
    encryption: enc.name,
    encryptionKey: encKey ?? Buffer.alloc(0),
    integrity: integ.name,
    integrityKey: enc.aead ? Buffer.alloc(0) : (intKey ?? Buffer.alloc(0)),
    icvLength,
  };
}

function readAh(r: Reader, node: Node, path: string, kctx: KeyContext): AhSa | null {
  const f = r.fields(node, path, ['spi', 'integrity', 'integrityKey']);
  if (!f) return null;
  const spi = readSpi(r, f);
  const known = Object.keys(INTEGRITY).filter((n) => n !== 'none');
  const intName = algorithmName(r, f, 'integrity', known);
  if (!f.values.has('integrity') || r.isNull(f.values.get('integrity'))) r.error(joinPath(path, 'integrity'), f.node, `AH needs an integrity algorithm: ${known.join(', ')}`);
  const key = readKey(r, f, 'integrityKey', kctx);
  const integ = intName ? integrityAlgorithm(intName) : undefined;
  if (!integ) return null;
  if (key === undefined) r.error(joinPath(path, 'integrityKey'), f.node, `integrityKey missing: ${integ.name} needs ${integ.keyLen + integ.saltLen} bytes`);
  else if (key) checkKeyLength(r, joinPath(path, 'integrityKey'), f.values.get('integrityKey') ?? undefined, key.length, integ, INTEGRITY);
  if (integ.status === 'MUST NOT') r.warning(joinPath(path, 'integrity'), f.values.get('integrity'), `${integ.name} is MUST NOT in RFC 8221; loaded for old captures only`);
  return { spi, integrity: integ.name, integrityKey: key ?? Buffer.alloc(0), icvLength: integ.icvLen };
}
