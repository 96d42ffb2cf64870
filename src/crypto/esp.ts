/**
 * ESP transforms (RFC 4303) over node:crypto: one object per SA, prepared once (keys, salts,
 * long-lived cipher contexts, scratch buffers), then a pure function of the bytes it is given.
 *
 * Packet layout handled here (RFC 4303 §2, Figure 1): `buf[start..end)` =
 *   SPI(4) | Seq(4) | IV(ivLen) | ciphertext (payload | padding | padLen | nextHeader) | ICV(icvLen)
 *
 * Three shapes:
 *  - separate algorithms: cipher (null, DES/3DES/AES-CBC, AES-CTR) + integrity (none or HMAC);
 *    ICV over SPI..ciphertext (+ ESN high bits) (RFC 4303 §3.3.2.1, §3.4.4.1);
 *  - AEAD: AES-GCM (RFC 4106) and ChaCha20-Poly1305 (RFC 7634);
 *  - ENCR_NULL_AUTH_AES_GMAC (RFC 4543 §3), selected by encryption 'null' + integrity 'aes-gmac-*'.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type Cipher,
  type CipherGCMTypes,
  type Decipher,
  type KeyObject,
} from 'node:crypto';
import { Des } from './des.js';
import { icvEqual, TruncatedHmac } from './hmac.js';
import { encryptionAlgorithm, integrityAlgorithm, type EncryptionAlgorithm, type IntegrityAlgorithm } from './registry.js';
import { OpenResult, type EspParams, type EspTransform } from './types.js';

/** Which library does the cryptography. A native addon may be added later. */
export const CRYPTO_BACKEND = 'node:crypto';

// ---------------------------------------------------------------------------------------------
// DES backend choice

let desChoice: 'openssl' | 'js' | null = null;

/**
 * How single DES is done: 'openssl' when node's OpenSSL offers `des-cbc` (legacy provider loaded:
 * `node --openssl-legacy-provider`, or an `OPENSSL_CONF` that activates the `legacy` provider next
 * to `default`), otherwise 'js' (src/crypto/des.ts). Probed once, on first use.
 */
export function desBackend(): 'openssl' | 'js' {
  if (desChoice === null) {
    try {
      createCipheriv('des-cbc', Buffer.alloc(8, 1), Buffer.alloc(8)).update(Buffer.alloc(8));
      createDecipheriv('des-ecb', Buffer.alloc(8, 1), null).setAutoPadding(false).update(Buffer.alloc(8));
      desChoice = 'openssl';
    } catch {
      desChoice = 'js';
    }
  }
  return desChoice;
}

// ---------------------------------------------------------------------------------------------
// Ciphers of the separate-algorithm shape. The IV sits right before the ciphertext.

interface BlockCipher {
  /** Decrypt `buf[ctOff..ctEnd)` in place; the IV is `buf[ctOff-ivLen..ctOff)`. */
  decrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void;
  /** Encrypt `buf[ctOff..ctEnd)` in place; the IV is `buf[ctOff-ivLen..ctOff)`. */
  encrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void;
}

const NULL_CIPHER: BlockCipher = { decrypt() {}, encrypt() {} };

/** XOR `b[bOff..bOff+n)` into `a[0..n)`. */
function xorInto(a: Uint8Array, b: Uint8Array, bOff: number, n: number): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    a[i] ^= b[bOff + i]!;
    a[i + 1] ^= b[bOff + i + 1]!;
    a[i + 2] ^= b[bOff + i + 2]!;
    a[i + 3] ^= b[bOff + i + 3]!;
  }
  for (; i < n; i++) a[i] ^= b[bOff + i]!;
}

/**
 * CBC (RFC 3602 §2; RFC 2405/2451 for DES/3DES). Decryption uses ONE long-lived ECB decipher
 * without padding (it keeps no state between update() calls) and XORs the previous ciphertext
 * block in JS: CBC decryption is P_i = D(C_i) xor C_{i-1}, C_0 = IV. That saves the per-packet
 * createDecipheriv (perf-baselines.md §5; measured in test/crypto-bench: see the report).
 * Encryption is serial, so it keeps one createCipheriv per packet.
 */
