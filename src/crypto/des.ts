/**
 * Single DES (FIPS 46-3) in plain TypeScript, for ESP DES-CBC (RFC 2405) when node's OpenSSL 3
 * does not offer `des-cbc` (single DES lives in OpenSSL's legacy provider, which node does not load
 * by default).
 *
 * To use OpenSSL's DES instead (esp.ts tries it first, see `desBackend()`):
 *   - `node --openssl-legacy-provider …`, or
 *   - `OPENSSL_CONF=/path/openssl.cnf` whose config activates both the `default` and the `legacy`
 *     providers (`[provider_sect] default = default_sect, legacy = legacy_sect`,
 *     `[legacy_sect] activate = 1`, `[default_sect] activate = 1`).
 *
 * Readability over speed: DES is "MUST NOT" (RFC 8221 §5) and only here to replay old captures.
 * The tables below are those of FIPS 46-3 (1-based bit numbers, bit 1 = most significant); the only
 * optimisation is that the S-boxes and the permutation P are merged once into eight 64-entry
 * tables (SP), the classic software technique, so a round is eight lookups.
 */

// FIPS 46-3, "Initial Permutation IP".
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
  62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
  57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
  61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];

// FIPS 46-3, "Inverse Initial Permutation IP^-1".
const FP = [
  40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
  38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
  36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
  34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
];

// FIPS 46-3, "E BIT-SELECTION TABLE" (kept for documentation and the self-check below; the round
// function computes the same selection with shifts).
const E = [
  32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
  16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];

// FIPS 46-3, permutation P.
const P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25];

