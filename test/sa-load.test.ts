/**
 * SA file loader: valid files (YAML and JSON), defaults, every error class with its exact
 * message (file, path, line:col), multiple errors at once, key sources, permission warnings.
 */

import { strict as assert } from 'node:assert';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SaFileError, formatDiagnostic, loadSaFile, parseSaText } from '../src/sa/load.js';
import type { SaDocument } from '../src/sa/model.js';

const FIX = fileURLToPath(new URL('../../fixtures/sa/', import.meta.url));
const GCM128 = '000102030405060708090a0b0c0d0e0f11223344';
const SHA1 = '0102030405060708090a0b0c0d0e0f1011121314';

/** The error lines of parsing `text` (fails the test if it loads). */
function errors(text: string, file = 't.yaml'): string[] {
  try {
    parseSaText(text, file, { env: {} });
  } catch (e) {
    assert.ok(e instanceof SaFileError, String(e));
    assert.equal(e.code, 'ERR_SA_FILE');
    return e.message.split('\n');
  }
  assert.fail('expected SaFileError');
}

function load(text: string, file = 't.yaml', env: NodeJS.ProcessEnv = {}): SaDocument {
  return parseSaText(text, file, { env });
}

/** A one-SA YAML file with the given esp: lines (indented by the caller's template). */
function espFile(esp: string, extra = ''): string {
  return `version: 1\nsas:\n  - name: x\n${extra}    esp:\n${esp}`;
}