class CbcCipher implements BlockCipher {
  private readonly ecb: Decipher;
  constructor(
    private readonly cbcName: string,
    ecbName: string,
    private readonly key: KeyObject,
    private readonly bs: number,
  ) {
    this.ecb = createDecipheriv(ecbName, key, null).setAutoPadding(false);
  }
  decrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    const out = this.ecb.update(buf.subarray(ctOff, ctEnd));
    // C_{i-1} for block i is at ctOff - bs + i*bs; for i = 0 that is the IV (ivLen == block size).
    xorInto(out, buf, ctOff - this.bs, ctEnd - ctOff);
    buf.set(out, ctOff);
  }
  encrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    const c = createCipheriv(this.cbcName, this.key, buf.subarray(ctOff - this.bs, ctOff)).setAutoPadding(false);
    buf.set(c.update(buf.subarray(ctOff, ctEnd)), ctOff);
  }
}

/** CBC with a fresh EVP context per packet both ways (kept for the benchmark and cross-checks). */
class CbcPerPacketCipher implements BlockCipher {
  constructor(
    private readonly cbcName: string,
    private readonly key: KeyObject,
    private readonly bs: number,
  ) {}
  decrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    const d = createDecipheriv(this.cbcName, this.key, buf.subarray(ctOff - this.bs, ctOff)).setAutoPadding(false);
    buf.set(d.update(buf.subarray(ctOff, ctEnd)), ctOff);
  }
  encrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    const c = createCipheriv(this.cbcName, this.key, buf.subarray(ctOff - this.bs, ctOff)).setAutoPadding(false);
    buf.set(c.update(buf.subarray(ctOff, ctEnd)), ctOff);
  }
}

/** Pure-JS single DES-CBC (src/crypto/des.ts), used when OpenSSL lacks DES. */
class JsDesCbcCipher implements BlockCipher {
  private readonly des: Des;
  constructor(key: Uint8Array) {
    this.des = new Des(key);
  }
  decrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    this.des.cbcDecrypt(buf, ctOff - 8, ctOff, ctEnd);
  }
  encrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    this.des.cbcEncrypt(buf, ctOff - 8, ctOff, ctEnd);
  }
}

/**
 * AES-CTR for ESP (RFC 3686). Counter block = nonce(4, the salt at the end of the key) || IV(8) ||
 * block counter(4, big-endian, starting at 1) (RFC 3686 §4). The keystream comes from one
 * long-lived AES-ECB encryptor applied to the counter blocks built in JS (no per-packet context).
 */
class CtrCipher implements BlockCipher {
  private readonly ecb: Cipher;
  private counters = Buffer.alloc(16 * 128);
  constructor(
    ecbName: string,
    key: KeyObject,
    private readonly nonce: Buffer,
  ) {
    this.ecb = createCipheriv(ecbName, key, null).setAutoPadding(false);
  }
  private run(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    const n = ctEnd - ctOff;
    const blocks = (n + 15) >>> 4;
    if (this.counters.length < blocks * 16) this.counters = Buffer.alloc(blocks * 16 * 2);
    const cb = this.counters;
    for (let i = 0; i < blocks; i++) {
      const o = i * 16;
      cb[o] = this.nonce[0]!;
      cb[o + 1] = this.nonce[1]!;
      cb[o + 2] = this.nonce[2]!;
      cb[o + 3] = this.nonce[3]!;
      for (let j = 0; j < 8; j++) cb[o + 4 + j] = buf[ctOff - 8 + j]!; // the explicit IV
      cb.writeUInt32BE(i + 1, o + 12); // RFC 3686 §4: the block counter starts at 1
    }
    const ks = this.ecb.update(cb.subarray(0, blocks * 16));
    xorInto(ks, buf, ctOff, n);
    buf.set(ks.subarray(0, n), ctOff);
  }
  decrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    this.run(buf, ctOff, ctEnd);
  }
  encrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    this.run(buf, ctOff, ctEnd);
  }
}

