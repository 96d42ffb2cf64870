/**
 * The contract between the engines (offload/rx.ts, offload/tx.ts) and the crypto layer.
 * A transform is created ONCE per SA (keys, cipher contexts, HMAC pads prepared then) and is
 * then a pure function of the bytes it is given: no SA state, no sequence/replay logic.
 * Workers create the same transforms from the same serialisable parameters.
 */

/** Result of opening (verify + decrypt) an ESP packet. */
export const OpenResult = {
  Ok: 0,
  /** ICV / GCM tag mismatch. */
  AuthFailed: 1,
  /** Too short for IV + ICV, or ciphertext not a multiple of the block size. */
  BadLength: 2,
  /** Internal fault (key, algorithm, OpenSSL error). */
  Internal: 3,
} as const;
export type OpenResult = (typeof OpenResult)[keyof typeof OpenResult];

/** Serialisable ESP parameters (a subset of sa/model.ts EspSa). */
export interface EspParams {
  encryption: string;
  encryptionKey: Uint8Array;
  integrity: string;
  integrityKey: Uint8Array;
  icvLength: number;
}

export interface AhParams {
  integrity: string;
  integrityKey: Uint8Array;
  icvLength: number;
}

export interface EspTransform {
  /** Explicit IV bytes carried after the sequence number (0 for NULL / NULL+HMAC). */
  readonly ivLen: number;
  /** ICV bytes after the trailer. */
  readonly icvLen: number;
  /** Block size the ciphertext must be a multiple of (1 for stream/AEAD/null). */
  readonly blockSize: number;
  /** Unit to pad payload||padLen||nextHeader to on send: max(4, blockSize). */
  readonly padUnit: number;
  /**
   * Verify and decrypt in place. `buf[start..end)` is the ESP packet from the SPI through the
   * ICV. `seqHigh` is the ESN high 32 bits, or -1 when the SA does not use ESN.
   * On Ok the plaintext (payload || padding || padLen || nextHeader) is at
   * [start + 8 + ivLen, end - icvLen). On any failure the bytes are left untouched.
   * ICV comparison is constant-time.
   */
  open(buf: Uint8Array, start: number, end: number, seqHigh: number): OpenResult;
  /**
   * Encrypt in place and write the ICV. `buf[start..end)` holds SPI, Seq, IV (already written by
   * the caller), the plaintext with trailer, and icvLen bytes of space for the ICV.
   */
  seal(buf: Uint8Array, start: number, end: number, seqHigh: number): void;
}

export interface AhTransform {
  /** Bytes of the AH ICV field before alignment padding (HMAC: truncated MAC; GMAC: see crypto/ah). */
  readonly icvLen: number;
  /** Explicit IV bytes that precede the tag inside the ICV field (8 for GMAC, else 0). */
  readonly ivLen: number;
  /**
   * Compute the ICV over `chunks` (the ICV input built by the engine with mutable fields and the
   * ICV field zeroed, in order), with the ESN high bits appended when seqHigh >= 0.
   * `iv` is the explicit IV for GMAC (ignored otherwise). Writes icvLen bytes at out[outOff].
   */
  compute(chunks: readonly Uint8Array[], seqHigh: number, iv: Uint8Array | null, out: Uint8Array, outOff: number): void;
  /** Same computation, constant-time compare against `expected` (icvLen bytes). */
  verify(chunks: readonly Uint8Array[], seqHigh: number, iv: Uint8Array | null, expected: Uint8Array): boolean;
}
