/**
 * Known-answer tests for the crypto layer. Every vector file under test/vectors/ names its source
 * and section; see each file's "source" field.
 */
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createAhTransform } from '../src/crypto/ah.js';
import { Des } from '../src/crypto/des.js';
import { createEspTransform, desBackend, type EspImplOptions } from '../src/crypto/esp.js';
import { TruncatedHmac } from '../src/crypto/hmac.js';
import { OpenResult } from '../src/crypto/types.js';
import { gcmEncrypt } from './misc/gcm-ref.js';

// dist/test/x.js -> ../../test/vectors
const VEC = new URL('../../test/vectors/', import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const load = (name: string): any => JSON.parse(readFileSync(new URL(name, VEC), 'utf8'));
const h = (s: string) => Buffer.from(s, 'hex');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const NONE = new Uint8Array(0);

/** RFC 4303 §2.4/§2.5 trailer check: default padding bytes 1, 2, 3, …, then padLen, nextHeader. */
function trailer(pt: Uint8Array): { padLen: number; nextHeader: number; payloadLen: number } {
  const padLen = pt[pt.length - 2]!;
  const nextHeader = pt[pt.length - 1]!;
  const payloadLen = pt.length - 2 - padLen;
  assert.ok(payloadLen >= 0, 'pad length larger than the plaintext');
  for (let i = 0; i < padLen; i++) assert.equal(pt[payloadLen + i], i + 1, `padding byte ${i}`);
  return { padLen, nextHeader, payloadLen };
}

const DES_IMPLS: EspImplOptions[] = desBackend() === 'openssl' ? [{ des: 'js' }, { des: 'openssl' }] : [{ des: 'js' }];
const CBC_IMPLS: EspImplOptions[] = [{ cbc: 'ecb' }, { cbc: 'evp' }];

describe('RFC 3602 §4 AES-CBC', () => {
  const v = load('rfc3602-aes-cbc.json');
  for (const impl of CBC_IMPLS) {
    for (const c of v.raw) {
      it(`case #${c.case} raw CBC via an encryption-only ESP frame (cbc=${impl.cbc})`, () => {
        const t = createEspTransform({ encryption: 'aes-cbc-128', encryptionKey: h(c.key), integrity: 'none', integrityKey: NONE, icvLength: 0 }, impl);
        const pkt = Buffer.concat([Buffer.alloc(8), h(c.iv), h(c.ciphertext)]);
        assert.equal(t.open(pkt, 0, pkt.length, -1), OpenResult.Ok);
        assert.equal(hex(pkt.subarray(24)), c.plaintext);
        t.seal(pkt, 0, pkt.length, -1);
        assert.equal(hex(pkt.subarray(24)), c.ciphertext);
      });
    }
    for (const c of v.esp) {
      it(`case #${c.case} ESP ${c.mode} packet: open, trailer, re-seal (cbc=${impl.cbc})`, () => {
        const t = createEspTransform({ encryption: 'aes-cbc-128', encryptionKey: h(c.key), integrity: 'none', integrityKey: NONE, icvLength: 0 }, impl);
        const pkt = h(c.packet);
        assert.equal(hex(pkt.subarray(0, 4)), c.spi);
        assert.equal(pkt.readUInt32BE(4), c.seq);
        assert.equal(t.open(pkt, 0, pkt.length, -1), OpenResult.Ok);
        const pt = pkt.subarray(8 + 16);
        const tr = trailer(pt);
        assert.equal(tr.nextHeader, c.nextHeader);
        assert.equal(hex(pt.subarray(0, tr.payloadLen)), c.payload);
        t.seal(pkt, 0, pkt.length, -1);
        assert.equal(hex(pkt), c.packet);
      });
    }
  }
});

describe('draft-mcgrew-gcm-test-01 §4 AES-GCM ESP packets', () => {
  const v = load('gcm-esp-draft-mcgrew.json');
  for (const c of v.cases) {
    const p = { encryption: `aes-gcm-${c.keyBits}`, encryptionKey: Buffer.concat([h(c.key), h(c.salt)]), integrity: 'none', integrityKey: NONE, icvLength: 16 };
    it(`case ${c.n} (AES-${c.keyBits}, ${c.esn ? '64-bit ESN' : '32-bit'} seq): open`, () => {
      const t = createEspTransform(p);
      const pkt = h(c.packet);
      assert.equal(t.open(pkt, 0, pkt.length, c.seqHigh), OpenResult.Ok);
      assert.equal(hex(pkt.subarray(16, pkt.length - 16)), c.plaintext);
    });
    it(`case ${c.n}: seal reproduces the packet; reference GCM agrees`, () => {
      const t = createEspTransform(p);
      const pkt = h(c.packet);
      pkt.set(h(c.plaintext), 16);
      pkt.fill(0, pkt.length - 16);
      t.seal(pkt, 0, pkt.length, c.seqHigh);
      assert.equal(hex(pkt), c.packet);
      const r = gcmEncrypt(h(c.key), h(c.nonce), h(c.plaintext), h(c.aad));
      assert.equal(hex(r.ciphertext) + hex(r.tag), c.ciphertextTag);
    });
    if (c.esn) {
      it(`case ${c.n}: wrong ESN high bits fail authentication, bytes untouched`, () => {
        const t = createEspTransform(p);
        const pkt = h(c.packet);
        assert.equal(t.open(pkt, 0, pkt.length, (c.seqHigh + 1) >>> 0), OpenResult.AuthFailed);
        assert.equal(t.open(pkt, 0, pkt.length, -1), OpenResult.AuthFailed);
        assert.equal(hex(pkt), c.packet);
      });
    }
  }
});

describe('Linux ip-xfrm reference ESP packets (via Scapy ipsec.uts)', () => {
  const v = load('linux-xfrm-esp.json');
  for (const c of v.cases) {
    const impls = c.encryption === 'des-cbc' ? DES_IMPLS : c.encryption.includes('cbc') ? CBC_IMPLS : [{}];
    for (const impl of impls) {
      it(`${c.name} ${JSON.stringify(impl)}`, () => {
        const t = createEspTransform({ encryption: c.encryption, encryptionKey: h(c.encryptionKey), integrity: c.integrity, integrityKey: h(c.integrityKey), icvLength: c.icvLength }, impl);
        const pkt = h(c.packet);
        assert.equal(t.open(pkt, 0, pkt.length, c.seqHigh), OpenResult.Ok);
        const pt = pkt.subarray(8 + t.ivLen, pkt.length - t.icvLen);
        const tr = trailer(pt);
        assert.equal(tr.nextHeader, 4, 'tunnel mode: inner IPv4');
        assert.equal(pt[0], 0x45, 'inner IPv4 header');
        assert.equal(pt.readUInt16BE(2), tr.payloadLen, 'inner IPv4 total length = payload');
        assert.equal(pt[9], 1, 'inner protocol ICMP');
        t.seal(pkt, 0, pkt.length, c.seqHigh);
        assert.equal(hex(pkt), c.packet, 're-seal reproduces the kernel bytes');
        if (c.icvLength) {
          pkt[pkt.length - 1]! ^= 1;
          assert.equal(t.open(pkt, 0, pkt.length, c.seqHigh), OpenResult.AuthFailed);
        }
      });
    }
  }
});

describe('RFC 3686 §6 AES-CTR', () => {
  const v = load('rfc3686-aes-ctr.json');
  for (const impl of [{ ctr: 'ecb' }, { ctr: 'evp' }] as EspImplOptions[]) {
    for (const c of v.cases) {
      it(`test vector #${c.n} (ctr=${impl.ctr})`, () => {
        const bits = (c.key.length / 2) * 8;
        const t = createEspTransform({ encryption: `aes-ctr-${bits}`, encryptionKey: Buffer.concat([h(c.key), h(c.nonce)]), integrity: 'none', integrityKey: NONE, icvLength: 0 }, impl);
        const pkt = Buffer.concat([Buffer.alloc(8), h(c.iv), h(c.plaintext)]);
        t.seal(pkt, 0, pkt.length, -1);
        assert.equal(hex(pkt.subarray(16)), c.ciphertext);
        assert.equal(t.open(pkt, 0, pkt.length, -1), OpenResult.Ok);
        assert.equal(hex(pkt.subarray(16)), c.plaintext);
      });
    }
  }
});

describe('RFC 7634 Appendix A ChaCha20-Poly1305 ESP', () => {
  const c = load('rfc7634-chacha20-poly1305-esp.json').cases[0];
  const p = { encryption: 'chacha20-poly1305', encryptionKey: Buffer.concat([h(c.key), h(c.salt)]), integrity: 'none', integrityKey: NONE, icvLength: 16 };
  it('open gives the published plaintext; seal reproduces the packet', () => {
    const t = createEspTransform(p);
    const pkt = h(c.packet);
    assert.equal(t.open(pkt, 0, pkt.length, -1), OpenResult.Ok);
    assert.equal(hex(pkt.subarray(16, pkt.length - 16)), c.plaintext);
    pkt.fill(0, pkt.length - 16);
    t.seal(pkt, 0, pkt.length, -1);
    assert.equal(hex(pkt), c.packet);
  });
  it('a flipped tag bit fails, bytes untouched', () => {
    const t = createEspTransform(p);
    const pkt = h(c.packet);
    pkt[pkt.length - 3]! ^= 0x80;
    const before = hex(pkt);
    assert.equal(t.open(pkt, 0, pkt.length, -1), OpenResult.AuthFailed);
    assert.equal(hex(pkt), before);
  });
});

describe('HMAC known answers (RFC 2202, RFC 4231, RFC 4868)', () => {
  const r2202 = load('rfc2202-hmac.json');
  for (const hash of ['md5', 'sha1']) {
    for (const c of r2202[hash]) {
      it(`RFC 2202 HMAC-${hash} case ${c.n}`, () => {
        const full = new TruncatedHmac(hash, h(c.key), hash === 'md5' ? 16 : 20);
        assert.equal(hex(full.digestRange(h(c.data), 0, c.data.length / 2, -1)), c.mac);
        // The -96 variants as ESP/AH use them (RFC 2403 §2, RFC 2404 §2): the leftmost 12 bytes.
        const ah = createAhTransform({ integrity: hash === 'md5' ? 'hmac-md5-96' : 'hmac-sha1-96', integrityKey: h(c.key), icvLength: 12 });
        const out = new Uint8Array(12);
        const d = h(c.data);
        ah.compute([d.subarray(0, 3), d.subarray(3)], -1, null, out, 0);
        assert.equal(hex(out), c.mac.slice(0, 24));
        if (c.mac96) assert.equal(hex(out), c.mac96);
        assert.ok(ah.verify([d], -1, null, out));
      });
    }
  }
  const r4231 = load('rfc4231-hmac-sha2.json');
  for (const c of r4231.cases) {
    for (const [hash, len] of [['sha256', 32], ['sha384', 48], ['sha512', 64]] as const) {
      it(`RFC 4231 test case ${c.n} HMAC-${hash}`, () => {
        const icv = c.truncatedTo ?? len;
        const m = new TruncatedHmac(hash, h(c.key), icv);
        assert.equal(hex(m.digestRange(h(c.data), 0, c.data.length / 2, -1).subarray(0, icv)), c[hash]);
      });
    }
  }
  const r4868 = load('rfc4868-hmac-auth.json');
  for (const c of r4868.cases) {
    it(`RFC 4868 ${c.id}: ICV = leftmost ${c.icv} bytes`, () => {
      const name = { sha256: 'hmac-sha256-128', sha384: 'hmac-sha384-192', sha512: 'hmac-sha512-256' }[c.hash as string]!;
      const ah = createAhTransform({ integrity: name, integrityKey: h(c.key), icvLength: c.icv });
      const out = new Uint8Array(c.icv);
      ah.compute([h(c.data)], -1, null, out, 0);
      assert.equal(hex(out), c.mac.slice(0, c.icv * 2));
    });
  }
});

describe('DES (FIPS 46-3) known answers', () => {
  const v = load('des.json');
  for (const c of v.ecb) {
    it(`ECB: ${c.ref}`, () => {
      const d = new Des(h(c.key));
      const b = h(c.plaintext);
      for (let o = 0; o < b.length; o += 8) d.ecb(b, o, false);
      assert.equal(hex(b), c.ciphertext);
      for (let o = 0; o < b.length; o += 8) d.ecb(b, o, true);
      assert.equal(hex(b), c.plaintext);
      // OpenSSL's DES-EDE3 with K1 = K2 = K3 is single DES: an independent implementation.
      const k = h(c.key);
      const o = createCipheriv('des-ede3-ecb', Buffer.concat([k, k, k]), null).setAutoPadding(false).update(h(c.plaintext));
      assert.equal(hex(o), c.ciphertext);
    });
  }
  for (const impl of DES_IMPLS) {
    for (const c of v.cbc) {
      it(`CBC through the ESP transform: ${c.ref} (${impl.des})`, () => {
        const t = createEspTransform({ encryption: 'des-cbc', encryptionKey: h(c.key), integrity: 'none', integrityKey: NONE, icvLength: 0 }, impl);
        const pkt = Buffer.concat([Buffer.alloc(8), h(c.iv), h(c.plaintext)]);
        t.seal(pkt, 0, pkt.length, -1);
        assert.equal(hex(pkt.subarray(16)), c.ciphertext);
        assert.equal(t.open(pkt, 0, pkt.length, -1), OpenResult.Ok);
        assert.equal(hex(pkt.subarray(16)), c.plaintext);
      });
    }
  }
});