describe('sa load: valid files', () => {
  it('full.yaml: every feature, defaults, icvLength from the algorithm', () => {
    const doc = loadSaFile(join(FIX, 'examples/full.yaml'));
    assert.equal(doc.nic.profile, 'full');
    assert.equal(doc.nic.saCapacity, 16);
    assert.deepEqual(doc.bundles.map((b) => [b.handle, b.name]), [[1, 'b-to-a'], [2, 'a-to-b'], [3, 'host-cbc'], [4, 'v6-ah-esp'], [5, 'natt-gmac'], [6, 'inner-transport']]);
    const [bta, atb, cbc, v6, natt, inner] = doc.bundles;
    assert.equal(bta.direction, 'inbound');
    assert.equal(bta.mode, 'tunnel');
    assert.equal(bta.esp!.spi, 0xc001);
    assert.equal(bta.esp!.encryptionKey.toString('hex'), '000102030405060708090a0b0c0d0e0f11223344');
    assert.equal(bta.esp!.icvLength, 16);
    assert.equal(bta.esn, true);
    assert.equal(bta.replayWindow, 128);
    assert.equal(bta.selector.src!.len, 16);
    assert.equal(bta.tunnel!.dst.toString('hex'), 'c0000201');
    assert.equal(atb.direction, 'outbound');
    assert.deepEqual(atb.sequence, { next: 1, high: 0 });
    assert.equal(cbc.esp!.icvLength, 12);
    assert.equal(cbc.selector.protocol, 6);
    assert.equal(cbc.selector.dstPort, 443);
    assert.equal(cbc.replayWindow, 64);
    assert.deepEqual(cbc.lifetime, { packets: 1000000, bytes: null });
    assert.equal(cbc.esp!.encryptionKey.toString('hex'), '00112233445566778899aabbccddeeff');
    assert.equal(v6.ah!.icvLength, 16);
    assert.equal(v6.esp!.icvLength, 16);
    assert.equal(v6.selector.src!.family, 6);
    assert.equal(natt.udpEncapsulation!.type, 'tunnel');
    assert.equal(natt.esp!.encryption, 'null');
    assert.equal(natt.esp!.integrity, 'aes-gmac-128');
    assert.equal(natt.esp!.spi, 3000);
    assert.equal(natt.replayWindow, 0);
    assert.equal(inner.over, 'b-to-a');
    assert.ok(doc.bundles.every((b) => b.offloaded));
    assert.equal(doc.events.length, 4);
    const add = doc.events[2];
    assert.ok(add.kind === 'add');
    assert.equal(add.bundle.handle, 7);
    assert.equal(add.bundle.name, 'b-to-a-2');
    const t = doc.events[3];
    assert.ok('time' in t.at);
    assert.equal(t.at.ns, 1_795_255_200_500_000_000n);
  });

  it('basic.json: JSON loads the same way, with its line:col for problems', () => {
    const doc = loadSaFile(join(FIX, 'examples/basic.json'));
    assert.equal(doc.nic.profile, 'ndis');
    assert.equal(doc.bundles[0].esp!.icvLength, 12);
    assert.equal(doc.bundles[1].esp!.spi, 4097);
    assert.equal(doc.bundles[1].mode, 'transport');
    assert.equal(doc.bundles[0].selector.dst!.len, 32);
  });

  it('defaults: handle = position, name sa<handle>, inbound, window 64, sequence 1/0, GCM ICV 16, profile full', () => {
    const doc = load(espFile(`      spi: 0x1001\n      encryption: aes-gcm-256\n      encryptionKey: ${'00'.repeat(36)}\n`).replace('  - name: x\n', '  - handle: 7\n') + `  - esp: { spi: 4098, integrity: hmac-sha1-96, integrityKey: "${SHA1}" }\n`);
    const [a, b] = doc.bundles;
    assert.equal(a.handle, 7);
    assert.equal(a.name, 'sa7');
    assert.equal(b.handle, 2);
    assert.equal(b.name, 'sa2');
    assert.equal(a.direction, 'inbound');
    assert.equal(a.mode, null);
    assert.equal(a.replayWindow, 64);
    assert.deepEqual(a.sequence, { next: 1, high: 0 });
    assert.equal(a.esp!.icvLength, 16);
    assert.equal(a.esp!.encryptionKey.length, 36, 'a bare 0x-less all-zero hex key is read as written, not as a YAML number');
    assert.equal(b.esp!.encryption, 'null');
    assert.equal(doc.nic.profile, 'full');
  });

  it('bare YAML 0x... keys (YAML integers) keep every digit', () => {
    const doc = load(espFile(`      spi: 0x0000c001\n      encryption: aes-gcm-128\n      encryptionKey: 0x${GCM128}\n`));
    assert.equal(doc.bundles[0].esp!.encryptionKey.toString('hex'), GCM128);
  });

  it('hex with spaces and colons; "none" is the NULL cipher', () => {
    const doc = load(espFile(`      spi: 4097\n      encryption: none\n      integrity: hmac-sha1-96\n      integrityKey: "01:02:03:04 05060708090a0b0c0d0e0f1011121314"\n`));
    assert.equal(doc.bundles[0].esp!.encryption, 'null');
    assert.equal(doc.bundles[0].esp!.integrityKey.toString('hex'), SHA1);
  });

  it('warnings: encryption without integrity, MUST NOT algorithms, missing version', () => {
    const doc = load(`sas:\n  - esp: { spi: 4097, encryption: des-cbc, encryptionKey: "0001020304050607" }\n  - ah: { spi: 4098, integrity: hmac-md5-96, integrityKey: "000102030405060708090a0b0c0d0e0f" }\n`);
    const w = doc.warnings.map(formatDiagnostic);
    assert.deepEqual(w, [
      't.yaml:1:1: warning: version: version missing; assuming version: 1',
      't.yaml:2:10: warning: sas[0].esp: encryption des-cbc without integrity: packets are not authenticated (RFC 8221 forbids this outside tests)',
      't.yaml:2:35: warning: sas[0].esp.encryption: des-cbc is MUST NOT in RFC 8221; loaded for old captures only',
      't.yaml:3:33: warning: sas[1].ah.integrity: hmac-md5-96 is MUST NOT in RFC 8221; loaded for old captures only',
    ]);
  });
});

