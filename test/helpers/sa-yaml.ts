/**
 * SA files for tests that run the CLI or the pipeline on captures they make with tx: outbound
 * bundles (rx uses them with --any-direction / anyDirection), written to a 0600 file.
 */
import { chmodSync, writeFileSync } from 'node:fs';

export interface TestSa {
  name: string;
  mode: 'tunnel' | 'transport';
  /** Selector destination prefix, e.g. 10.1.1.0/24. */
  dst: string;
  /** Tunnel endpoints (tunnel mode). */
  tunnel?: { src: string; dst: string };
  /** The `esp:` mapping's fields, as YAML flow text (spi, encryption, keys...). */
  esp: string;
  /** Extra bundle lines (e.g. `sequence: { next: 4294967000 }`). */
  extra?: string;
}

/** Write an SA file of these bundles at `path` (mode 0600: no permission warning). */
export function writeSaFile(path: string, sas: TestSa[]): string {
  const lines = ['version: 1', 'sas:'];
  for (const s of sas) {
    lines.push(`  - name: ${s.name}`, '    direction: outbound', `    mode: ${s.mode}`, `    selector: { dst: ${s.dst} }`);
    if (s.tunnel) lines.push(`    tunnel: { src: ${s.tunnel.src}, dst: ${s.tunnel.dst} }`);
    if (s.extra) lines.push(`    ${s.extra}`);
    lines.push(`    esp: { ${s.esp} }`);
  }
  writeFileSync(path, lines.join('\n') + '\n');
  chmodSync(path, 0o600);
  return path;
}

/** A tunnel-mode AES-GCM-128 SA to 10.1.1.0/24 (SPI 0xc001). */
export function tunGcmSa(name = 'tun'): TestSa {
  return { name, mode: 'tunnel', dst: '10.1.1.0/24', tunnel: { src: '192.0.2.2', dst: '192.0.2.1' }, esp: `spi: 0x0000c001, encryption: aes-gcm-128, encryptionKey: "${'11'.repeat(20)}", icvLength: 16` };
}

/** A transport-mode AES-CBC-128 + HMAC-SHA-256-128 SA to 10.2.2.0/24 (SPI 0xc002). */
export function transCbcSa(name = 'trans'): TestSa {
  return { name, mode: 'transport', dst: '10.2.2.0/24', esp: `spi: 0x0000c002, encryption: aes-cbc-128, encryptionKey: "${'22'.repeat(16)}", integrity: hmac-sha256-128, integrityKey: "${'33'.repeat(32)}"` };
}