/** AES-CTR through OpenSSL's own counter mode, one context per packet (benchmark/cross-check). */
class CtrPerPacketCipher implements BlockCipher {
  private readonly cb = Buffer.alloc(16);
  constructor(
    private readonly ctrName: string,
    private readonly key: KeyObject,
    nonce: Buffer,
  ) {
    nonce.copy(this.cb, 0);
  }
  private run(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    this.cb.set(buf.subarray(ctOff - 8, ctOff), 4);
    this.cb.writeUInt32BE(1, 12);
    const c = createCipheriv(this.ctrName, this.key, this.cb);
    buf.set(c.update(buf.subarray(ctOff, ctEnd)), ctOff);
  }
  decrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    this.run(buf, ctOff, ctEnd);
  }
  encrypt(buf: Uint8Array, ctOff: number, ctEnd: number): void {
    this.run(buf, ctOff, ctEnd);
  }
}

// ---------------------------------------------------------------------------------------------
// Transforms

abstract class EspBase implements EspTransform {
  readonly padUnit: number;
  constructor(
    readonly ivLen: number,
    readonly icvLen: number,
    readonly blockSize: number,
  ) {
    // RFC 4303 §2.4: the ciphertext ends on a 4-byte boundary, and block ciphers need whole blocks.
    this.padUnit = Math.max(4, blockSize);
  }

  /** RFC 4303 §3.4.4.1 framing check: room for header, IV, 2-byte trailer, ICV; whole blocks. */
  protected badLength(start: number, end: number): boolean {
    const ct = end - start - 8 - this.ivLen - this.icvLen;
    return ct < 2 || ct % this.blockSize !== 0;
  }

  abstract open(buf: Uint8Array, start: number, end: number, seqHigh: number): OpenResult;
  abstract seal(buf: Uint8Array, start: number, end: number, seqHigh: number): void;
}

/** Separate encryption and integrity (including encryption-only and integrity-only). */
class SeparateEsp extends EspBase {
  constructor(
    ivLen: number,
    blockSize: number,
    private readonly cipher: BlockCipher,
    private readonly mac: TruncatedHmac | null,
  ) {
    super(ivLen, mac ? mac.icvLen : 0, blockSize);
  }

  open(buf: Uint8Array, start: number, end: number, seqHigh: number): OpenResult {
    if (this.badLength(start, end)) return OpenResult.BadLength;
    const icvOff = end - this.icvLen;
    try {
      if (this.mac) {
        // RFC 4303 §3.4.4.1: verify the ICV over SPI..ciphertext (+ implicit Seq high bits,
        // §2.2.1) BEFORE decrypting; a failure leaves the packet untouched.
        const mac = this.mac.digestRange(buf, start, icvOff, seqHigh);
        if (!icvEqual(mac, buf, icvOff, this.icvLen)) return OpenResult.AuthFailed;
      }
      this.cipher.decrypt(buf, start + 8 + this.ivLen, icvOff);
      return OpenResult.Ok;
    } catch {
      return OpenResult.Internal;
    }
  }

  seal(buf: Uint8Array, start: number, end: number, seqHigh: number): void {
    const icvOff = end - this.icvLen;
    // RFC 4303 §3.3.2.1: encrypt first, then compute the ICV over the encrypted packet.
    this.cipher.encrypt(buf, start + 8 + this.ivLen, icvOff);
    if (this.mac) buf.set(this.mac.digestRange(buf, start, icvOff, seqHigh).subarray(0, this.icvLen), icvOff);
  }
}

/**
 * AES-GCM (RFC 4106) and ChaCha20-Poly1305 (RFC 7634) ESP. Nonce = salt(4) || IV(8) (RFC 4106 §4,
 * RFC 7634 §2); AAD = SPI || Seq (8 bytes) or SPI || Seq high || Seq low (12 bytes with ESN)
 * (RFC 4106 §5, RFC 7634 §2.1); the tag is the ICV after the ciphertext (RFC 4106 §6).
 */
