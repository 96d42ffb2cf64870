/**
 * Human-readable reports: `ipsecov2 sa check` (the bundles, what the NIC offloads and why not,
 * every warning) and `ipsecov2 caps` (NDIS_IPSEC_OFFLOAD_V2 with numeric flag values).
 * Keys are shown only as lengths and SHA-256 fingerprints, never as key material.
 */

import { createHash } from 'node:crypto';
import { ENCRYPTION, INTEGRITY } from '../crypto/registry.js';
import { formatIp, formatPrefix } from './addr.js';
import { hex32 } from './bundle.js';
import { formatDiagnostic } from './load.js';
import type { Bundle, NicProfile, SaDocument, Selector } from './model.js';
import { NDIS_CAPS_LAYOUT, NDIS_ENCAPSULATION, UDP_ESP_FLAG, encodeNdisCaps, toNdisCaps } from './nic.js';

/** A key's fingerprint: the first 8 hex digits of its SHA-256 (identifies a key without revealing it). */
export function fingerprint(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

function keyInfo(label: string, key: Uint8Array): string {
  return key.length ? `${label} ${key.length}B sha256:${fingerprint(key)}` : '';
}

function selectorText(s: Selector): string {
  const proto = s.protocol === null ? '' : ` proto ${({ 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' } as Record<number, string>)[s.protocol] ?? s.protocol}`;
  const ports = (s.srcPort !== null ? ` sport ${s.srcPort}` : '') + (s.dstPort !== null ? ` dport ${s.dstPort}` : '');
  if (!s.src && !s.dst && !proto && !ports) return 'any';
  return `${s.src ? formatPrefix(s.src) : 'any'} -> ${s.dst ? formatPrefix(s.dst) : 'any'}${proto}${ports}`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd()).join('\n');
}

function bundleRow(b: Bundle): string[] {
  const protos = [b.ah ? 'AH' : '', b.esp ? 'ESP' : ''].filter(Boolean).join('+') + (b.udpEncapsulation ? `/UDP(${b.udpEncapsulation.type})` : '');
  const spis = [b.ah ? `ah ${hex32(b.ah.spi)}` : '', b.esp ? `esp ${hex32(b.esp.spi)}` : ''].filter(Boolean).join(' ');
  const algs: string[] = [];
  const keys: string[] = [];
  if (b.esp) {
    const aead = ENCRYPTION[b.esp.encryption]?.aead;
    algs.push(aead ? `${b.esp.encryption}/icv${b.esp.icvLength}` : `${b.esp.encryption}+${b.esp.integrity}`);
    keys.push(keyInfo('enc', b.esp.encryptionKey), keyInfo('int', b.esp.integrityKey));
  }
  if (b.ah) {
    algs.push(`ah:${b.ah.integrity}`);
    keys.push(keyInfo('ah', b.ah.integrityKey));
  }
  const mode = (b.mode ?? 'auto') + (b.over ? ` over ${b.over}` : '');
  const esn = b.esn ? `yes (high ${b.sequence.high})` : 'no';
  const status = b.offloaded ? 'offloaded' : `NOT offloaded: ${b.notOffloadedReason}`;
  return [String(b.handle), b.name, b.direction, mode, protos, spis, algs.join(' '), keys.filter(Boolean).join(', ') || '-', esn, String(b.replayWindow), status];
}

/**
 * The `sa check` report: NIC summary, one row per bundle (handle, name, direction, mode,
 * protocols, SPIs, algorithms, key lengths + fingerprints, ESN, window, offloaded or why not),
 * endpoints/selectors, the events, then every warning.
 */
export function formatSaCheck(doc: SaDocument): string {
  const caps = toNdisCaps(doc.nic);
  const offloaded = doc.bundles.filter((b) => b.offloaded).length;
  const out: string[] = [];
  out.push(`${doc.file}: ${doc.bundles.length} bundle(s), ${offloaded} offloaded; NIC profile ${doc.nic.profile}, saCapacity ${doc.nic.saCapacity}, EncryptionAlgorithms 0x${caps.EncryptionAlgorithms.toString(16)}, AuthenticationAlgorithms 0x${caps.AuthenticationAlgorithms.toString(16)}`);
  out.push('');
  const header = ['handle', 'name', 'dir', 'mode', 'proto', 'SPI', 'algorithms', 'keys', 'ESN', 'window', 'NIC'];
  out.push(table([header, ...doc.bundles.map(bundleRow)]));
  out.push('');
  for (const b of doc.bundles) {
    const parts = [`selector ${selectorText(b.selector)}`];
    if (b.tunnel) parts.push(`tunnel ${formatIp(b.tunnel.src)} -> ${formatIp(b.tunnel.dst)}`);
    if (b.udpEncapsulation) parts.push(`udp ${b.udpEncapsulation.srcPort} -> ${b.udpEncapsulation.dstPort}`);
    if (b.direction === 'outbound') parts.push(`next seq ${b.sequence.next}`);
    if (b.lifetime.packets !== null || b.lifetime.bytes !== null) parts.push(`soft lifetime ${b.lifetime.packets ?? '-'} packets / ${b.lifetime.bytes ?? '-'} bytes`);
    out.push(`  ${b.handle} ${b.name}: ${parts.join('; ')}`);
  }
  if (doc.events.length) {
    out.push('', 'events:');
    for (const ev of doc.events) {
      const at = 'frame' in ev.at ? `frame ${ev.at.frame}` : `time ${ev.at.time}`;
      if (ev.kind === 'add') out.push(`  at ${at}: ADD_SA "${ev.bundle.name}" (handle ${ev.bundle.handle})${ev.bundle.notOffloadedReason ? ` — will not be offloaded: ${ev.bundle.notOffloadedReason}` : ''}`);
      else if (ev.kind === 'delete') out.push(`  at ${at}: DELETE_SA "${ev.sa}"`);
      else out.push(`  at ${at}: UPDATE_SA "${ev.sa}"${ev.spi !== null ? ` spi ${hex32(ev.spi)}` : ''} high ${ev.high}`);
    }
  }
  if (doc.warnings.length) {
    out.push('', `${doc.warnings.length} warning(s):`);
    for (const w of doc.warnings) out.push(`  ${formatDiagnostic(w)}`);
  }
  return out.join('\n') + '\n';
}

