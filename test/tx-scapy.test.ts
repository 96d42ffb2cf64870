/**
 * Independent check of the send path with Scapy (scripts/make-tx-check.py): what tshark cannot
 * check — AH with every integrity (HMAC via Scapy, GMAC per RFC 4543 §4 in the script), AH+ESP,
 * ChaCha20-Poly1305, AES-GMAC ESP, ESN (AEAD AAD, HMAC, AH), IPv4 options and IPv6 hop-by-hop
 * headers under AH — plus a sample of the suites tshark also checks.
 * Skipped (visibly) when /usr/bin/python3 has no python3-scapy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync, spawnSync } from 'node:child_process';
import { INTEGRITY } from '../src/crypto/registry.js';
import { ahSa, ahSuites, bundle, ether, espSa, espSuites, ipPacket, pcapBytes, Prng, runTx, saDoc, type BundleOpts } from './tx-helpers.js';

const PY = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'scripts', 'make-tx-check.py');

function scapyMissing(): string | false {
  const r = spawnSync(PY, ['-c', 'import scapy.layers.ipsec, cryptography'], { stdio: 'ignore' });
  return r.status === 0 ? false : `${PY} with python3-scapy (and python3-cryptography) not available`;
}

const CRYPT: Record<string, string> = {
  null: 'NULL', 'des-cbc': 'DES', '3des-cbc': '3DES', 'aes-cbc-128': 'AES-CBC', 'aes-cbc-192': 'AES-CBC', 'aes-cbc-256': 'AES-CBC',
  'aes-ctr-128': 'AES-CTR', 'aes-ctr-192': 'AES-CTR', 'aes-ctr-256': 'AES-CTR', 'aes-gcm-128': 'AES-GCM', 'aes-gcm-192': 'AES-GCM',
  'aes-gcm-256': 'AES-GCM', 'chacha20-poly1305': 'CHACHA20-POLY1305',
};
const AUTH: Record<string, string> = {
  none: '', 'hmac-md5-96': 'HMAC-MD5-96', 'hmac-sha1-96': 'HMAC-SHA1-96', 'hmac-sha256-128': 'SHA2-256-128',
  'hmac-sha384-192': 'SHA2-384-192', 'hmac-sha512-256': 'SHA2-512-256', 'aes-gmac-128': 'GMAC', 'aes-gmac-192': 'GMAC', 'aes-gmac-256': 'GMAC',
};

interface Shape { mode: 'transport' | 'tunnel'; inner: 4 | 6; outer: 4 | 6 }
const SHAPES: Shape[] = [
  { mode: 'transport', inner: 4, outer: 4 }, { mode: 'transport', inner: 6, outer: 6 },
  { mode: 'tunnel', inner: 4, outer: 4 }, { mode: 'tunnel', inner: 6, outer: 6 },
  { mode: 'tunnel', inner: 4, outer: 6 }, { mode: 'tunnel', inner: 6, outer: 4 },
];

test('Scapy checks tx output: AH (every integrity), AH+ESP, GMAC, ChaCha20, ESN, options', { skip: scapyMissing() }, () => {
  const r = new Prng(0x5ca9);
  const out: Buffer[] = [];
  const cases: object[] = [];
  const labels: string[] = [];
  let spi = 0x20000;
  const add = (label: string, b: BundleOpts, inner: 4 | 6, udp: boolean): void => {
    const doc = saDoc([bundle(b)]);
    const plain = [0, 1, 2].map((i) => ipPacket(r, { family: inner, proto: r.pick(['tcp', 'udp', 'icmp'] as const), payloadLen: r.int(150), options: i === 1, sport: 40000, dport: 40001 }));
    const tx = runTx(doc, plain.map(ether));
    const e = b.esp ?? null;
    const a = b.ah ?? null;
    const sa = {
      mode: b.mode, udp, esn: !!b.esn, high: b.high ?? 0,
      esp: e ? { spi: e.spi, crypt: CRYPT[e.encryption], crypt_key: e.encryptionKey.toString('hex'), auth: AUTH[e.integrity] || null, auth_key: e.integrityKey.toString('hex'), icv: e.icvLength } : null,
      ah: a ? { spi: a.spi, auth: AUTH[a.integrity], key: a.integrityKey.toString('hex'), icv: a.icvLength } : null,
    };
    plain.forEach((p, i) => {
      assert.equal(tx.oob[i]!.txStatus, 'encrypted', `${label}: ${tx.oob[i]!.detail}`);
      out.push(tx.outs[i]![0]!);
      cases.push({ plain: p.toString('hex'), sa });
      labels.push(`${label} #${i}`);
    });
  };
  // AH with every integrity, alone and outside ESP, every shape, ESN on every other one.
  let n = 0;
  for (const integ of ahSuites()) {
    for (const sh of SHAPES) {
      for (const withEsp of [false, true]) {
        const esn = n++ % 3 === 1;
        const s = r.pick(espSuites().filter((x) => !x.encryption.startsWith('aes-ctr') || x.integrity !== 'none'));
        spi += 2;
        add(`AH ${integ}${withEsp ? ` + ESP ${s.encryption}/${s.integrity}` : ''} ${sh.mode} ${sh.inner}in${sh.outer}${esn ? ' esn' : ''}`,
          { name: 'o', handle: 1, mode: sh.mode, tunnelFamily: sh.outer, ah: ahSa(r, spi, integ), esp: withEsp ? espSa(r, spi + 1, s.encryption, s.integrity, s.icv) : null, esn, high: esn ? 0x1234 : 0 },
          sh.inner, false);
      }
    }
  }
  // ESP: every suite Scapy (or the script) knows, a rotating shape, UDP on some, ESN on some.
  let k = 0;
  for (const s of espSuites()) {
    if (!(s.encryption in CRYPT) || !(s.integrity in AUTH)) continue;
    if (INTEGRITY[s.integrity]!.kind === 'none' && s.encryption === 'null') continue;
    for (const esn of [false, true]) {
      const sh = SHAPES[k++ % SHAPES.length]!;
      const udp = k % 3 === 0;
      spi += 2;
      add(`ESP ${s.encryption}/${s.integrity}${s.icv ? '/' + s.icv : ''} ${sh.mode} ${sh.inner}in${sh.outer}${udp ? ' udp' : ''}${esn ? ' esn' : ''}`,
        { name: 'o', handle: 1, mode: sh.mode, tunnelFamily: sh.outer, esp: espSa(r, spi, s.encryption, s.integrity, s.icv), esn, high: esn ? 0x89abcdef : 0, udp: udp ? { type: sh.mode, srcPort: 4500, dstPort: 4500 } : null },
        sh.inner, udp);
    }
  }
  // Negative controls: one altered byte (AH ICV input, ESP ciphertext / ICV) must be caught.
  const nOk = out.length;
  for (const i of [0, 1, nOk - 1, nOk - 2]) {
    const f = Buffer.from(out[i]!);
    f[f.length - 1 - (i % 7)] ^= 0x01;
    out.push(f);
    cases.push(cases[i]!);
    labels.push(`altered ${labels[i]}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tx-scapy-'));
  try {
    writeFileSync(join(dir, 'out.pcap'), pcapBytes(out));
    writeFileSync(join(dir, 'cases.json'), JSON.stringify({ frames: cases }));
    let text: string;
    try {
      text = execFileSync(PY, [SCRIPT, join(dir, 'out.pcap'), join(dir, 'cases.json')], { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      text = String((e as { stdout?: string }).stdout ?? '');
      if (!text) throw e;
    }
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, out.length, text.slice(0, 2000));
    const bad = lines.map((l, i) => ((l === 'OK') === (i < nOk) ? null : `${labels[i]}: ${l}`)).filter((x) => x !== null);
    assert.deepEqual(bad, [], `${bad.length} of ${lines.length} frames failed`);
    assert.ok(lines.length > 300);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