class AeadEsp extends EspBase {
  private readonly nonce = Buffer.alloc(12);
  private readonly aad12 = Buffer.alloc(12);
  constructor(
    private readonly name: CipherGCMTypes,
    private readonly key: KeyObject,
    salt: Buffer,
    icvLen: number,
  ) {
    super(8, icvLen, 1);
    salt.copy(this.nonce, 0);
  }

  /** The AAD of RFC 4106 §5: a view of the packet without ESN, else the 12-byte scratch. */
  private aad(buf: Uint8Array, start: number, seqHigh: number): Uint8Array {
    if (seqHigh < 0) return buf.subarray(start, start + 8);
    const a = this.aad12;
    a.set(buf.subarray(start, start + 4), 0); // SPI
    a.writeUInt32BE(seqHigh >>> 0, 4); // Seq high (implicit)
    a.set(buf.subarray(start + 4, start + 8), 8); // Seq low
    return a;
  }

  open(buf: Uint8Array, start: number, end: number, seqHigh: number): OpenResult {
    if (this.badLength(start, end)) return OpenResult.BadLength;
    const ctOff = start + 16;
    const icvOff = end - this.icvLen;
    let pt: Buffer;
    try {
      this.nonce.set(buf.subarray(start + 8, start + 16), 4);
      const d = createDecipheriv(this.name, this.key, this.nonce, { authTagLength: this.icvLen });
      d.setAAD(this.aad(buf, start, seqHigh));
      d.setAuthTag(buf.subarray(icvOff, end));
      pt = d.update(buf.subarray(ctOff, icvOff));
      try {
        d.final(); // throws on a tag mismatch; the tag check is OpenSSL's (constant time)
      } catch {
        return OpenResult.AuthFailed;
      }
    } catch {
      return OpenResult.Internal;
    }
    // Only a verified plaintext is released into the packet (RFC 4303 §3.4.4.1).
    buf.set(pt, ctOff);
    return OpenResult.Ok;
  }

  seal(buf: Uint8Array, start: number, end: number, seqHigh: number): void {
    const ctOff = start + 16;
    const icvOff = end - this.icvLen;
    this.nonce.set(buf.subarray(start + 8, start + 16), 4);
    const c = createCipheriv(this.name, this.key, this.nonce, { authTagLength: this.icvLen });
    c.setAAD(this.aad(buf, start, seqHigh));
    buf.set(c.update(buf.subarray(ctOff, icvOff)), ctOff);
    c.final();
    buf.set(c.getAuthTag(), icvOff);
  }
}

/**
 * ENCR_NULL_AUTH_AES_GMAC (RFC 4543 §3): no confidentiality. GCM with an EMPTY plaintext; the AAD
 * is everything protected: SPI || Seq (ESN: SPI || Seq high || Seq low) || IV || payload, padding,
 * pad length, next header (RFC 4543 §3.3; the IV's place in the AAD is spelled out by
 * draft-mcgrew-gcm-test-01 §3 and is what Linux rfc4543(gcm(aes)) does). Nonce = salt || IV
 * (§3.2); ICV = 16-byte tag (§3.4). Keys: AES key || 4-byte salt (§5.4 KEYMAT).
 */
class GmacEsp extends EspBase {
  private readonly nonce = Buffer.alloc(12);
  private readonly hdr12 = Buffer.alloc(12);
  constructor(
    private readonly name: CipherGCMTypes,
    private readonly key: KeyObject,
    salt: Buffer,
  ) {
    super(8, 16, 1);
    salt.copy(this.nonce, 0);
  }