describe('sa load: errors', () => {
  it('missing GCM salt: the exact message with file, path and line:col', () => {
    assert.deepEqual(errors(espFile(`      spi: 0x0000c001\n      encryption: aes-gcm-128\n      encryptionKey: "0x000102030405060708090a0b0c0d0e0f"\n`), 'sas.yaml'), [
      'sas.yaml:7:22: sas[0].esp.encryptionKey: 20 bytes expected (16 key + 4 salt), got 16 — the 4-byte salt is missing?',
    ]);
  });

  it('key sizes: GMAC salt, CBC size hint, HMAC key length', () => {
    assert.deepEqual(errors(espFile(`      spi: 4097\n      integrity: aes-gmac-256\n      integrityKey: "${'00'.repeat(32)}"\n`)), [
      't.yaml:7:21: sas[0].esp.integrityKey: 36 bytes expected (32 key + 4 salt), got 32 — the 4-byte salt is missing?',
    ]);
    assert.deepEqual(errors(espFile(`      spi: 4097\n      encryption: aes-cbc-128\n      encryptionKey: "${'00'.repeat(24)}"\n      integrity: hmac-sha1-96\n      integrityKey: "${'00'.repeat(16)}"\n`)), [
      't.yaml:7:22: sas[0].esp.encryptionKey: 16 bytes expected for aes-cbc-128, got 24 — did you mean aes-cbc-192?',
      't.yaml:9:21: sas[0].esp.integrityKey: 20 bytes expected for hmac-sha1-96, got 16',
    ]);
  });

  it('integrity with a combined-mode cipher; GCM icvLength not 8/12/16', () => {
    assert.deepEqual(errors(espFile(`      spi: 4097\n      encryption: aes-gcm-128\n      encryptionKey: "${GCM128}"\n      integrity: hmac-sha1-96\n      icvLength: 128\n`)), [
      't.yaml:8:18: sas[0].esp.integrity: integrity must be none for combined-mode encryption aes-gcm-128 (it carries its own ICV)',
      't.yaml:9:18: sas[0].esp.icvLength: icvLength 128 is not allowed for aes-gcm-128: 8 | 12 | 16 (icvLength is in bytes: 128 bits = 16)',
    ]);
  });

  it('SPI 0..255 reserved, SPI as decimal string', () => {
    assert.deepEqual(errors(espFile(`      spi: 255\n      integrity: hmac-sha1-96\n      integrityKey: "${SHA1}"\n`)), [
      't.yaml:5:12: sas[0].esp.spi: SPI 0x000000ff is reserved: 0 and 1..255 are not usable SPIs (RFC 4303 §2.1)',
    ]);
    assert.deepEqual(errors(espFile(`      spi: "4097"\n      integrity: hmac-sha1-96\n      integrityKey: "${SHA1}"\n`)), [
      't.yaml:5:12: sas[0].esp.spi: "4097": an SPI is an integer or a hex string with 0x ("0x0000c001")',
    ]);
  });

  it('duplicate SPI + destination among inbound SAs of one protocol', () => {
    assert.deepEqual(errors('', 'x').length, 1);
    const e = (() => {
      try {
        loadSaFile(join(FIX, 'invalid/duplicate-spi.yaml'));
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    assert.equal(e, `${join(FIX, 'invalid/duplicate-spi.yaml')}:11:10: sas[1].esp.spi: duplicate inbound ESP SPI 0x00001001 for the same destination as sas[0] ("a")`);
    // Different destinations, or one outbound: fine.
    load(`version: 1\nsas:\n  - { mode: tunnel, tunnel: { src: 192.0.2.2, dst: 192.0.2.1 }, esp: { spi: 4097, encryption: aes-gcm-128, encryptionKey: "${GCM128}" } }\n  - { mode: tunnel, tunnel: { src: 192.0.2.2, dst: 192.0.2.9 }, esp: { spi: 4097, encryption: aes-gcm-128, encryptionKey: "${GCM128}" } }\n  - { direction: outbound, mode: tunnel, tunnel: { src: 192.0.2.2, dst: 192.0.2.1 }, esp: { spi: 4097, encryption: aes-gcm-128, encryptionKey: "${GCM128}" } }\n`);
  });

  it('tunnel mode without endpoints, over naming a non-tunnel, outbound without mode, bad replay window', () => {
    const ok = `esp: { spi: 4097, encryption: aes-gcm-128, encryptionKey: "${GCM128}" }`;
    assert.deepEqual(errors(`version: 1\nsas:\n  - name: t\n    mode: tunnel\n    ${ok}\n  - name: u\n    mode: transport\n    over: v\n    ${ok.replace('4097', '4098')}\n  - name: v\n    mode: transport\n    ${ok.replace('4097', '4099')}\n  - name: w\n    direction: outbound\n    replayWindow: 5000\n    ${ok.replace('4097', '4100')}\n`), [
      't.yaml:4:11: sas[0].tunnel: tunnel mode needs tunnel: { src, dst } (the outer header endpoints)',
      't.yaml:8:11: sas[1].over: "v" is not a tunnel bundle (mode transport); over: must name a mode: tunnel bundle',
      't.yaml:13:5: sas[3].mode: outbound bundles need mode: transport or tunnel (tx builds the packet)',
      't.yaml:15:19: sas[3].replayWindow: 5000 is not allowed: 0 (anti-replay off) or 32..4096',
    ]);
  });

  it('unknown keys with "did you mean", unknown algorithm, bad selector values', () => {
    assert.deepEqual(errors(`version: 1\nsas:\n  - name: a\n    replayWindw: 64\n    selector: { src: 10.0.0.0/33, protocol: tpc, dstPort: 70000 }\n    esp: { spi: 4097, encryption: aes-128-gcm, encryptionKey: "${GCM128}" }\n`), [
      't.yaml:4:5: sas[0].replayWindw: unknown key "replayWindw" (did you mean "replayWindow"?); allowed here: name, handle, direction, mode, over, selector, tunnel, udpEncapsulation, esn, replayWindow, sequence, lifetime, esp, ah',
      't.yaml:5:22: sas[0].selector.src: prefix length "/33" must be 0..32 for IPv4',
      't.yaml:5:45: sas[0].selector.protocol: "tpc" is not a protocol: any | tcp | udp | icmp | icmpv6 | 0..255 (did you mean "tcp"?)',
      't.yaml:5:59: sas[0].selector.dstPort: 70000 is out of range 0..65535',
      't.yaml:6:35: sas[0].esp.encryption: unknown algorithm "aes-128-gcm" (did you mean "aes-gcm-128"?); known: null, des-cbc, 3des-cbc, aes-gcm-128, aes-gcm-192, aes-gcm-256, aes-cbc-128, aes-cbc-192, aes-cbc-256, aes-ctr-128, aes-ctr-192, aes-ctr-256, chacha20-poly1305',
    ]);
  });

  it('many errors in one file are all reported, sorted by line', () => {
    try {
      loadSaFile(join(FIX, 'invalid/many-errors.yaml'));
      assert.fail('loaded');
    } catch (e) {
      const lines = (e as SaFileError).message.split('\n');
      assert.equal(lines.length, 11);
      assert.match(lines[0], /many-errors\.yaml:4:3: nic\.profil: unknown key "profil" \(did you mean "profile"\?\)/);
      assert.match(lines[10], /many-errors\.yaml:22:22: sas\[1\]\.esp\.encryptionKey: 16 bytes expected for aes-cbc-128, got 32 — did you mean aes-cbc-256\?/);
      const lineNos = lines.map((l) => Number(/\.yaml:(\d+):/.exec(l)![1]));
      assert.deepEqual(lineNos, [...lineNos].sort((a, b) => a - b));
      assert.ok((e as SaFileError).diagnostics.every((d) => d.file.endsWith('many-errors.yaml')));
    }
  });

  it('JSON: syntax error position without echoing the text; unknown keys with line:col', () => {
    const f = join(FIX, 'invalid/bad-syntax.json');
    assert.throws(() => loadSaFile(f), { message: `${f}:4:136: JSON syntax error: a key (trailing comma?) expected, found '}'` });
    const u = join(FIX, 'invalid/unknown-key.json');
    assert.throws(() => loadSaFile(u), (e: Error) => e.message.split('\n')[0] === `${u}:4:20: sas[0].replay_window: unknown key "replay_window" (did you mean "replayWindow"?); allowed here: name, handle, direction, mode, over, selector, tunnel, udpEncapsulation, esn, replayWindow, sequence, lifetime, esp, ah`);
    const cut = errors('{"version": 1, "sas": [ {"esp": {"spi": 4097, "encryption": "aes-gcm-128", "encryptionKey": "00"}} ] ', 'x.json');
    assert.deepEqual(cut, ["x.json:1:102: JSON syntax error: ',' or '}' after a property value expected, found end of input"]);
  });

  it('YAML syntax errors and duplicate keys', () => {
    assert.deepEqual(errors('version: 1\nsas:\n  - name: a\n    name: b\n'), ['t.yaml:4:5: YAML: Map keys must be unique']);
    const unclosed = errors('version: 1\nsas: [ {a: 1\n');
    assert.ok(unclosed.length >= 1 && unclosed.every((l) => /^t\.yaml:\d+:\d+: YAML: /.test(l)), unclosed.join('\n'));
  });

  it('duplicate handles and names, unknown event targets are warnings', () => {
    const e = `esp: { spi: SPI, integrity: hmac-sha1-96, integrityKey: "${SHA1}" }`;
    assert.deepEqual(errors(`version: 1\nsas:\n  - { name: a, ${e.replace('SPI', '4097')} }\n  - { name: a, handle: 1, ${e.replace('SPI', '4098')} }\n`), [
      't.yaml:4:13: sas[1].name: name "a" is already used by sas[0]',
      't.yaml:4:24: sas[1].handle: handle 1 is already used by sas[0] ("a")',
    ]);
    const doc = load(`version: 1\nsas:\n  - { name: a, ${e.replace('SPI', '4097')} }\nevents:\n  - at: { frame: 3 }\n    delete: { sa: nope }\n`);
    assert.deepEqual(doc.warnings.map(formatDiagnostic), ['t.yaml:5:5: warning: events[0].delete: no bundle named "nope"; the DELETE_SA will fail (NDIS_STATUS_INVALID_PARAMETER)']);
  });

  it('event syntax: at needs frame or time, one action per event', () => {
    const e = `esp: { spi: 4097, integrity: hmac-sha1-96, integrityKey: "${SHA1}" }`;
    assert.deepEqual(errors(`version: 1\nsas:\n  - { name: a, ${e} }\nevents:\n  - at: { frame: 1, time: "2026-01-01T00:00:00Z" }\n    delete: { sa: a }\n  - at: { time: "yesterday" }\n    delete: { sa: a }\n  - at: { frame: 2 }\n    delete: { sa: a }\n    update: { sa: a, high: 1 }\n`), [
      't.yaml:5:9: events[0].at: at: needs exactly one of frame: or time:',
      't.yaml:7:17: events[1].at.time: "yesterday" is not an RFC 3339 time such as "2026-11-21T10:00:00.5Z" (quote it in YAML)',
      't.yaml:9:5: events[2]: one event does one thing; found update and delete (write separate events)',
    ]);
  });
});

describe('sa load: key sources and file permissions', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ipsecov2-sa-'));
  mkdirSync(join(dir, 'keys'));

  it('{ env: NAME } and { file: PATH } (relative to the SA file), with mode checks', () => {
    const sa = join(dir, 'sas.yaml');
    copyFileSync(join(FIX, 'examples/key-sources.yaml'), sa);
    writeFileSync(join(dir, 'keys/gcm128.hex'), '00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\n11223344\n', { mode: 0o644 });
    chmodSync(join(dir, 'keys/gcm128.hex'), 0o644);
    chmodSync(sa, 0o600);
    const env = { IPSECOV2_TEST_ENC_KEY: '0x000102030405060708090a0b0c0d0e0f', IPSECOV2_TEST_INT_KEY: '11'.repeat(32) };
    const doc = loadSaFile(sa, { env });
    assert.equal(doc.bundles[0].esp!.encryptionKey.toString('hex'), '000102030405060708090a0b0c0d0e0f');
    assert.equal(doc.bundles[0].esp!.integrityKey.toString('hex'), '11'.repeat(32));
    assert.equal(doc.bundles[1].esp!.encryptionKey.toString('hex'), GCM128);
    const w = doc.warnings.map(formatDiagnostic);
    assert.equal(w.length, 1);
    assert.match(w[0], /sas\.yaml:16:30: warning: sas\[1\]\.esp\.encryptionKey\.file: .*keys\/gcm128\.hex: readable by group\/others \(mode 0644\); chmod 600 .*keys\/gcm128\.hex$/);
    chmodSync(join(dir, 'keys/gcm128.hex'), 0o600);
    chmodSync(sa, 0o644);
    assert.deepEqual(loadSaFile(sa, { env }).warnings.map(formatDiagnostic), [`${sa}: warning: readable by group/others (mode 0644); chmod 600 ${sa}`]);
  });

  it('missing env variable, missing key file, non-hex key file: errors without key material', () => {
    const sa = join(dir, 'bad.yaml');
    writeFileSync(sa, `version: 1\nsas:\n  - esp: { spi: 4097, encryption: aes-cbc-128, encryptionKey: { env: NOPE_KEY }, integrity: hmac-sha1-96, integrityKey: { file: keys/none.hex } }\n  - esp: { spi: 4098, encryption: aes-gcm-128, encryptionKey: { file: keys/bad.hex } }\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'keys/bad.hex'), 'secretsecretsecret0011', { mode: 0o600 });
    assert.throws(() => loadSaFile(sa, { env: {} }), {
      message: [
        `${sa}:3:70: sas[0].esp.encryptionKey.env: environment variable NOPE_KEY is not set`,
        `${sa}:3:129: sas[0].esp.integrityKey.file: cannot read key file keys/none.hex (no such file)`,
        `${sa}:4:71: sas[1].esp.encryptionKey.file: key file keys/bad.hex: not hex: non-hex character at position 1 (keys are hex: "0x0011...", spaces and colons allowed) (key files hold hex text, e.g. written by \`xxd -p\`)`,
      ].join('\n'),
    });
  });

  it('a key in the wrong place is described, never shown', () => {
    const lines = errors(`version: 1\nsas:\n  - esp: { spi: 4097, encryption: "${GCM128}ff", integrity: hmac-sha1-96, integrityKey: "${SHA1}" }\n`);
    assert.equal(lines.length, 1);
    assert.ok(!lines[0].includes(GCM128), lines[0]);
    assert.match(lines[0], /unknown algorithm a hex string of 42 characters/);
  });
});
