/**
 * Cross-check with a second independent implementation: tshark (Wireshark 4.0) decrypts and
 * verifies the Scapy-made input captures of fixtures/rx/ with the same keys, and dissects OUR
 * decrypted output. For every frame both must agree: tshark's ESP ICV verdict ↔ our
 * cryptoStatus, and the inner packet tshark finds in the input ↔ the packet in our output.
 * Cases are those the manifest marks `tshark: true` (ESP algorithms Wireshark 4.0 has, no ESN,
 * no AH: Wireshark never verifies AH).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCapture } from '../src/pipeline/run.js';
import type { SaDocument } from '../src/sa/model.js';
import { loadRxManifest, RX_DIR, rxSa, type RxCase } from './helpers/rx-fixtures.js';

const TSHARK = process.env.TSHARK ?? 'tshark';
const probe = spawnSync(TSHARK, ['-v'], { encoding: 'utf8' });
const haveTshark = probe.status === 0;
const manifest = loadRxManifest();

/** Inner-packet fields compared between the decrypted input and our output. */
const INNER = ['ip.src', 'ip.dst', 'ip.proto', 'ip.len', 'ipv6.src', 'ipv6.dst', 'ipv6.nxt', 'ipv6.plen', 'udp.srcport', 'udp.dstport',
  'tcp.srcport', 'tcp.dstport', 'tcp.seq_raw', 'icmp.type', 'icmp.seq', 'icmpv6.type', 'data.data', 'tcp.payload'];
const FIELDS = ['frame.number', 'esp.icv_good', 'esp.icv_bad', 'esp.protocol', ...INNER];
/** In transport mode the input's IP header is the outer one: its protocol and length are ESP's. */
const HEADER = new Set(['ip.proto', 'ip.len', 'ipv6.nxt', 'ipv6.plen']);

type Row = Map<string, string[]>;

