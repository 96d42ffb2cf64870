/**
 * A small, slow, readable GCM/GMAC (NIST SP 800-38D) for cross-checking the node:crypto path.
 * Only the block cipher comes from node:crypto (AES-ECB); GHASH, GCTR, J0 and the tag are written
 * out here from SP 800-38D §6.3-§7.2 with BigInt arithmetic. 96-bit IVs only (all IPsec uses).
 */
import { createCipheriv } from 'node:crypto';

const R = 0xe1n << 120n; // SP 800-38D §6.3: R = 11100001 || 0^120

function toBig(b: Uint8Array): bigint {
  let x = 0n;
  for (const v of b) x = (x << 8n) | BigInt(v);
  return x;
}
function fromBig(x: bigint): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/** SP 800-38D Algorithm 1: X • Y in GF(2^128), bit 0 = most significant. */
function mul(x: bigint, y: bigint): bigint {
  let z = 0n;
  let v = y;
  for (let i = 127; i >= 0; i--) {
    if ((x >> BigInt(i)) & 1n) z ^= v;
    v = v & 1n ? (v >> 1n) ^ R : v >> 1n;
  }
  return z;
}

function aesBlock(key: Uint8Array, block: Uint8Array): Uint8Array {
  const c = createCipheriv(`aes-${key.length * 8}-ecb`, key, null).setAutoPadding(false);
  return new Uint8Array(c.update(block));
}

/** SP 800-38D Algorithm 2 (GHASH) over A and C with the length block. */
function ghash(h: bigint, a: Uint8Array, c: Uint8Array): bigint {
  let y = 0n;
  const absorb = (data: Uint8Array) => {
    for (let o = 0; o < data.length; o += 16) {
      const blk = new Uint8Array(16);
      blk.set(data.subarray(o, o + 16)); // zero padding of the last partial block
      y = mul(y ^ toBig(blk), h);
    }
  };
  absorb(a);
  absorb(c);
  const lens = (BigInt(a.length * 8) << 64n) | BigInt(c.length * 8);
  return mul(y ^ lens, h);
}

/** SP 800-38D §6.5 GCTR with inc32. */
function gctr(key: Uint8Array, icb: Uint8Array, x: Uint8Array): Uint8Array {
  const out = new Uint8Array(x.length);
  const cb = icb.slice();
  for (let o = 0; o < x.length; o += 16) {
    const ks = aesBlock(key, cb);
    for (let i = 0; i < 16 && o + i < x.length; i++) out[o + i] = x[o + i]! ^ ks[i]!;
    const ctr = (new DataView(cb.buffer).getUint32(12) + 1) >>> 0;
    new DataView(cb.buffer).setUint32(12, ctr);
  }
  return out;
}

/** GCM-AE (SP 800-38D Algorithm 4) with a 12-byte IV; returns ciphertext and the tagLen-byte tag. */
export function gcmEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, tagLen = 16): { ciphertext: Uint8Array; tag: Uint8Array } {
  if (iv.length !== 12) throw new RangeError('reference GCM: 12-byte IV only');
  const h = toBig(aesBlock(key, new Uint8Array(16)));
  const j0 = new Uint8Array(16);
  j0.set(iv);
  j0[15] = 1; // J0 = IV || 0^31 || 1
  const icb = j0.slice();
  icb[15] = 2; // inc32(J0)
  const ciphertext = gctr(key, icb, plaintext);
  const s = fromBig(ghash(h, aad, ciphertext));
  const tag = gctr(key, j0, s).subarray(0, tagLen);
  return { ciphertext, tag };
}

/** GMAC = GCM with an empty plaintext (SP 800-38D §3). */
export function gmac(key: Uint8Array, iv: Uint8Array, aad: Uint8Array): Uint8Array {
  return gcmEncrypt(key, iv, new Uint8Array(0), aad).tag;
}
