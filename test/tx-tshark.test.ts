/**
 * Independent check of the send path with tshark (Wireshark 4.0): every ESP suite tshark can
 * decrypt, in every shape (transport v4/v6, tunnel 4-in-4, 6-in-6, 4-in-6, 6-in-4, UDP-encapsulated
 * transport and tunnel). tshark must find a good ICV, the expected sequence number and, as the
 * decrypted data, exactly the original payload followed by the RFC 4303 §2.4 trailer
 * (1, 2, 3, ... padding computed here from the cipher's block size, pad length, next header).
 * Skipped (visibly) when /usr/bin/tshark is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportTsharkArgs } from '../src/sa/export.js';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ENCRYPTION } from '../src/crypto/registry.js';
import { bundle, ether, espSa, ipPacket, pcapBytes, Prng, runTx, saDoc, type BundleOpts } from './tx-helpers.js';

const TSHARK = '/usr/bin/tshark';

const ENC: Record<string, string> = {
  null: 'NULL',
  'des-cbc': 'DES-CBC [RFC2405]',
  '3des-cbc': 'TripleDES-CBC [RFC2451]',
  'aes-cbc-128': 'AES-CBC [RFC3602]',
  'aes-cbc-192': 'AES-CBC [RFC3602]',
  'aes-cbc-256': 'AES-CBC [RFC3602]',
  'aes-ctr-128': 'AES-CTR [RFC3686]',
  'aes-ctr-192': 'AES-CTR [RFC3686]',
  'aes-ctr-256': 'AES-CTR [RFC3686]',
};
const AUTH: Record<string, string> = {
  none: 'NULL',
  'hmac-md5-96': 'HMAC-MD5-96 [RFC2403]',
  'hmac-sha1-96': 'HMAC-SHA-1-96 [RFC2404]',
  'hmac-sha256-128': 'HMAC-SHA-256-128 [RFC4868]',
  'hmac-sha384-192': 'HMAC-SHA-384-192 [RFC4868]',
  'hmac-sha512-256': 'HMAC-SHA-512-256 [RFC4868]',
};

interface Suite { encryption: string; integrity: string; icv?: number; tsEnc: string; tsAuth: string }

function suites(): Suite[] {
  const out: Suite[] = [];
  for (const e of Object.keys(ENC)) for (const a of Object.keys(AUTH)) {
    if (e === 'null' && a === 'none') continue;
    out.push({ encryption: e, integrity: a, tsEnc: ENC[e]!, tsAuth: AUTH[a]! });
  }
  for (const e of ['aes-gcm-128', 'aes-gcm-192', 'aes-gcm-256']) for (const icv of [16, 12, 8]) {
    out.push({ encryption: e, integrity: 'none', icv, tsEnc: `AES-GCM with ${icv} octet ICV [RFC4106]`, tsAuth: 'NULL' });
  }
  return out;
}

interface Shape { mode: 'transport' | 'tunnel'; inner: 4 | 6; outer: 4 | 6; udp: boolean }
const SHAPES: Shape[] = [
  { mode: 'transport', inner: 4, outer: 4, udp: false },
  { mode: 'transport', inner: 6, outer: 6, udp: false },
  { mode: 'tunnel', inner: 4, outer: 4, udp: false },
  { mode: 'tunnel', inner: 6, outer: 6, udp: false },
  { mode: 'tunnel', inner: 4, outer: 6, udp: false },
  { mode: 'tunnel', inner: 6, outer: 4, udp: false },
  { mode: 'transport', inner: 4, outer: 4, udp: true },
  { mode: 'tunnel', inner: 6, outer: 6, udp: true },
];

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('tshark decrypts tx output: valid ICV, sequence numbers, original payload and RFC 4303 trailer', { skip: existsSync(TSHARK) ? false : `${TSHARK} not installed` }, () => {
  const r = new Prng(0x75a4c);
  const uat: string[] = [];
  const outFrames: Buffer[] = [];
  const expect: { spi: number; seq: number; plain: string; icv: boolean; label: string; udp6: boolean }[] = [];
  let spi = 0x10000;
  for (const s of suites()) {
    for (const sh of SHAPES) {
      spi++;
      const esp = espSa(r, spi, s.encryption, s.integrity, s.icv);
      const b: BundleOpts = { name: 'o', handle: 1, mode: sh.mode, tunnelFamily: sh.outer, esp, next: 100, udp: sh.udp ? { type: sh.mode, srcPort: 4500, dstPort: 4500 } : null };
      const doc = saDoc([bundle(b)]);
      const plain = [0, 1].map(() => ipPacket(r, { family: sh.inner, proto: r.pick(['tcp', 'udp'] as const), payloadLen: r.int(200), sport: 40000, dport: 40001 }));
      const tx = runTx(doc, plain.map(ether));
      const enc = ENCRYPTION[s.encryption]!;
      const unit = Math.max(4, enc.blockSize);
      plain.forEach((p, i) => {
        assert.equal(tx.oob[i]!.txStatus, 'encrypted');
        outFrames.push(tx.outs[i]![0]!);
        // Payload: the upper-layer bytes (transport) or the whole datagram (tunnel).
        const ihl = sh.inner === 4 ? (p[0]! & 15) * 4 : 40;
        const payload = sh.mode === 'tunnel' ? p : p.subarray(ihl);
        const nh = sh.mode === 'tunnel' ? (sh.inner === 4 ? 4 : 41) : (sh.inner === 4 ? p[9]! : p[6]!);
        const pad = (unit - ((payload.length + 2) % unit)) % unit;
        const trailer = Buffer.from([...Array.from({ length: pad }, (_, k) => k + 1), pad, nh]);
        expect.push({ spi, seq: 100 + i, plain: hex(payload) + hex(trailer), icv: s.integrity !== 'none' || enc.aead, label: `${s.encryption}/${s.integrity}${s.icv ? '/' + s.icv : ''} ${sh.mode} ${sh.inner}in${sh.outer}${sh.udp ? ' udp' : ''}`, udp6: sh.udp && sh.outer === 6 });
      });
      // The keys reach tshark the way a user's would: `sa export --to wireshark` (its -o form).
      const args = exportTsharkArgs(doc);
      assert.ok(args.length > 4, `sa export wrote no record for ${s.encryption}/${s.integrity}`);
      uat.push(...args.slice(4));
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'tx-tshark-'));
  try {
    const file = join(dir, 'out.pcap');
    writeFileSync(file, pcapBytes(outFrames));
    const text = execFileSync(TSHARK, ['-n', '-r', file, '-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE', '-o', 'udp.check_checksum:TRUE', '-d', 'udp.port==40001,data', '-d', 'tcp.port==40001,data', ...uat,
      '-T', 'fields', '-E', 'occurrence=f', '-e', 'esp.spi', '-e', 'esp.sequence', '-e', 'esp.icv_good', '-e', 'esp.decrypted_data', '-e', 'udp.checksum.status'],
    { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, expect.length);
    const bad: string[] = [];
    lines.forEach((line, i) => {
      const [spiF, seqF, icvF, dataF, udpF] = line.split('\t');
      const e = expect[i]!;
      const why: string[] = [];
      if (Number(spiF) !== e.spi) why.push(`SPI ${spiF}`);
      if (Number(seqF) !== e.seq) why.push(`sequence ${seqF}`);
      if (e.icv && icvF !== '1') why.push(`ICV check '${icvF}'`);
      if (dataF !== e.plain) why.push(`decrypted data ${dataF} != ${e.plain}`);
      if (e.udp6 && udpF !== '1') why.push(`IPv6 UDP checksum status ${udpF}`);
      if (why.length) bad.push(`frame ${i + 1} ${e.label}: ${why.join('; ')}`);
    });
    assert.deepEqual(bad, [], `${bad.length} of ${lines.length} frames failed`);
    assert.ok(lines.length >= 900, `checked ${lines.length}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