function tshark(file: string, extra: string[]): Row[] {
  const args = ['-n', '-r', file, ...extra, '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=|'];
  for (const f of FIELDS) args.push('-e', f);
  const r = spawnSync(TSHARK, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`tshark ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.length > 0).map((l) => {
    const cols = l.split('\t');
    const m: Row = new Map();
    FIELDS.forEach((f, i) => m.set(f, cols[i] ? cols[i]!.split('|') : []));
    return m;
  });
}

/** tshark arguments for the case's ESP SAs (the SA exporter when present, else built here). */
async function tsharkKeyArgs(c: RxCase): Promise<string[]> {
  const doc = rxSa(c.saFile);
  const names = new Set(c.frames.map((f) => f.sa).filter((s): s is string => !!s));
  const sub: SaDocument = { ...doc, bundles: doc.bundles.filter((b) => names.has(b.name)), events: [] };
  try {
    const mod = (await import('../src/sa/export.js')) as { exportTsharkArgs?: (d: SaDocument) => string[] };
    if (mod.exportTsharkArgs) return mod.exportTsharkArgs(sub);
  } catch {
    // fall through: exporter not built yet
  }
  return localTsharkArgs(sub);
}

const WS_ENC: Record<string, string> = {
  null: 'NULL', 'des-cbc': 'DES-CBC [RFC2405]', '3des-cbc': 'TripleDES-CBC [RFC2451]',
  'aes-cbc-128': 'AES-CBC [RFC3602]', 'aes-cbc-192': 'AES-CBC [RFC3602]', 'aes-cbc-256': 'AES-CBC [RFC3602]',
  'aes-ctr-128': 'AES-CTR [RFC3686]', 'aes-ctr-192': 'AES-CTR [RFC3686]', 'aes-ctr-256': 'AES-CTR [RFC3686]',
};
const WS_AUTH: Record<string, string> = {
  none: 'NULL', 'hmac-md5-96': 'HMAC-MD5-96 [RFC2403]', 'hmac-sha1-96': 'HMAC-SHA-1-96 [RFC2404]',
  'hmac-sha256-128': 'HMAC-SHA-256-128 [RFC4868]', 'hmac-sha384-192': 'HMAC-SHA-384-192 [RFC4868]', 'hmac-sha512-256': 'HMAC-SHA-512-256 [RFC4868]',
};

function localTsharkArgs(doc: SaDocument): string[] {
  const args = ['-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE'];
  for (const b of doc.bundles) {
    if (!b.esp) continue;
    const e = b.esp;
    const enc = e.encryption.startsWith('aes-gcm') ? `AES-GCM with ${e.icvLength} octet ICV [RFC4106]` : WS_ENC[e.encryption];
    const auth = e.encryption.startsWith('aes-gcm') ? 'NULL' : WS_AUTH[e.integrity];
    if (!enc || !auth) continue;
    const spi = '0x' + e.spi.toString(16).padStart(8, '0');
    for (const fam of ['IPv4', 'IPv6']) {
      const rec = [fam, '*', '*', spi, enc, e.encryptionKey.length ? '0x' + e.encryptionKey.toString('hex') : '', auth,
        e.integrityKey.length ? '0x' + e.integrityKey.toString('hex') : ''];
      args.push('-o', `uat:esp_sa:${rec.map((x) => `"${x}"`).join(',')}`);
    }
  }
  return args;
}

const cases = manifest.cases.filter((c) => c.tshark);

describe('rx vs tshark 4.0 on the Scapy captures', () => {
  test('tshark cases exist', (t) => {
    if (!haveTshark) { t.skip('tshark not installed'); return; }
    assert.ok(cases.length > 40, `only ${cases.length} tshark cases`);
  });
  for (const c of cases) {
    test(c.name, async (t) => {
      if (!haveTshark) { t.skip('tshark not installed'); return; }
      const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-tshark-'));
      try {
        const input = join(RX_DIR, c.capture);
        const output = join(dir, 'out.pcap');
        const oob: { cryptoDone: number; cryptoStatus: string }[] = [];
        await runCapture({
          path: 'rx', input, output, oob: null, format: 'pcap', sa: rxSa(c.saFile), inPlace: false, dropFailed: false,
          anyDirection: false, esn: 'infer', replayWindow: null, workers: 0, ivSeed: null, mtu: 1500, progress: false,
          onRecord: (r) => oob.push({ cryptoDone: r.cryptoDone, cryptoStatus: ['CRYPTO_SUCCESS', 'CRYPTO_GENERIC_ERROR', 'CRYPTO_TRANSPORT_AH_AUTH_FAILED', 'CRYPTO_TRANSPORT_ESP_AUTH_FAILED', 'CRYPTO_TUNNEL_AH_AUTH_FAILED', 'CRYPTO_TUNNEL_ESP_AUTH_FAILED', 'CRYPTO_INVALID_PACKET_SYNTAX', 'CRYPTO_INVALID_PROTOCOL'][r.cryptoStatus]! }),
        });
        const keyed = tshark(input, await tsharkKeyArgs(c));
        const ours = tshark(output, []);
        const problems: string[] = [];
        if (keyed.length !== c.frames.length || ours.length !== c.frames.length) problems.push(`frame counts: tshark input ${keyed.length}, tshark on our output ${ours.length}, manifest ${c.frames.length}`);
        let verdicts = 0;
        for (let i = 0; i < c.frames.length; i++) {
          const k = keyed[i];
          const o = ours[i];
          const r = oob[i];
          if (!k || !o || !r) continue;
          const where = `${c.name} frame ${i + 1}`;
          const good = k.get('esp.icv_good')!;
          const bad = k.get('esp.icv_bad')!;
          if (good.length + bad.length === 0 || r.cryptoDone === 0) continue; // no verdict from one side
          verdicts++;
          const tsOk = good.every((v) => v === '1' || v === 'True') && !bad.some((v) => v === '1' || v === 'True');
          const weOk = r.cryptoStatus === 'CRYPTO_SUCCESS';
          if (tsOk !== weOk) problems.push(`${where}: tshark ICV ${tsOk ? 'good' : 'bad'} (good=${good.join('|')} bad=${bad.join('|')}), we say ${r.cryptoStatus}`);
          if (!tsOk || !weOk) continue;
          let compared = 0;
          const transport = !c.tags.includes('tunnel');
          if (transport) {
            // The next header tshark read from the decrypted ESP trailer = our output's protocol.
            const nh = k.get('esp.protocol')!.slice(-1)[0];
            const ours1 = (o.get('ip.proto')!.length ? o.get('ip.proto')! : o.get('ipv6.nxt')!).slice(-1)[0];
            if (nh === undefined || ours1 === undefined || Number(nh) !== Number(ours1)) problems.push(`${where}: tshark's ESP next header ${nh}, our output's protocol ${ours1}`);
          }
          for (const f of INNER) {
            const ov = o.get(f)!;
            if (ov.length === 0 || (transport && HEADER.has(f))) continue;
            const kv = k.get(f)!.slice(-ov.length);
            compared++;
            if (kv.join('|') !== ov.join('|')) problems.push(`${where}: ${f}: tshark on the decrypted input says ${kv.join('|') || '(none)'}, on our output ${ov.join('|')}`);
          }
          if (compared < 3) problems.push(`${where}: only ${compared} inner fields to compare`);
        }
        if (verdicts === 0) problems.push(`${c.name}: tshark gave no ICV verdict for any frame`);
        if (problems.length) assert.fail(`${problems.length} problem(s) in case ${c.name} (${c.capture}):\n  ${problems.join('\n  ')}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
