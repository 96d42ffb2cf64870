/**
 * AH integrity (RFC 4302) for one SA: HMAC-MD5-96, HMAC-SHA-1-96, HMAC-SHA-256-128 (and -384-192,
 * -512-256), and AES-GMAC (RFC 4543 §4).
 *
 * The engine builds the ICV input (RFC 4302 §3.3.3.1: IP header with mutable fields zeroed, the AH
 * header with the whole Authentication Data field zeroed, the rest of the packet) and passes it as
 * `chunks`; this module only MACs it, appending the ESN high 32 bits after the last chunk when the
 * SA uses ESN (RFC 4302 §3.3.3.2.2: implicit, never transmitted).
 *
 * AES-GMAC layout (RFC 4543 §4, text as quoted by the verified erratum 3643): "the AH
 * Authentication Data field consists of the IV and the Authentication Tag ... [it] contains both an
 * input to the authentication algorithm (the IV) and the output ... (the tag)"; IPv4 needs no
 * padding (12 + 8 + 16 = 36 bytes), IPv6 pads 4 bytes (erratum 3643). Hence here ivLen = 8 and
 * icvLen = 16 (the tag alone); the field is [IV(8)][tag(16)](padding).
 * GMAC computation: GCM with an empty plaintext, nonce = salt(4) || IV(8) (RFC 4543 §3.2, as in ESP),
 * AAD = the RFC 4302 ICV input with the whole Authentication Data field (IV included) zeroed, then
 * the ESN high bits. Not verified against another implementation (Linux and strongSwan do not offer
 * GMAC in AH; we could not read the rest of §4): the IV is bound anyway, as part of the nonce.
 */
import { createCipheriv, createSecretKey, timingSafeEqual, type CipherGCMTypes, type KeyObject } from 'node:crypto';
import { TruncatedHmac } from './hmac.js';
import { integrityAlgorithm } from './registry.js';
import type { AhParams, AhTransform } from './types.js';

class HmacAh implements AhTransform {
  readonly ivLen = 0;
  readonly icvLen: number;
  constructor(private readonly mac: TruncatedHmac) {
    this.icvLen = mac.icvLen;
  }
  compute(chunks: readonly Uint8Array[], seqHigh: number, _iv: Uint8Array | null, out: Uint8Array, outOff: number): void {
    out.set(this.mac.digestChunks(chunks, seqHigh).subarray(0, this.icvLen), outOff);
  }
  verify(chunks: readonly Uint8Array[], seqHigh: number, _iv: Uint8Array | null, expected: Uint8Array): boolean {
    if (expected.length !== this.icvLen) return false;
    // RFC 4302 §3.4.4: constant-time comparison of the truncated MAC.
    return timingSafeEqual(this.mac.digestChunks(chunks, seqHigh).subarray(0, this.icvLen), expected);
  }
}

class GmacAh implements AhTransform {
  readonly ivLen = 8;
  readonly icvLen = 16;
  private readonly nonce = Buffer.alloc(12);
  private readonly seqHi = Buffer.alloc(4);
  constructor(
    private readonly name: CipherGCMTypes,
    private readonly key: KeyObject,
    salt: Buffer,
  ) {
    salt.copy(this.nonce, 0);
  }
  private tag(chunks: readonly Uint8Array[], seqHigh: number, iv: Uint8Array | null): Buffer {
    if (!iv || iv.length !== 8) throw new RangeError(`AH GMAC: expected an 8-byte IV, got ${iv ? `length=${iv.length}` : 'null'}`);
    this.nonce.set(iv, 4); // RFC 4543 §3.2 nonce = salt || IV
    const c = createCipheriv(this.name, this.key, this.nonce, { authTagLength: 16 });
    for (const ch of chunks) c.setAAD(ch);
    if (seqHigh >= 0) {
      this.seqHi.writeUInt32BE(seqHigh >>> 0, 0);
      c.setAAD(this.seqHi);
    }
    c.final(); // empty plaintext: GMAC
    return c.getAuthTag();
  }
  compute(chunks: readonly Uint8Array[], seqHigh: number, iv: Uint8Array | null, out: Uint8Array, outOff: number): void {
    out.set(this.tag(chunks, seqHigh, iv), outOff);
  }
  verify(chunks: readonly Uint8Array[], seqHigh: number, iv: Uint8Array | null, expected: Uint8Array): boolean {
    if (expected.length !== 16 || !iv || iv.length !== 8) return false;
    return timingSafeEqual(this.tag(chunks, seqHigh, iv), expected);
  }
}

/**
 * Create the AH transform of one SA.
 * @param p integrity name, key (GMAC: AES key || 4-byte salt, RFC 4543 §5.4) and ICV length
 * @returns the transform; `icvLen` is the MAC length (GMAC: the 16-byte tag, after an 8-byte IV)
 * @throws RangeError on an unknown algorithm, 'none', or wrong key/ICV lengths
 */
export function createAhTransform(p: AhParams): AhTransform {
  const integ = integrityAlgorithm(p.integrity);
  if (!integ || integ.kind === 'none') throw new RangeError(`AH: unknown or empty integrity "${p.integrity}"`);
  if (integ.kind === 'hmac') return new HmacAh(new TruncatedHmac(integ.openssl, p.integrityKey, p.icvLength));
  if (p.integrityKey.length !== integ.keyLen + integ.saltLen) {
    throw new RangeError(`AH ${integ.name} key + salt: expected ${integ.keyLen + integ.saltLen} bytes, got length=${p.integrityKey.length}`);
  }
  if (p.icvLength !== 16) throw new RangeError(`AH ${integ.name}: ICV (tag) length is 16 (RFC 4543 §3.4), got ${p.icvLength}`);
  const key = createSecretKey(Buffer.from(p.integrityKey.subarray(0, integ.keyLen)));
  return new GmacAh(integ.openssl as CipherGCMTypes, key, Buffer.from(p.integrityKey.subarray(integ.keyLen)));
}