  /** Feed the RFC 4543 §3.3 AAD: header (with the implicit Seq high bits), IV and the payload. */
  private feed(c: { setAAD(b: Uint8Array): unknown }, buf: Uint8Array, start: number, icvOff: number, seqHigh: number): void {
    if (seqHigh < 0) {
      c.setAAD(buf.subarray(start, icvOff));
      return;
    }
    const h = this.hdr12;
    h.set(buf.subarray(start, start + 4), 0);
    h.writeUInt32BE(seqHigh >>> 0, 4);
    h.set(buf.subarray(start + 4, start + 8), 8);
    c.setAAD(h);
    c.setAAD(buf.subarray(start + 8, icvOff)); // IV || payload || trailer
  }

  open(buf: Uint8Array, start: number, end: number, seqHigh: number): OpenResult {
    if (this.badLength(start, end)) return OpenResult.BadLength;
    const icvOff = end - 16;
    try {
      this.nonce.set(buf.subarray(start + 8, start + 16), 4);
      const d = createDecipheriv(this.name, this.key, this.nonce, { authTagLength: 16 });
      this.feed(d, buf, start, icvOff, seqHigh);
      d.setAuthTag(buf.subarray(icvOff, end));
      try {
        d.final();
      } catch {
        return OpenResult.AuthFailed;
      }
      return OpenResult.Ok; // nothing to decrypt: the payload is in the clear
    } catch {
      return OpenResult.Internal;
    }
  }

  seal(buf: Uint8Array, start: number, end: number, seqHigh: number): void {
    const icvOff = end - 16;
    this.nonce.set(buf.subarray(start + 8, start + 16), 4);
    const c = createCipheriv(this.name, this.key, this.nonce, { authTagLength: 16 });
    this.feed(c, buf, start, icvOff, seqHigh);
    c.final();
    buf.set(c.getAuthTag(), icvOff);
  }
}

// ---------------------------------------------------------------------------------------------
// Factory

function expectLen(what: string, got: number, want: number): void {
  if (got !== want) throw new RangeError(`${what}: expected ${want} bytes, got length=${got}`);
}

/** Strategy knobs for benchmarks and cross-checks; production code uses the defaults. */
export interface EspImplOptions {
  /** CBC decryption: long-lived ECB + JS XOR (default) or a fresh CBC context per packet. */
  cbc?: 'ecb' | 'evp';
  /** AES-CTR: long-lived ECB keystream (default) or OpenSSL's CTR with a context per packet. */
  ctr?: 'ecb' | 'evp';
  /** Force the DES path ('auto' = desBackend()). */
  des?: 'auto' | 'js' | 'openssl';
}

function makeCipher(enc: EncryptionAlgorithm, key: Uint8Array, o: EspImplOptions): BlockCipher {
  if (enc.name === 'null') return NULL_CIPHER;
  const aesKey = Buffer.from(key.subarray(0, enc.keyLen));
  if (enc.name === 'des-cbc') {
    const which = !o.des || o.des === 'auto' ? desBackend() : o.des;
    if (which === 'js') return new JsDesCbcCipher(aesKey);
    return new CbcCipher('des-cbc', 'des-ecb', createSecretKey(aesKey), 8);
  }
  const ko = createSecretKey(aesKey);
  if (enc.openssl.endsWith('-cbc')) {
    const ecb = enc.openssl.replace(/-cbc$/, '-ecb'); // aes-128-ecb, des-ede3-ecb, …
    return o.cbc === 'evp' ? new CbcPerPacketCipher(enc.openssl, ko, enc.blockSize) : new CbcCipher(enc.openssl, ecb, ko, enc.blockSize);
  }
  if (enc.openssl.endsWith('-ctr')) {
    const salt = Buffer.from(key.subarray(enc.keyLen, enc.keyLen + 4));
    return o.ctr === 'evp' ? new CtrPerPacketCipher(enc.openssl, ko, salt) : new CtrCipher(enc.openssl.replace(/-ctr$/, '-ecb'), ko, salt);
  }
  throw new RangeError(`ESP: no cipher implementation for "${enc.name}"`);
}

