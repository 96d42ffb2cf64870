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
