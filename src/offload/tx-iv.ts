/**
 * IVs for the send path (spec/ipsecov2.md §9 item 14: `tx` does the host's framing, so it makes
 * the IVs). Two kinds of algorithm, two rules:
 *
 *  - CBC ciphers (DES, 3DES, AES-CBC): the IV must be unpredictable (RFC 3602 §3, RFC 2451 §3).
 *    Default: bytes of the system's CSPRNG (crypto.randomFillSync, drawn in blocks into a pool).
 *  - Counter-based algorithms (AES-GCM RFC 4106 §3.1, AES-GMAC RFC 4543 §3.1, AES-CTR RFC 3686
 *    §3.1, ChaCha20-Poly1305 RFC 7634 §2): the IV must never repeat under a key, need not be
 *    secret. IV = 64-bit sequence number XOR a per-SA 64-bit salt (Linux's "seqiv" idea): unique
 *    for every packet of the SA by construction. Default salt: random per run and SA.
 *
 * `--iv-seed HEX` (golden files only): every IV becomes a deterministic function of the seed, the
 * SA (OffloadHandle and SPI) and the 64-bit sequence number:
 *  - CBC: IV = first ivLen bytes of HMAC-SHA-256(seed, handle(4) || spi(4) || seqHigh(4) || seqLow(4));
 *  - counter-based: IV = seq64 XOR salt, salt = first 8 bytes of
 *    HMAC-SHA-256(seed, "ctr-salt" || handle(4) || spi(4)).
 * All of it runs in `prepare` on the main thread, in input order, so the output does not depend
 * on batching or on the number of workers.
 */
import { createHmac, randomFillSync } from 'node:crypto';

const POOL_BYTES = 1 << 14;

export class TxIvSource {
  private readonly seed: Buffer | null;
  private readonly pool = Buffer.alloc(POOL_BYTES);
  private poolPos = POOL_BYTES;
  private readonly msg = Buffer.alloc(16);

  /** @param seedHex `--iv-seed` (hex, optional 0x, odd length gets a leading 0), or null = random. */
  constructor(seedHex: string | null) {
    if (seedHex === null) this.seed = null;
    else {
      let h = seedHex.trim().replace(/^0x/i, '');
      if (!/^[0-9a-fA-F]*$/.test(h)) throw new RangeError(`--iv-seed: expected hex, got '${seedHex}'`);
      if (h.length % 2) h = '0' + h;
      this.seed = Buffer.from(h, 'hex');
    }
  }

  get seeded(): boolean {
    return this.seed !== null;
  }

  /** The per-SA salt of counter-based IVs (8 bytes), made once per SA member. */
  salt(handle: number, spi: number): Buffer {
    const s = Buffer.alloc(8);
    if (this.seed === null) {
      randomFillSync(s);
      return s;
    }
    const m = Buffer.alloc(16);
    m.write('ctr-salt', 0, 'latin1');
    m.writeUInt32BE(handle >>> 0, 8);
    m.writeUInt32BE(spi >>> 0, 12);
    createHmac('sha256', this.seed).update(m).digest().copy(s, 0, 0, 8);
    return s;
  }

  /** Counter-based IV: seq64 XOR salt, 8 bytes at d[o]. */
  counterIv(d: Uint8Array, o: number, salt: Uint8Array, seqHigh: number, seqLow: number): void {
    d[o] = (seqHigh >>> 24) ^ salt[0]!;
    d[o + 1] = ((seqHigh >>> 16) & 0xff) ^ salt[1]!;
    d[o + 2] = ((seqHigh >>> 8) & 0xff) ^ salt[2]!;
    d[o + 3] = (seqHigh & 0xff) ^ salt[3]!;
    d[o + 4] = (seqLow >>> 24) ^ salt[4]!;
    d[o + 5] = ((seqLow >>> 16) & 0xff) ^ salt[5]!;
    d[o + 6] = ((seqLow >>> 8) & 0xff) ^ salt[6]!;
    d[o + 7] = (seqLow & 0xff) ^ salt[7]!;
  }

  /** Unpredictable (CBC) IV of `len` bytes at d[o]. */
  randomIv(d: Uint8Array, o: number, len: number, handle: number, spi: number, seqHigh: number, seqLow: number): void {
    if (this.seed !== null) {
      const m = this.msg;
      m.writeUInt32BE(handle >>> 0, 0);
      m.writeUInt32BE(spi >>> 0, 4);
      m.writeUInt32BE(seqHigh >>> 0, 8);
      m.writeUInt32BE(seqLow >>> 0, 12);
      const h = createHmac('sha256', this.seed).update(m).digest();
      d.set(h.subarray(0, len), o);
      return;
    }
    if (this.poolPos + len > POOL_BYTES) {
      randomFillSync(this.pool);
      this.poolPos = 0;
    }
    d.set(this.pool.subarray(this.poolPos, this.poolPos + len), o);
    this.poolPos += len;
  }
}
