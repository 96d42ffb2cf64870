/**
 * Importers (ip xfrm state, Wireshark esp_sa 8/10 fields, strongSwan save-keys), the Wireshark
 * exporter (round trip, and for real against tshark on fixtures/sa/export/esp.pcap), the CLI
 * functions, and that no key hex ever appears in reports or error messages.
 */

import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { caps, saCheck, saExport, saImport } from '../src/cli/sa-commands.js';
import type { Io } from '../src/cli/sa-commands.js';
import { fingerprint, formatCaps, formatSaCheck } from '../src/sa/check.js';
import { exportSa, exportTsharkArgs } from '../src/sa/export.js';
import { importSa } from '../src/sa/import.js';
import { SaFileError, loadSaFile, parseSaText } from '../src/sa/load.js';
import type { SaDocument } from '../src/sa/model.js';
import { nicProfile } from '../src/sa/nic.js';

const FIX = fileURLToPath(new URL('../../fixtures/sa/', import.meta.url));
const read = (p: string): string => readFileSync(join(FIX, p), 'utf8');

function imported(from: 'xfrm' | 'wireshark' | 'strongswan', file: string): { doc: SaDocument; warnings: string[]; yaml: string } {
  const { yaml, warnings } = importSa(from, read(file), file);
  return { doc: parseSaText(yaml, 'imported.yaml', { env: {} }), warnings, yaml };
}

/** Every key of a document, as hex. */
function keyHexes(doc: SaDocument): string[] {
  return doc.bundles.flatMap((b) => [b.esp?.encryptionKey, b.esp?.integrityKey, b.ah?.integrityKey]).filter((k): k is Buffer => !!k && k.length > 0).map((k) => k.toString('hex'));
}

function collect(): Io & { out: string; err: string } {
  const io = { out: '', err: '', stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t) };
  return io;
}

