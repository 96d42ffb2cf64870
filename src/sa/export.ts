/**
 * `ipsecov2 sa export --to wireshark`: the SA file's ESP SAs as a Wireshark `esp_sa` UAT file
 * (drop it into a profile directory, or pass each record with `-o uat:esp_sa:...`), and the
 * matching tshark `-o` arguments. Record format and algorithm strings: see wireshark.ts.
 *
 * Wireshark verifies and decrypts ESP only: AH members are left out (Wireshark never checks AH),
 * and SAs whose algorithms it lacks (AES-GMAC, i.e. ENCR_NULL_AUTH_AES_GMAC) are skipped with a
 * warning. Records use the 8-field form that every Wireshark version reads, unless an exported
 * SA uses ESN: then the 10-field form (SN "64-bit" + ESN high bits), which Wireshark ≤ 4.0 reads
 * as 8 fields (it drops the ESN fields with a warning and cannot verify ESN ICVs).
 */

import { ENCRYPTION } from '../crypto/registry.js';
import { formatIp, formatPrefix } from './addr.js';
import { hex32 } from './bundle.js';
import type { Bundle, SaDocument } from './model.js';
import { quoteUat, wsAuthenticationName, wsEncryptionName } from './wireshark.js';

/** Export options. */
export interface ExportOptions {
  /** 8 (every Wireshark), 10 (current, with SN/ESN fields) or auto (10 only when ESN is used). */
  fields?: 8 | 10 | 'auto';
}

/** The esp_sa records (without quoting) for every exportable ESP SA, plus warnings. */
export function wiresharkRecords(doc: SaDocument, opts: ExportOptions = {}): { records: string[][]; warnings: string[] } {
  const warnings: string[] = [];
  const bundles: Bundle[] = [...doc.bundles, ...doc.events.flatMap((e) => (e.kind === 'add' ? [e.bundle] : []))];
  const records: string[][] = [];
  let needEsn = false;
  for (const b of bundles) {
    const label = `bundle "${b.name}" (handle ${b.handle})`;
    if (b.ah && !b.esp) {
      warnings.push(`${label}: AH only; Wireshark does not verify AH, nothing exported`);
      continue;
    }
    if (b.ah) warnings.push(`${label}: AH member left out (Wireshark does not verify AH); its ESP SA is exported`);
    const esp = b.esp!;
    const enc = wsEncryptionName(esp.encryption, esp.icvLength);
    const auth = ENCRYPTION[esp.encryption]?.aead ? 'NULL' : wsAuthenticationName(esp.integrity);
    if (!enc || !auth) {
      warnings.push(`${label}: ${!enc ? esp.encryption : esp.integrity} has no Wireshark equivalent; skipped`);
      continue;
    }
    if (esp.encryption === 'chacha20-poly1305') warnings.push(`${label}: ChaCha20-Poly1305 needs Wireshark ≥ 4.2 (4.0 rejects the name)`);
    if (b.esn) needEsn = true;
    // Outer addresses: the tunnel endpoints, else the selector (transport: the packet's addresses).
    let family: 4 | 6 | null = null;
    let src = '*';
    let dst = '*';
    if (b.tunnel) {
      family = b.tunnel.family;
      src = formatIp(b.tunnel.src);
      dst = formatIp(b.tunnel.dst);
    } else {
      const s = b.selector;
      family = s.src?.family ?? s.dst?.family ?? null;
      const text = (p: typeof s.src): string => (!p ? '*' : p.len === (p.family === 4 ? 32 : 128) ? formatIp(p.addr) : formatPrefix(p));
      src = text(s.src);
      dst = text(s.dst);
    }
    const fields = [
      '',
      src,
      dst,
      hex32(esp.spi),
      enc,
      esp.encryptionKey.length ? `0x${esp.encryptionKey.toString('hex')}` : '',
      auth,
      esp.integrityKey.length ? `0x${esp.integrityKey.toString('hex')}` : '',
      b.esn ? '64-bit' : '32-bit',
      b.sequence.high.toString(16),
    ];
    // Wireshark ≤ 4.0 has no "Any" protocol: give one record per family.
    for (const fam of family ? [family] : [4, 6]) records.push([fam === 4 ? 'IPv4' : 'IPv6', ...fields.slice(1)]);
  }
  const n = opts.fields === undefined || opts.fields === 'auto' ? (needEsn ? 10 : 8) : opts.fields;
  if (needEsn && n === 8) warnings.push('ESN SAs exported without their SN/ESN fields (8-field form): Wireshark will not verify their ICVs');
  if (needEsn && n === 10) warnings.push('ESN SAs need the 10-field form: Wireshark ≤ 4.0 drops the SN/ESN fields with a warning');
  return { records: records.map((r) => r.slice(0, n)), warnings };
}

/**
 * The SA file's ESP SAs as an `esp_sa` UAT file.
 * @returns the file text; warnings for skipped SAs are returned as `#` comments at the top too.
 */
export function exportSa(doc: SaDocument, to: 'wireshark', opts: ExportOptions = {}): string {
  if (to !== 'wireshark') throw new Error(`unknown export format ${String(to)}`);
  const { records, warnings } = wiresharkRecords(doc, opts);
  const head = [
    `# esp_sa (Wireshark "ESP SAs" table) exported by ipsecov2 from ${doc.file}`,
    '# Use: copy to <profile>/esp_sa, or pass each line with tshark -o uat:esp_sa:<line>,',
    '# together with -o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE',
    '# This file holds keys: keep it private.',
    ...warnings.map((w) => `# skipped/changed: ${w}`),
  ];
  return [...head, ...records.map((r) => r.map(quoteUat).join(','))].join('\n') + '\n';
}

/**
 * tshark arguments that decrypt and verify with the SA file's ESP SAs:
 * `-o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE
 * -o uat:esp_sa:<record> ...`, plus `-d udp.port==4500,udpencap` is not needed (tshark
 * decodes UDP 4500 as UDP-encapsulated ESP by default).
 */
export function exportTsharkArgs(doc: SaDocument, opts: ExportOptions = {}): string[] {
  const { records } = wiresharkRecords(doc, opts);
  const args = ['-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE'];
  for (const r of records) args.push('-o', `uat:esp_sa:${r.map(quoteUat).join(',')}`);
  return args;
}
