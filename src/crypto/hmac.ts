/**
 * HMAC integrity for ESP and AH: HMAC-MD5-96 (RFC 2403), HMAC-SHA-1-96 (RFC 2404),
 * HMAC-SHA-256-128 / -384-192 / -512-256 (RFC 4868). The ICV is the leftmost `icvLen` bytes of
 * the HMAC (RFC 2403 §2, RFC 2404 §2, RFC 4868 §2.3), compared in constant time.
 *
 * node:crypto has no way to clone a keyed HMAC state, so the per-SA work is limited to turning the
 * key into a KeyObject once; each packet creates one Hmac object (≈3.5 µs, perf-baselines.md §2).
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** Digest sizes of the hashes the registry names. */
export const DIGEST_LEN: Readonly<Record<string, number>> = Object.freeze({ md5: 16, sha1: 20, sha256: 32, sha384: 48, sha512: 64 });

/** A keyed, truncating HMAC bound to one SA. */
export class TruncatedHmac {
  readonly icvLen: number;
  private readonly hash: string;
  private readonly key: KeyObject | Buffer;
  /** 4-byte scratch for the implicit ESN high bits. */
  private readonly seqHi = Buffer.alloc(4);

  /**
   * @param hash node:crypto hash name ('md5', 'sha1', 'sha256', 'sha384', 'sha512')
   * @param key HMAC key (any length is valid HMAC; the SA checker enforces the RFC lengths)
   * @param icvLen bytes kept (1 … digest length)
   * @throws RangeError on an unknown hash or an ICV length outside 1 … digest length
   */
  constructor(hash: string, key: Uint8Array, icvLen: number) {
    const full = DIGEST_LEN[hash];
    if (full === undefined) throw new RangeError(`HMAC: unknown hash "${hash}", expected one of ${Object.keys(DIGEST_LEN).join(', ')}`);
    if (!Number.isInteger(icvLen) || icvLen < 1 || icvLen > full) throw new RangeError(`HMAC-${hash}: ICV length must be 1..${full}, got ${icvLen}`);
    this.hash = hash;
    this.icvLen = icvLen;
    // createSecretKey rejects an empty key; HMAC with an empty key is still defined (RFC 2104 pads
    // it with zeros), so keep a raw zero-length Buffer there.
    this.key = key.length > 0 ? createSecretKey(Buffer.from(key)) : Buffer.alloc(0);
  }

  /**
   * Full HMAC over `data[from..to)`, then the 4 ESN high bytes when `seqHigh >= 0` (RFC 4303 §2.2.1,
   * RFC 4302 §3.3.3.2.2: appended for the ICV only, never transmitted).
   */
  digestRange(data: Uint8Array, from: number, to: number, seqHigh: number): Buffer {
    const h = createHmac(this.hash, this.key).update(data.subarray(from, to));
    if (seqHigh >= 0) h.update(this.hi(seqHigh));
    return h.digest();
  }

  /** Full HMAC over the concatenation of `chunks` (then the ESN high bytes when `seqHigh >= 0`). */
  digestChunks(chunks: readonly Uint8Array[], seqHigh: number): Buffer {
    const h = createHmac(this.hash, this.key);
    for (const c of chunks) h.update(c);
    if (seqHigh >= 0) h.update(this.hi(seqHigh));
    return h.digest();
  }

  private hi(seqHigh: number): Buffer {
    this.seqHi.writeUInt32BE(seqHigh >>> 0, 0);
    return this.seqHi;
  }
}

/**
 * Constant-time comparison of the first `len` bytes of `mac` with `icv[icvOff..icvOff+len)`
 * (crypto.timingSafeEqual; the length itself is public).
 */
export function icvEqual(mac: Uint8Array, icv: Uint8Array, icvOff: number, len: number): boolean {
  if (mac.length < len || icv.length < icvOff + len) return false;
  return timingSafeEqual(mac.subarray(0, len), icv.subarray(icvOff, icvOff + len));
}