describe('sa import', () => {
  it('ip xfrm state: GCM/ESN tunnel, CBC+SHA1 with selector, espinudp, AH, 3DES v6, GMAC, ChaCha, NULL+MD5, DES', () => {
    const { doc, warnings, yaml } = imported('xfrm', 'import/xfrm-state.txt');
    assert.match(yaml, /^# SA file imported by `ipsecov2 sa import --from xfrm`/);
    assert.match(yaml, /--any-direction/);
    assert.deepEqual(warnings, ['import/xfrm-state.txt: line 72: esp SPI 0x00009001: mode beet is not transport or tunnel; skipped']);
    const by = (spi: number) => doc.bundles.find((b) => (b.esp ?? b.ah)!.spi === spi)!;
    assert.equal(doc.bundles.length, 10);
    assert.ok(doc.bundles.every((b) => b.direction === 'inbound'));
    const gcm = by(0xc001);
    assert.equal(gcm.mode, 'tunnel');
    assert.equal(gcm.esn, true);
    assert.equal(gcm.sequence.high, 1);
    assert.equal(gcm.replayWindow, 128);
    assert.equal(gcm.esp!.encryption, 'aes-gcm-128');
    assert.equal(gcm.esp!.icvLength, 16);
    assert.equal(gcm.esp!.encryptionKey.toString('hex'), '000102030405060708090a0b0c0d0e0f11223344');
    assert.equal(gcm.selector.src!.len, 16);
    const cbc = by(0x1001);
    assert.deepEqual([cbc.mode, cbc.esp!.encryption, cbc.esp!.integrity, cbc.selector.protocol, cbc.selector.dstPort, cbc.replayWindow], ['transport', 'aes-cbc-128', 'hmac-sha1-96', 6, 443, 32]);
    const natt = by(0x3001);
    assert.deepEqual(natt.udpEncapsulation, { type: 'tunnel', srcPort: 4500, dstPort: 4500 });
    assert.equal(natt.esp!.encryption, 'aes-gcm-256');
    assert.deepEqual([by(0xa001).ah!.integrity, by(0xa001).ah!.icvLength], ['hmac-sha256-128', 16]);
    assert.deepEqual([by(0x2001).esp!.encryption, by(0x2001).selector.dst!.family], ['3des-cbc', 6]);
    assert.deepEqual([by(0x5001).esp!.encryption, by(0x5001).esp!.integrity], ['null', 'aes-gmac-128']);
    assert.equal(by(0x6001).esp!.encryption, 'chacha20-poly1305');
    assert.deepEqual([by(0x7001).esp!.encryption, by(0x7001).esp!.integrity], ['null', 'hmac-md5-96']);
    assert.equal(by(0x8001).esp!.encryption, 'des-cbc');
  });

  it('ip -s xfrm state: (bits) and (decimal) annotations, lifetime, dir out with oseq', () => {
    const { doc, warnings, yaml } = imported('xfrm', 'import/xfrm-state-stats.txt');
    assert.deepEqual(warnings, []);
    assert.ok(!yaml.includes('--any-direction'), 'dir lines say which side is local');
    const [a, b] = doc.bundles;
    assert.deepEqual([a.esp!.spi, a.esn, a.sequence.high, a.replayWindow, a.lifetime.packets], [0xc001, true, 1, 128, 1000000]);
    assert.deepEqual([b.direction, b.mode, b.sequence.next, b.replayWindow, b.esp!.encryptionKey.toString('hex')], ['outbound', 'transport', 0x12, 32, '102132435465768798a9bacbdcedfe0f']);
  });

  it('Wireshark esp_sa, 8-field form: algorithms, wildcards, unsupported entries skipped with a reason', () => {
    const { doc, warnings } = imported('wireshark', 'import/wireshark-esp_sa-8.txt');
    assert.deepEqual(doc.bundles.map((b) => [b.esp!.spi.toString(16), b.esp!.encryption, b.esp!.integrity, b.esp!.icvLength, b.tunnel ? 'addr' : 'any']), [
      ['c001', 'aes-gcm-128', 'none', 16, 'addr'],
      ['1001', 'aes-cbc-128', 'hmac-sha1-96', 12, 'addr'],
      ['2001', '3des-cbc', 'hmac-sha256-128', 16, 'addr'],
      ['3001', 'aes-gcm-256', 'none', 12, 'any'],
      ['4001', 'null', 'hmac-md5-96', 12, 'addr'],
      ['7001', 'aes-ctr-128', 'hmac-sha512-256', 32, 'addr'],
    ]);
    assert.equal(warnings.length, 3);
    assert.match(warnings[0], /line 7: SPI 0x00005001: "ANY 96 bit authentication \[no checking\]" names no algorithm/);
    assert.match(warnings[1], /line 8: SPI "\*" is not one exact 0x\.\.\. value/);
    assert.match(warnings[2], /line 9: SPI 0x00006001: Blowfish-CBC is not implemented; skipped/);
  });

  it('Wireshark esp_sa, 10-field form: SN 64-bit and ESN high bits, ChaCha20, "Any"', () => {
    const { doc, warnings } = imported('wireshark', 'import/wireshark-esp_sa-10.txt');
    assert.deepEqual(doc.bundles.map((b) => [b.esp!.spi, b.esn, b.sequence.high, b.esp!.encryption]), [
      [0xc001, true, 1, 'aes-gcm-128'],
      [0x1001, false, 0, 'aes-cbc-128'],
      [0x6001, true, 0xffffffff, 'chacha20-poly1305'],
    ]);
    assert.deepEqual(warnings.map((w) => w.replace(/^.*?: line/, 'line')), ['line 5: SPI 0x00006002: implicit IV (RFC 8750) is not implemented; skipped']);
  });

  it('strongSwan save-keys: legacy GCM + "ANY n bit" mapped to icvLength, TripleDes spelling, IKE endpoints', () => {
    const { doc, warnings, yaml } = imported('strongswan', 'import/strongswan-esp_sa.txt');
    assert.deepEqual(doc.bundles.map((b) => [b.esp!.spi.toString(16), b.esp!.encryption, b.esp!.integrity, b.esp!.icvLength]), [
      ['c5a3d0f1', 'aes-gcm-128', 'none', 16],
      ['c91b7e02', 'aes-gcm-128', 'none', 16],
      ['c7f00d01', 'aes-cbc-256', 'hmac-sha256-128', 16],
      ['c7f00d02', 'aes-cbc-256', 'hmac-sha256-128', 16],
      ['cafe0001', '3des-cbc', 'hmac-sha1-96', 12],
      ['cafe0002', '3des-cbc', 'hmac-sha1-96', 12],
      ['c0de0001', 'aes-gcm-256', 'none', 8],
    ]);
    assert.deepEqual(warnings.map((w) => w.replace(/^.*?: line/, 'line')), ['line 7: SPI 0xc0de0001: strongSwan writes "ANY 64 bit" for both 8- and 12-octet GCM ICVs; assumed 8 (set icvLength: 12 if ICVs fail)']);
    assert.match(yaml, /IKE SA's endpoints/);
    assert.equal(doc.bundles[0].tunnel!.dst.toString('hex'), 'c0000202');
  });
});

describe('sa export', () => {
  it('export → import round trip keeps SPIs, algorithms, keys, ICV lengths and ESN', () => {
    const doc = loadSaFile(join(FIX, 'examples/full.yaml'));
    const text = exportSa(doc, 'wireshark');
    assert.match(text, /# skipped\/changed: bundle "natt-gmac" \(handle 5\): aes-gmac-128 has no Wireshark equivalent; skipped/);
    assert.match(text, /# skipped\/changed: bundle "v6-ah-esp" \(handle 4\): AH member left out/);
    const back = parseSaText(importSa('wireshark', text, 'esp_sa').yaml, 'back.yaml', { env: {} });
    const sig = (d: SaDocument, names?: string[]) =>
      d.bundles.filter((b) => b.esp && (!names || names.includes(b.name))).map((b) => [b.esp!.spi, b.esp!.encryption, b.esp!.integrity, b.esp!.icvLength, b.esp!.encryptionKey.toString('hex'), b.esp!.integrityKey.toString('hex'), b.esn, b.sequence.high]);
    const exported = ['b-to-a', 'a-to-b', 'host-cbc', 'v6-ah-esp', 'inner-transport'];
    const orig = [...sig(doc, exported), ...doc.events.flatMap((e) => (e.kind === 'add' ? [[e.bundle.esp!.spi, e.bundle.esp!.encryption, e.bundle.esp!.integrity, e.bundle.esp!.icvLength, e.bundle.esp!.encryptionKey.toString('hex'), '', false, 0]] : []))];
    // inner-transport has no addresses: exported once per family (4 and 6), imported once.
    const backSig = sig(back).filter((s, i, all) => all.findIndex((t) => t[0] === s[0]) === i);
    assert.deepEqual(backSig, orig);
  });

  it('tshark decrypts and verifies fixtures/sa/export/esp.pcap with exportTsharkArgs', { skip: !existsSync('/usr/bin/tshark') && 'tshark not installed' }, () => {
    const doc = loadSaFile(join(FIX, 'export/sas.yaml'));
    const out = execFileSync('tshark', ['-n', '-r', join(FIX, 'export/esp.pcap'), ...exportTsharkArgs(doc), '-T', 'fields', '-e', 'esp.spi', '-e', 'esp.icv_good', '-e', 'udp.payload', '-E', 'occurrence=l'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const rows = out.trim().split('\n').map((l) => l.split('\t'));
    assert.deepEqual(rows.map((r) => [r[0], r[1]]), [['0x0000c001', '1'], ['0x00001001', '1'], ['0x00002001', '1'], ['0x00003001', '1'], ['0x00004001', '1']]);
    for (const r of rows) assert.match(Buffer.from(r[2], 'hex').toString('latin1'), /^ipsecov2 export test /);
  });

  it('the exported file works as a profile esp_sa file', { skip: !existsSync('/usr/bin/tshark') && 'tshark not installed' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-ws-'));
    const profile = join(dir, 'profiles', 'ipsecov2');
    execFileSync('mkdir', ['-p', profile]);
    writeFileSync(join(profile, 'esp_sa'), exportSa(loadSaFile(join(FIX, 'export/sas.yaml')), 'wireshark'));
    const out = execFileSync('tshark', ['-n', '-C', 'ipsecov2', '-r', join(FIX, 'export/esp.pcap'), '-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE', '-T', 'fields', '-e', 'esp.icv_good'], { encoding: 'utf8', env: { ...process.env, WIRESHARK_CONFIG_DIR: dir, XDG_CONFIG_HOME: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.deepEqual(out.trim().split('\n'), ['1', '1', '1', '1', '1']);
  });
});

describe('sa CLI functions and secret hygiene', () => {
  const docs = ['examples/full.yaml', 'examples/ndis-capacity.yaml', 'examples/basic.json', 'export/sas.yaml'].map((f) => loadSaFile(join(FIX, f)));

  it('sa check: table, offload reasons, fingerprints, warnings; exit codes', async () => {
    const io = collect();
    assert.equal(await saCheck(join(FIX, 'examples/ndis-capacity.yaml'), { io }), 0);
    assert.match(io.out, /handle\s+name\s+dir\s+mode\s+proto\s+SPI\s+algorithms\s+keys\s+ESN\s+window\s+NIC/);
    assert.match(io.out, /3\s+ctr\s+inbound\s+auto\s+ESP\s+esp 0x00001003\s+aes-ctr-128\+hmac-sha256-128\s+enc 20B sha256:[0-9a-f]{8}, int 32B sha256:[0-9a-f]{8}\s+no\s+64\s+NOT offloaded: encryption aes-ctr-128 not in the NIC profile \(ndis\)/);
    assert.match(io.out, /4\s+four\s+.*NOT offloaded: saCapacity 2 reached/);
    assert.ok(io.out.includes(`sha256:${fingerprint(Buffer.from('000102030405060708090a0b0c0d0e0f01020304', 'hex'))}`));
    const bad = collect();
    assert.equal(await saCheck(join(FIX, 'invalid/missing-salt.yaml'), { io: bad }), 1);
    assert.equal(bad.err, `${join(FIX, 'invalid/missing-salt.yaml')}:8:22: sas[0].esp.encryptionKey: 20 bytes expected (16 key + 4 salt), got 16 — the 4-byte salt is missing?\n`);
    const missing = collect();
    assert.equal(await saCheck(join(FIX, 'nope.yaml'), { io: missing }), 1);
    assert.match(missing.err, /nope\.yaml: cannot read the SA file \(no such file\)/);
  });

  it('caps: --nic, --sa, --json, usage errors', async () => {
    const io = collect();
    assert.equal(await caps({ nic: 'ndis', io }), 0);
    assert.match(io.out, /EncryptionAlgorithms\s+0x000001ff/);
    const j = collect();
    assert.equal(await caps({ sa: join(FIX, 'examples/ndis-capacity.yaml'), json: true, io: j }), 0);
    assert.equal(JSON.parse(j.out).NDIS_IPSEC_OFFLOAD_V2.UdpEsp, 1);
    assert.equal(JSON.parse(j.out).NDIS_IPSEC_OFFLOAD_V2.SaOffloadCapacity, 2);
    const u = collect();
    assert.equal(await caps({ nic: 'fulll', io: u }), 2);
    assert.match(u.err, /unknown NIC profile "fulll" \(did you mean "full"\?\)/);
    assert.equal(await caps({ nic: 'full', sa: 'x', io: collect() }), 2);
  });

  it('sa import -w writes a private file that loads; sa export to stdout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-imp-'));
    const out = join(dir, 'sas.yaml');
    const io = collect();
    assert.equal(await saImport('strongswan', join(FIX, 'import/strongswan-esp_sa.txt'), out, { io }), 0);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(loadSaFile(out).bundles.length, 7);
    assert.match(io.err, /^warning: .*assumed 8/);
    assert.equal(await saImport('ipsec', 'x', undefined, { io: collect() }), 2);
    const ex = collect();
    assert.equal(await saExport(join(FIX, 'export/sas.yaml'), 'wireshark', undefined, { io: ex }), 0);
    assert.match(ex.out, /"IPv4","192\.0\.2\.2","192\.0\.2\.1","0x0000c001","AES-GCM with 16 octet ICV \[RFC4106\]"/);
    assert.match(ex.err, /warning: bundle "gmac-only" \(handle 6\): aes-gmac-128 has no Wireshark equivalent; skipped/);
  });

  it('no key hex in sa check, caps or any error message', async () => {
    const keys = docs.flatMap(keyHexes);
    assert.ok(keys.length > 20);
    const texts = [...docs.map(formatSaCheck), formatCaps(nicProfile('full'), false), formatCaps(docs[0].nic, true)];
    for (const f of ['invalid/missing-salt.yaml', 'invalid/many-errors.yaml', 'invalid/bad-syntax.json', 'invalid/unknown-key.json', 'invalid/duplicate-spi.yaml']) {
      try {
        loadSaFile(join(FIX, f));
      } catch (e) {
        assert.ok(e instanceof SaFileError);
        texts.push(e.message, ...e.diagnostics.map((d) => d.message));
      }
    }
    const io = collect();
    await saCheck(join(FIX, 'examples/full.yaml'), { io, json: true });
    texts.push(io.out, io.err);
    // Also keys from the invalid files themselves (as hex, case-insensitive).
    const invalidKeys = ['000102030405060708090a0b0c0d0e0f', '0102030405060708090a0b0c0d0e0f1011121314', '000102030405060708090a0b0c0d0e0f11223344'];
    for (const t of texts) {
      const flat = t.toLowerCase().replace(/[\s:]/g, '');
      for (const k of [...keys, ...invalidKeys]) assert.ok(!flat.includes(k.slice(0, 16)), `key material (${k.slice(0, 4)}...) found in output:\n${t.slice(0, 300)}`);
    }
  });
});
