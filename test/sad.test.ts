/**
 * The inbound SAD (src/offload/sad.ts): most specific match ({SPI,dst,src} > {SPI,dst} > {SPI},
 * inbound over outbound), and the remembered last IPv4 answer per protocol, which must never
 * give an answer the full search would not (other addresses, other SPI, other protocol, after
 * a rebuild).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BundleState, Sad } from '../src/offload/sad.js';
import { parseSaText } from '../src/sa/load.js';

const KEY = '00112233445566778899aabbccddeeff';

function states(yaml: string): BundleState[] {
  const doc = parseSaText(yaml, 'test.yaml');
  return doc.bundles.map((b, i) => new BundleState(b, i, null));
}

const ESP = (spi: number): string => `esp: { spi: ${spi}, encryption: aes-gcm-128, encryptionKey: "${KEY}00000000" }`;

/** name, direction, selector (or null), the ESP/AH line */
const SAS = `version: 1
sas:
${([
  ['any', 'inbound', null, ESP(0x100)],
  ['net', 'inbound', '{ dst: 10.0.0.0/8 }', ESP(0x100)],
  ['host', 'inbound', '{ dst: 10.1.2.3/32, src: 192.0.2.0/24 }', ESP(0x100)],
  ['out', 'outbound', '{ dst: 10.1.2.3/32, src: 192.0.2.0/24 }', ESP(0x200)],
  ['ah', 'inbound', '{ dst: 10.1.2.3/32 }', `ah: { spi: 0x100, integrity: hmac-sha256-128, integrityKey: "${KEY}${KEY}" }`],
  ['v6', 'inbound', '{ dst: "2001:db8::/32" }', ESP(0x100)],
] as const).map(([name, dir, sel, ipsec]) => `  - name: ${name}\n    direction: ${dir}\n    mode: transport\n${sel ? `    selector: ${sel}\n` : ''}    ${ipsec}\n`).join('')}`;

/** An IPv4 source and destination in one buffer: src at 0, dst at 4. */
function v4(src: string, dst: string): Buffer {
  return Buffer.from([...src.split('.').map(Number), ...dst.split('.').map(Number)]);
}

function name(s: BundleState | null): string | null {
  return s === null ? null : s.bundle.name;
}

describe('inbound SAD lookup', () => {
  const all = states(SAS);

  it('most specific match, inbound only unless any-direction; the same answers asked again in any order', () => {
    const sad = new Sad();
    sad.rebuild(all, false);
    const cases: [boolean, number, string, string, string | null][] = [
      [false, 0x100, '192.0.2.9', '10.1.2.3', 'host'],
      [false, 0x100, '198.51.100.1', '10.1.2.3', 'net'],
      [false, 0x100, '192.0.2.9', '10.9.9.9', 'net'],
      [false, 0x100, '192.0.2.9', '172.16.0.1', 'any'],
      [false, 0x200, '192.0.2.9', '10.1.2.3', null],
      [true, 0x100, '192.0.2.9', '10.1.2.3', 'ah'],
      [true, 0x100, '192.0.2.9', '10.1.2.4', null],
      [false, 0x101, '192.0.2.9', '10.1.2.3', null],
    ];
    // each case after each other case: a remembered answer never leaks into another key
    for (const a of cases) {
      for (const b of [...cases, a, a]) {
        for (const [isAh, spi, src, dst, want] of [a, b]) {
          const d = v4(src, dst);
          assert.equal(name(sad.lookup(isAh, spi, d, 4, 0, 4)), want, `${isAh ? 'AH' : 'ESP'} ${spi} ${src} -> ${dst}`);
        }
      }
    }
  });

  it('addresses at any offset, IPv6 through the full search', () => {
    const sad = new Sad();
    sad.rebuild(all, false);
    const d = Buffer.concat([Buffer.alloc(3, 0xee), v4('192.0.2.1', '10.1.2.3')]);
    assert.equal(name(sad.lookup(false, 0x100, d, 7, 3, 4)), 'host');
    d[9] = 4; // dst 10.1.4.3
    assert.equal(name(sad.lookup(false, 0x100, d, 7, 3, 4)), 'net');
    const six = Buffer.alloc(32);
    six.set([0x20, 0x01, 0x0d, 0xb8], 16);
    assert.equal(name(sad.lookup(false, 0x100, six, 16, 0, 16)), 'v6');
    six[17] = 0x02;
    assert.equal(name(sad.lookup(false, 0x100, six, 16, 0, 16)), 'any');
  });

  it('a rebuild forgets the remembered answers', () => {
    const sad = new Sad();
    sad.rebuild(all, false);
    const d = v4('192.0.2.9', '10.1.2.3');
    assert.equal(name(sad.lookup(false, 0x200, d, 4, 0, 4)), null);
    assert.equal(name(sad.lookup(false, 0x100, d, 4, 0, 4)), 'host');
    assert.equal(name(sad.lookup(true, 0x100, d, 4, 0, 4)), 'ah');
    sad.rebuild(all, true);
    assert.equal(name(sad.lookup(false, 0x200, d, 4, 0, 4)), 'out');
    sad.rebuild(all.filter((s) => s.bundle.name !== 'host' && s.bundle.name !== 'ah'), true);
    assert.equal(name(sad.lookup(false, 0x100, d, 4, 0, 4)), 'net');
    assert.equal(name(sad.lookup(true, 0x100, d, 4, 0, 4)), null);
    sad.rebuild([], false);
    assert.equal(name(sad.lookup(false, 0x100, d, 4, 0, 4)), null);
  });
});