const ENC_FLAG_NAMES: Record<number, string> = { 0x1: 'NONE', 0x2: 'DES_CBC', 0x4: '3_DES_CBC', 0x8: 'AES_GCM_128', 0x10: 'AES_GCM_192', 0x20: 'AES_GCM_256', 0x40: 'AES_CBC_128', 0x80: 'AES_CBC_192', 0x100: 'AES_CBC_256' };
const AUTH_FLAG_NAMES: Record<number, string> = { 0x1: 'MD5', 0x2: 'SHA_1', 0x4: 'SHA_256', 0x8: 'AES_GCM_128', 0x10: 'AES_GCM_192', 0x20: 'AES_GCM_256' };
const UDP_FLAG_NAMES: Record<number, string> = {
  0x1: 'IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT',
  0x2: 'IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TUNNEL',
  0x4: 'IPSEC_OFFLOAD_V2_TRANSPORT_OVER_UDP_ESP_ENCAPSULATION_TUNNEL',
  0x8: 'IPSEC_OFFLOAD_V2_UDP_ESP_ENCAPSULATION_TRANSPORT_OVER_TUNNEL',
};

function flagNames(mask: number, names: Record<number, string>, prefix = ''): string[] {
  return Object.keys(names)
    .map(Number)
    .filter((bit) => mask & bit)
    .map((bit) => prefix + names[bit]);
}

/** Names of the set bits of each bitmask field. */
export function decodeCapsFlags(nic: NicProfile): Record<'Encapsulation' | 'UdpEsp' | 'AuthenticationAlgorithms' | 'EncryptionAlgorithms', string[]> {
  const caps = toNdisCaps(nic);
  const encap = Object.fromEntries(Object.entries(NDIS_ENCAPSULATION).map(([k, v]) => [v, `NDIS_ENCAPSULATION_${k}`]));
  return {
    Encapsulation: flagNames(caps.Encapsulation, encap),
    UdpEsp: flagNames(caps.UdpEsp, UDP_FLAG_NAMES),
    AuthenticationAlgorithms: flagNames(caps.AuthenticationAlgorithms, AUTH_FLAG_NAMES, 'IPSEC_OFFLOAD_V2_AUTHENTICATION_'),
    EncryptionAlgorithms: flagNames(caps.EncryptionAlgorithms, ENC_FLAG_NAMES, 'IPSEC_OFFLOAD_V2_ENCRYPTION_'),
  };
}

/**
 * The `caps` report: every NDIS_IPSEC_OFFLOAD_V2 field with its value (bitmasks in hex with
 * their flag names), the algorithms the profile adds beyond NDIS, and the 32-byte encoding.
 * With `json`, one JSON object.
 */
export function formatCaps(nic: NicProfile, json: boolean): string {
  const caps = toNdisCaps(nic);
  const flags = decodeCapsFlags(nic);
  const beyond = {
    encryption: nic.encryption.filter((n) => ENCRYPTION[n] && ENCRYPTION[n].ndisId === 0),
    integrity: nic.integrity.filter((n) => INTEGRITY[n] && INTEGRITY[n].ndisId === 0),
  };
  const bytes = encodeNdisCaps(caps).toString('hex');
  if (json) {
    return JSON.stringify({ profile: nic.profile, NDIS_IPSEC_OFFLOAD_V2: caps, flags, udpEsp: nic.udpEsp.map((t) => ({ type: t, flag: UDP_ESP_FLAG[t] })), beyondNdis: beyond, bytes }, null, 2) + '\n';
  }
  const lines = [`NDIS_IPSEC_OFFLOAD_V2 (NIC profile ${nic.profile}; 32 bytes, offsets per ntddndis.h)`];
  for (const [field, off] of NDIS_CAPS_LAYOUT) {
    const v = caps[field];
    let text: string;
    if (typeof v === 'boolean') text = v ? 'TRUE' : 'FALSE';
    else if (field === 'SaOffloadCapacity') text = String(v);
    else {
      const names = flags[field as keyof typeof flags] ?? [];
      text = `0x${v.toString(16).padStart(8, '0')}${names.length ? `  ${names.join(' | ')}` : ''}`;
    }
    lines.push(`  +${String(off).padStart(2, '0')} ${field.padEnd(30)} ${text}`);
  }
  if (beyond.encryption.length || beyond.integrity.length) {
    lines.push(`  beyond NDIS (no flag bit; emulator extension): ${[...beyond.encryption, ...beyond.integrity].join(', ')}`);
  }
  lines.push(`  bytes: ${bytes.replace(/(..)/g, '$1 ').trim()}`);
  return lines.join('\n') + '\n';
}