// FIPS 46-3, S1..S8: 4 rows × 16 columns each.
const S = [
  [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
    4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
  [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
    0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
  [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
    13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
  [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
    10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
  [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
    4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
  [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
    9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
  [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
    1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
  [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
    7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
];

// FIPS 46-3 key schedule: "PERMUTED CHOICE 1", left shifts per iteration, "PERMUTED CHOICE 2".
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
  63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
  41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];

/** SP[i][v] = P(S_{i+1}(v) placed in bits 4i+1..4i+4), v the 6-bit S-box input. */
const SP: Uint32Array[] = S.map((box, i) => {
  const t = new Uint32Array(64);
  for (let v = 0; v < 64; v++) {
    // FIPS 46-3: row = first and last input bits, column = the middle four.
    const row = ((v >> 4) & 2) | (v & 1);
    const col = (v >> 1) & 15;
    const s = box[row * 16 + col]! << (28 - 4 * i); // S output at bits 4i+1..4i+4 of the 32-bit word
    let out = 0;
    for (let j = 0; j < 32; j++) if ((s >>> (32 - P[j]!)) & 1) out |= 1 << (31 - j);
    t[v] = out >>> 0;
  }
  return t;
});

/** Permute a 64-bit block held as two 32-bit halves with a 1-based FIPS table; returns [hi, lo]. */
function permute64(hi: number, lo: number, table: readonly number[]): [number, number] {
  let oh = 0;
  let ol = 0;
  for (let j = 0; j < 64; j++) {
    const b = table[j]! - 1;
    const bit = b < 32 ? (hi >>> (31 - b)) & 1 : (lo >>> (63 - b)) & 1;
    if (j < 32) oh |= bit << (31 - j);
    else ol |= bit << (63 - j);
  }
  return [oh >>> 0, ol >>> 0];
}

/** 16 round keys, each as eight 6-bit values (K_n bits 6i+1..6i+6 at index 8n+i). */
function keySchedule(key: Uint8Array): Uint8Array {
  // PC-1 selects 56 of the 64 key bits (the parity bits 8, 16, … are ignored; FIPS 46-3).
  const bit = (n: number) => (key[(n - 1) >> 3]! >> (7 - ((n - 1) & 7))) & 1;
  const cd = PC1.map(bit);
  const ks = new Uint8Array(16 * 8);
  for (let round = 0; round < 16; round++) {
    for (let s = 0; s < SHIFTS[round]!; s++) {
      // Rotate C (bits 0..27) and D (bits 28..55) left independently.
      cd.splice(0, 28, ...cd.slice(1, 28), cd[0]!);
      cd.splice(28, 28, ...cd.slice(29, 56), cd[28]!);
    }
    for (let i = 0; i < 8; i++) {
      let v = 0;
      for (let j = 0; j < 6; j++) v = (v << 1) | cd[PC2[6 * i + j]! - 1]!;
      ks[round * 8 + i] = v;
    }
  }
  return ks;
}

/** The cipher function f(R, K) of FIPS 46-3 with E done by shifts (same selection as table E). */
function f(r: number, ks: Uint8Array, k: number): number {
  // E chunk i covers bits 4i .. 4i+5 (1-based, cyclic: bit 0 = bit 32). Rotate right by one so
  // chunk i is at bit offsets 4i+1 .. 4i+6 of the rotated word.
  const x = ((r >>> 1) | (r << 31)) >>> 0;
  return (
    SP[0]![(x >>> 26) ^ ks[k]!]! |
    SP[1]![((x >>> 22) & 63) ^ ks[k + 1]!]! |
    SP[2]![((x >>> 18) & 63) ^ ks[k + 2]!]! |
    SP[3]![((x >>> 14) & 63) ^ ks[k + 3]!]! |
    SP[4]![((x >>> 10) & 63) ^ ks[k + 4]!]! |
    SP[5]![((x >>> 6) & 63) ^ ks[k + 5]!]! |
    SP[6]![((x >>> 2) & 63) ^ ks[k + 6]!]! |
    SP[7]![(((x & 15) << 2) | (x >>> 30)) ^ ks[k + 7]!]!
  );
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/**
 * One DES key: encrypt/decrypt single 8-byte blocks and CBC runs in place.
 * @throws RangeError when the key is not 8 bytes.
 */
export class Des {
  private readonly ks: Uint8Array;

  constructor(key: Uint8Array) {
    if (key.length !== 8) throw new RangeError(`DES key: expected 8 bytes, got length=${key.length}`);
    this.ks = keySchedule(key);
  }

  /** Encrypt (decrypt = false) or decrypt one block hi||lo; returns the output halves. */
  private block(hi: number, lo: number, decrypt: boolean): [number, number] {
    let [l, r] = permute64(hi, lo, IP);
    for (let round = 0; round < 16; round++) {
      // Decryption applies the same rounds with K16 … K1 (FIPS 46-3, "Deciphering").
      const k = 8 * (decrypt ? 15 - round : round);
      const t = (l ^ f(r, this.ks, k)) >>> 0;
      l = r;
      r = t;
    }
    // The output of the last round is R16 L16 (the halves are not swapped back) before IP^-1.
    return permute64(r, l, FP);
  }

  /** ECB: encrypt or decrypt the 8-byte block at `off` in place. */
  ecb(buf: Uint8Array, off: number, decrypt: boolean): void {
    const [h, l] = this.block(readU32(buf, off), readU32(buf, off + 4), decrypt);
    writeU32(buf, off, h);
    writeU32(buf, off + 4, l);
  }

  /**
   * CBC encrypt in place: `buf[off..end)` (a multiple of 8) with the IV at `buf[ivOff..ivOff+8)`.
   * @throws RangeError when the length is not a multiple of 8.
   */
  cbcEncrypt(buf: Uint8Array, ivOff: number, off: number, end: number): void {
    if ((end - off) % 8 !== 0) throw new RangeError(`DES-CBC: length ${end - off} is not a multiple of 8`);
    let ph = readU32(buf, ivOff);
    let pl = readU32(buf, ivOff + 4);
    for (let o = off; o < end; o += 8) {
      [ph, pl] = this.block((readU32(buf, o) ^ ph) >>> 0, (readU32(buf, o + 4) ^ pl) >>> 0, false);
      writeU32(buf, o, ph);
      writeU32(buf, o + 4, pl);
    }
  }

  /**
   * CBC decrypt in place: `buf[off..end)` (a multiple of 8) with the IV at `buf[ivOff..ivOff+8)`.
   * @throws RangeError when the length is not a multiple of 8.
   */
  cbcDecrypt(buf: Uint8Array, ivOff: number, off: number, end: number): void {
    if ((end - off) % 8 !== 0) throw new RangeError(`DES-CBC: length ${end - off} is not a multiple of 8`);
    let ph = readU32(buf, ivOff);
    let pl = readU32(buf, ivOff + 4);
    for (let o = off; o < end; o += 8) {
      const ch = readU32(buf, o);
      const cl = readU32(buf, o + 4);
      const [h, l] = this.block(ch, cl, true);
      writeU32(buf, o, (h ^ ph) >>> 0);
      writeU32(buf, o + 4, (l ^ pl) >>> 0);
      ph = ch;
      pl = cl;
    }
  }
}

/** Internals for tests only. */
export const __TESTS = Object.freeze({ E, IP, FP, permute64 });
