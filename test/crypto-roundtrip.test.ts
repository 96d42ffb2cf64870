/**
 * Property tests: seal → open for every encryption × integrity × ESN × random lengths, tampering
 * anywhere in SPI..ICV, BadLength framing, rejected combinations; cross-checks of GCM/GMAC against
 * the readable reference in test/misc, of HMAC against @noble/hashes, of DES against OpenSSL.
 */
import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { hmac } from '@noble/hashes/hmac.js';
import { md5, sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { createAhTransform } from '../src/crypto/ah.js';
import { Des } from '../src/crypto/des.js';
import { createEspTransform, desBackend, type EspImplOptions } from '../src/crypto/esp.js';
import { ENCRYPTION, INTEGRITY } from '../src/crypto/registry.js';
import { OpenResult, type EspParams, type EspTransform } from '../src/crypto/types.js';
import { gcmEncrypt, gmac } from './misc/gcm-ref.js';

const NONE = new Uint8Array(0);

/** Deterministic PRNG (xorshift32) so failures reproduce. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
}

/** All combinations an RFC defines: AEAD × none; null × GMAC; other ciphers × (none | HMAC). */
function combos(): EspParams[] {
  const out: EspParams[] = [];
  for (const enc of Object.values(ENCRYPTION)) {
    const ek = randomBytes(enc.keyLen + enc.saltLen);
    if (enc.aead) {
      for (const icv of enc.icvLengths) out.push({ encryption: enc.name, encryptionKey: ek, integrity: 'none', integrityKey: NONE, icvLength: icv });
      continue;
    }
    for (const integ of Object.values(INTEGRITY)) {
      if (integ.kind === 'gmac' && enc.name !== 'null') continue;
      out.push({ encryption: enc.name, encryptionKey: ek, integrity: integ.name, integrityKey: randomBytes(integ.keyLen + integ.saltLen), icvLength: integ.icvLen });
    }
  }
  return out;
}

/** Frame an ESP packet around `payload` per RFC 4303 §2.4 (default padding 1, 2, 3, …). */
function frame(t: EspTransform, payload: Uint8Array, nextHeader: number, spi: number, seq: number, lead = 0): { buf: Buffer; start: number; end: number; plain: Buffer } {
  const padLen = (t.padUnit - ((payload.length + 2) % t.padUnit)) % t.padUnit;
  const plain = Buffer.alloc(payload.length + padLen + 2);
  plain.set(payload);
  for (let i = 0; i < padLen; i++) plain[payload.length + i] = i + 1;
  plain[plain.length - 2] = padLen;
  plain[plain.length - 1] = nextHeader;
  const buf = Buffer.alloc(lead + 8 + t.ivLen + plain.length + t.icvLen + 3);
  const start = lead;
  buf.writeUInt32BE(spi, start);
  buf.writeUInt32BE(seq, start + 4);
  randomBytes(t.ivLen).copy(buf, start + 8);
  plain.copy(buf, start + 8 + t.ivLen);
  return { buf, start, end: start + 8 + t.ivLen + plain.length + t.icvLen, plain };
}

const label = (p: EspParams) => `${p.encryption}/${p.integrity}/icv${p.icvLength}`;

describe('ESP seal → open, tamper, framing', () => {
  const r = rng(0x5eed);
  for (const p of combos()) {
    for (const seqHigh of [-1, 0x01020304]) {
      it(`${label(p)} ${seqHigh < 0 ? '32-bit seq' : 'ESN'}`, () => {
        const t = createEspTransform(p);
        const hasIcv = t.icvLen > 0;
        for (let k = 0; k < 12; k++) {
          const len = [0, 1, 2, 3, 15, 16, 17, 63, 64, 255, 1400, r(1500)][k]!;
          const { buf, start, end, plain } = frame(t, randomBytes(len), 4, 0x1000 + k, 1 + r(0xffff), r(5));
          t.seal(buf, start, end, seqHigh);
          const sealed = Buffer.from(buf);
          if (p.encryption !== 'null') assert.notDeepEqual(buf.subarray(start + 8 + t.ivLen, end - t.icvLen), plain, 'ciphertext differs from plaintext');
          assert.equal(t.open(buf, start, end, seqHigh), OpenResult.Ok);
          assert.deepEqual(buf.subarray(start + 8 + t.ivLen, end - t.icvLen), plain);
          if (!hasIcv) continue;
          // Tamper a byte anywhere in SPI..ICV: must fail and leave every byte untouched.
          for (const pos of [start, start + 4, start + 8, start + 8 + t.ivLen, end - t.icvLen - 1, end - 1, start + r(end - start)]) {
            const b = Buffer.from(sealed);
            b[pos]! ^= 1 << r(8);
            const before = Buffer.from(b);
            assert.equal(t.open(b, start, end, seqHigh), OpenResult.AuthFailed, `tamper at ${pos - start}`);
            assert.deepEqual(b, before, 'bytes untouched on failure');
          }
          // The ESN high bits are authenticated (RFC 4303 §2.2.1).
          const b = Buffer.from(sealed);
          assert.equal(t.open(b, start, end, seqHigh < 0 ? 7 : -1), OpenResult.AuthFailed);
          assert.equal(t.open(b, start, end, seqHigh < 0 ? -1 : (seqHigh + 1) >>> 0), seqHigh < 0 ? OpenResult.Ok : OpenResult.AuthFailed);
        }
      });
    }
    it(`${label(p)} BadLength`, () => {
      const t = createEspTransform(p);
      const min = 8 + t.ivLen + 2 + t.icvLen;
      const buf = randomBytes(min + 64);
      const copy = Buffer.from(buf);
      assert.equal(t.open(buf, 0, min - 1, -1), OpenResult.BadLength);
      assert.equal(t.open(buf, 3, 3 + min - 1, -1), OpenResult.BadLength);
      if (t.blockSize > 1) {
        assert.equal(t.open(buf, 0, 8 + t.ivLen + t.blockSize + 1 + t.icvLen, -1), OpenResult.BadLength);
        assert.equal(t.open(buf, 0, 8 + t.ivLen + 2 * t.blockSize - 1 + t.icvLen, -1), OpenResult.BadLength);
      }
      assert.deepEqual(buf, copy);
    });
  }
});

describe('strategy equivalence', () => {
  const impls: [string, EspImplOptions, EspImplOptions][] = [
    ['aes-cbc-128', { cbc: 'ecb' }, { cbc: 'evp' }],
    ['aes-cbc-256', { cbc: 'ecb' }, { cbc: 'evp' }],
    ['3des-cbc', { cbc: 'ecb' }, { cbc: 'evp' }],
    ['aes-ctr-128', { ctr: 'ecb' }, { ctr: 'evp' }],
    ['aes-ctr-256', { ctr: 'ecb' }, { ctr: 'evp' }],
  ];
  if (desBackend() === 'openssl') impls.push(['des-cbc', { des: 'js' }, { des: 'openssl' }]);
  for (const [enc, a, b] of impls) {
    it(`${enc}: ${JSON.stringify(a)} seals what ${JSON.stringify(b)} opens and vice versa`, () => {
      const e = ENCRYPTION[enc]!;
      const p: EspParams = { encryption: enc, encryptionKey: randomBytes(e.keyLen + e.saltLen), integrity: 'hmac-sha256-128', integrityKey: randomBytes(32), icvLength: 16 };
      const ta = createEspTransform(p, a);
      const tb = createEspTransform(p, b);
      for (const len of [0, 5, 100, 1400, 4000]) {
        const f = frame(ta, randomBytes(len), 41, 9, 9);
        const g = Buffer.from(f.buf);
        ta.seal(f.buf, f.start, f.end, 3);
        tb.seal(g, f.start, f.end, 3);
        assert.deepEqual(f.buf, g);
        assert.equal(tb.open(f.buf, f.start, f.end, 3), OpenResult.Ok);
        assert.equal(ta.open(g, f.start, f.end, 3), OpenResult.Ok);
        assert.deepEqual(f.buf, g);
      }
    });
  }
});

describe('cross-checks against independent implementations', () => {
  it('AES-GCM ESP (all key sizes, ICV 8/12/16, ESN on/off) = reference GCM (test/misc)', () => {
    for (const bits of [128, 192, 256]) {
      for (const icv of [8, 12, 16]) {
        for (const seqHigh of [-1, 0xdeadbeef]) {
          const key = randomBytes(bits / 8);
          const salt = randomBytes(4);
          const t = createEspTransform({ encryption: `aes-gcm-${bits}`, encryptionKey: Buffer.concat([key, salt]), integrity: 'none', integrityKey: NONE, icvLength: icv });
          const f = frame(t, randomBytes(77), 6, 0xabcdef01, 0x11223344);
          t.seal(f.buf, f.start, f.end, seqHigh);
          const s = f.buf.subarray(f.start, f.end);
          const aad = seqHigh < 0 ? s.subarray(0, 8) : Buffer.concat([s.subarray(0, 4), Buffer.from([0xde, 0xad, 0xbe, 0xef]), s.subarray(4, 8)]);
          const ref = gcmEncrypt(key, Buffer.concat([salt, s.subarray(8, 16)]), f.plain, aad, icv);
          assert.deepEqual(s.subarray(16, s.length - icv), Buffer.from(ref.ciphertext));
          assert.deepEqual(s.subarray(s.length - icv), Buffer.from(ref.tag));
        }
      }
    }
  });
  it('ESP NULL+GMAC (RFC 4543 §3) = reference GMAC over SPI||Seq(hi||lo)||IV||payload', () => {
    for (const bits of [128, 192, 256]) {
      for (const seqHigh of [-1, 5]) {
        const key = randomBytes(bits / 8);
        const salt = randomBytes(4);
        const t = createEspTransform({ encryption: 'null', encryptionKey: NONE, integrity: `aes-gmac-${bits}`, integrityKey: Buffer.concat([key, salt]), icvLength: 16 });
        const f = frame(t, randomBytes(333), 17, 0x222, 22);
        t.seal(f.buf, f.start, f.end, seqHigh);
        const s = f.buf.subarray(f.start, f.end);
        const body = s.subarray(8, s.length - 16);
        const aad = seqHigh < 0 ? s.subarray(0, s.length - 16) : Buffer.concat([s.subarray(0, 4), Buffer.from([0, 0, 0, 5]), s.subarray(4, 8), body]);
        assert.deepEqual(s.subarray(s.length - 16), Buffer.from(gmac(key, Buffer.concat([salt, s.subarray(8, 16)]), aad)));
        assert.deepEqual(s.subarray(8 + 8, s.length - 16), f.plain, 'GMAC leaves the payload in the clear');
      }
    }
  });
  it('AH GMAC (RFC 4543 §4) = reference GMAC over the chunks (+ ESN high bits); tamper fails', () => {
    const key = randomBytes(32);
    const salt = randomBytes(4);
    const t = createAhTransform({ integrity: 'aes-gmac-256', integrityKey: Buffer.concat([key, salt]), icvLength: 16 });
    assert.equal(t.ivLen, 8);
    assert.equal(t.icvLen, 16);
    const chunks = [randomBytes(20), randomBytes(12 + 24).fill(0, 12), randomBytes(501)];
    const iv = randomBytes(8);
    for (const seqHigh of [-1, 0x80000001]) {
      const out = Buffer.alloc(20);
      t.compute(chunks, seqHigh, iv, out, 2);
      const hi = Buffer.alloc(4);
      hi.writeUInt32BE(seqHigh >>> 0);
      const aad = Buffer.concat(seqHigh < 0 ? chunks : [...chunks, hi]);
      assert.deepEqual(out.subarray(2, 18), Buffer.from(gmac(key, Buffer.concat([salt, iv]), aad)));
      assert.ok(t.verify(chunks, seqHigh, iv, out.subarray(2, 18)));
      const bad = Buffer.from(chunks[2]!);
      bad[100]! ^= 4;
      assert.ok(!t.verify([chunks[0]!, chunks[1]!, bad], seqHigh, iv, out.subarray(2, 18)));
      const iv2 = Buffer.from(iv);
      iv2[0]! ^= 1;
      assert.ok(!t.verify(chunks, seqHigh, iv2, out.subarray(2, 18)), 'the IV is bound through the nonce');
      assert.ok(!t.verify(chunks, seqHigh < 0 ? 0 : -1, iv, out.subarray(2, 18)));
      assert.ok(!t.verify(chunks, seqHigh, iv, out.subarray(2, 17)), 'wrong length is a failure, not a throw');
    }
  });
  it('HMAC ICVs (ESP and AH, ESN on/off) = @noble/hashes', () => {
    const noble = { 'hmac-md5-96': md5, 'hmac-sha1-96': sha1, 'hmac-sha256-128': sha256, 'hmac-sha384-192': sha384, 'hmac-sha512-256': sha512 } as const;
    for (const [name, hash] of Object.entries(noble)) {
      const integ = INTEGRITY[name]!;
      for (const seqHigh of [-1, 0xfffffffe]) {
        const ikey = randomBytes(integ.keyLen);
        const t = createEspTransform({ encryption: 'aes-cbc-128', encryptionKey: randomBytes(16), integrity: name, integrityKey: ikey, icvLength: integ.icvLen });
        const f = frame(t, randomBytes(200), 4, 1, 2);
        t.seal(f.buf, f.start, f.end, seqHigh);
        const s = f.buf.subarray(f.start, f.end);
        const hi = Buffer.alloc(4);
        hi.writeUInt32BE(seqHigh >>> 0);
        const input = seqHigh < 0 ? s.subarray(0, s.length - integ.icvLen) : Buffer.concat([s.subarray(0, s.length - integ.icvLen), hi]);
        assert.deepEqual(s.subarray(s.length - integ.icvLen), Buffer.from(hmac(hash, ikey, input).subarray(0, integ.icvLen)), `${name} ESP`);
        const ah = createAhTransform({ integrity: name, integrityKey: ikey, icvLength: integ.icvLen });
        const out = new Uint8Array(integ.icvLen);
        ah.compute([s.subarray(0, 10), s.subarray(10, s.length - integ.icvLen)], seqHigh, null, out, 0);
        assert.deepEqual(Buffer.from(out), Buffer.from(hmac(hash, ikey, input).subarray(0, integ.icvLen)), `${name} AH`);
        assert.ok(ah.verify([input.subarray(0, s.length - integ.icvLen)], seqHigh, null, out));
        out[0]! ^= 1;
        assert.ok(!ah.verify([input.subarray(0, s.length - integ.icvLen)], seqHigh, null, out));
      }
    }
  });
  it('JS DES-CBC = OpenSSL DES-EDE3-CBC with K1 = K2 = K3 (random keys, IVs, lengths)', () => {
    for (let i = 0; i < 50; i++) {
      const k = randomBytes(8);
      const iv = randomBytes(8);
      const pt = randomBytes(8 * (1 + (i % 40)));
      const ref = createCipheriv('des-ede3-cbc', Buffer.concat([k, k, k]), iv).setAutoPadding(false).update(pt);
      const b = Buffer.concat([iv, pt]);
      new Des(k).cbcEncrypt(b, 0, 8, b.length);
      assert.deepEqual(b.subarray(8), ref);
      new Des(k).cbcDecrypt(b, 0, 8, b.length);
      assert.deepEqual(b.subarray(8), pt);
    }
  });
});

describe('parameter validation', () => {
  const k16 = randomBytes(16);
  const bad: [string, EspParams][] = [
    ['AEAD with a separate integrity', { encryption: 'aes-gcm-128', encryptionKey: randomBytes(20), integrity: 'hmac-sha1-96', integrityKey: randomBytes(20), icvLength: 16 }],
    ['GCM ICV 10', { encryption: 'aes-gcm-128', encryptionKey: randomBytes(20), integrity: 'none', integrityKey: NONE, icvLength: 10 }],
    ['GCM key without salt', { encryption: 'aes-gcm-128', encryptionKey: k16, integrity: 'none', integrityKey: NONE, icvLength: 16 }],
    ['GMAC with AES-CBC', { encryption: 'aes-cbc-128', encryptionKey: k16, integrity: 'aes-gmac-128', integrityKey: randomBytes(20), icvLength: 16 }],
    ['unknown encryption', { encryption: 'rot13', encryptionKey: k16, integrity: 'none', integrityKey: NONE, icvLength: 0 }],
    ['CBC key of 15 bytes', { encryption: 'aes-cbc-128', encryptionKey: randomBytes(15), integrity: 'none', integrityKey: NONE, icvLength: 0 }],
    ['HMAC ICV longer than the digest', { encryption: 'null', encryptionKey: NONE, integrity: 'hmac-md5-96', integrityKey: k16, icvLength: 17 }],
    ['ICV with integrity none', { encryption: 'aes-cbc-128', encryptionKey: k16, integrity: 'none', integrityKey: NONE, icvLength: 12 }],
  ];
  for (const [what, p] of bad) it(`rejects ${what} with RangeError`, () => assert.throws(() => createEspTransform(p), RangeError));
  it('AH rejects none and bad GMAC parameters', () => {
    assert.throws(() => createAhTransform({ integrity: 'none', integrityKey: NONE, icvLength: 0 }), RangeError);
    assert.throws(() => createAhTransform({ integrity: 'aes-gmac-128', integrityKey: k16, icvLength: 16 }), RangeError);
    assert.throws(() => createAhTransform({ integrity: 'aes-gmac-128', integrityKey: randomBytes(20), icvLength: 24 }), RangeError);
  });
  it('registry shapes: padUnit = max(4, blockSize), ivLen per algorithm', () => {
    for (const p of combos()) {
      const t = createEspTransform(p);
      const e = ENCRYPTION[p.encryption]!;
      assert.equal(t.blockSize, e.blockSize);
      assert.equal(t.padUnit, Math.max(4, e.blockSize));
      assert.equal(t.ivLen, p.integrity.startsWith('aes-gmac') ? 8 : e.ivLen);
      assert.equal(t.icvLen, p.icvLength);
    }
  });
});