/**
 * Create the ESP transform of one SA.
 *
 * Key material follows RFC 4106 §8.1 / RFC 3686 §5.1 / RFC 7634 §2 / RFC 4543 §5.4: the 4-byte
 * salt is the END of `encryptionKey` (GCM, CTR, ChaCha20-Poly1305) or of `integrityKey` (GMAC).
 *
 * @param p SA parameters (algorithm names of the registry, keys, ICV length in bytes)
 * @param impl strategy knobs (benchmarks/tests only)
 * @returns a transform whose open/seal work in place on `buf[start..end)`
 * @throws RangeError on unknown algorithms, wrong key/ICV lengths, or combinations no RFC defines
 *   (AEAD with a separate integrity algorithm; GMAC with an encryption other than null)
 * @example
 * const t = createEspTransform({ encryption: 'aes-gcm-128', encryptionKey: key20, integrity: 'none', integrityKey: new Uint8Array(0), icvLength: 16 });
 * if (t.open(frame, espOff, ipEnd, -1) === OpenResult.Ok) { ... }
 */
export function createEspTransform(p: EspParams, impl: EspImplOptions = {}): EspTransform {
  const enc = encryptionAlgorithm(p.encryption);
  if (!enc) throw new RangeError(`ESP: unknown encryption "${p.encryption}"`);
  const integ = integrityAlgorithm(p.integrity);
  if (!integ) throw new RangeError(`ESP: unknown integrity "${p.integrity}"`);
  expectLen(`ESP ${enc.name} key (key${enc.saltLen ? ' + salt' : ''})`, p.encryptionKey.length, enc.keyLen + enc.saltLen);

  if (enc.aead) {
    if (integ.kind !== 'none') throw new RangeError(`ESP: ${enc.name} is a combined mode; integrity must be "none", got "${integ.name}"`);
    if (!enc.icvLengths.includes(p.icvLength)) throw new RangeError(`ESP ${enc.name}: ICV length must be one of ${enc.icvLengths.join('/')}, got ${p.icvLength}`);
    const key = createSecretKey(Buffer.from(p.encryptionKey.subarray(0, enc.keyLen)));
    const salt = Buffer.from(p.encryptionKey.subarray(enc.keyLen));
    return new AeadEsp(enc.openssl as CipherGCMTypes, key, salt, p.icvLength);
  }

  if (integ.kind === 'gmac') return gmacEsp(enc, integ, p);

  let mac: TruncatedHmac | null = null;
  if (integ.kind === 'hmac') mac = new TruncatedHmac(integ.openssl, p.integrityKey, p.icvLength);
  else if (p.icvLength !== 0) throw new RangeError(`ESP: integrity "none" has no ICV, got icvLength ${p.icvLength}`);
  return new SeparateEsp(enc.ivLen, enc.blockSize, makeCipher(enc, p.encryptionKey, impl), mac);
}

function gmacEsp(enc: EncryptionAlgorithm, integ: IntegrityAlgorithm, p: EspParams): EspTransform {
  // RFC 4543 §3 defines GMAC in ESP only as ENCR_NULL_AUTH_AES_GMAC: there is no encryption.
  if (enc.name !== 'null') throw new RangeError(`ESP: ${integ.name} is only defined with encryption "null" (RFC 4543 §3), got "${enc.name}"`);
  expectLen(`ESP ${integ.name} key + salt`, p.integrityKey.length, integ.keyLen + integ.saltLen);
  if (p.icvLength !== 16) throw new RangeError(`ESP ${integ.name}: ICV length is 16 (RFC 4543 §3.4), got ${p.icvLength}`);
  const key = createSecretKey(Buffer.from(p.integrityKey.subarray(0, integ.keyLen)));
  const salt = Buffer.from(p.integrityKey.subarray(integ.keyLen));
  return new GmacEsp(integ.openssl as CipherGCMTypes, key, salt);
}

/** Internals for tests and benchmarks only. */
export const __TESTS = Object.freeze({ xorInto });
