/**
 * The per-frame out-of-band record (spec/cli.md): the NDIS_IPSEC_OFFLOAD_V2_NET_BUFFER_LIST_INFO
 * a miniport would attach, plus the host model's replay verdict and a human reason.
 * Keys never appear here.
 */

/** CryptoStatus values of ndis.h (spec/ipsecov2.md §5.2). Not Linux's bit flags. */
import { hex32 } from '../sa/bundle.js';

export const CryptoStatus = {
  CRYPTO_SUCCESS: 0,
  CRYPTO_GENERIC_ERROR: 1,
  CRYPTO_TRANSPORT_AH_AUTH_FAILED: 2,
  CRYPTO_TRANSPORT_ESP_AUTH_FAILED: 3,
  CRYPTO_TUNNEL_AH_AUTH_FAILED: 4,
  CRYPTO_TUNNEL_ESP_AUTH_FAILED: 5,
  CRYPTO_INVALID_PACKET_SYNTAX: 6,
  CRYPTO_INVALID_PROTOCOL: 7,
} as const;
export type CryptoStatusCode = (typeof CryptoStatus)[keyof typeof CryptoStatus];
export const CRYPTO_STATUS_NAMES: readonly string[] = Object.keys(CryptoStatus);

export type TxStatus = 'encrypted' | 'bypass' | 'not-offloaded' | 'seq-exhausted' | 'oversize' | 'error';

/** One OOB record. Reused per frame by the engines; serialised by oobJson. */
export class OobRecord {
  frame = 0;
  ts = '';
  path: 'rx' | 'tx' = 'rx';
  handle: number | null = null;
  tunnelHandle: number | null = null;
  sa: string | null = null;
  spi: number | null = null;
  seq: number | null = null;
  seqHigh: number | null = null;
  cryptoDone = 0;
  nextCryptoDone = 0;
  saDeleteReq = 0;
  cryptoStatus: CryptoStatusCode = 0;
  replay: 'ok' | 'duplicate' | 'too-old' | 'off' | null = null;
  txStatus: TxStatus = 'bypass';
  detail: string | null = null;

  reset(frame: number, ts: string, path: 'rx' | 'tx'): void {
    this.frame = frame;
    this.ts = ts;
    this.path = path;
    this.handle = null;
    this.tunnelHandle = null;
    this.sa = null;
    this.spi = null;
    this.seq = null;
    this.seqHigh = null;
    this.cryptoDone = 0;
    this.nextCryptoDone = 0;
    this.saDeleteReq = 0;
    this.cryptoStatus = 0;
    this.replay = null;
    this.txStatus = 'bypass';
    this.detail = null;
  }

  /** The Receive ULONG: SaDeleteReq | CryptoDone<<1 | NextCryptoDone<<2 | CryptoStatus<<16. */
  packedReceive(): number {
    return (this.saDeleteReq | (this.cryptoDone << 1) | (this.nextCryptoDone << 2) | (this.cryptoStatus << 16)) >>> 0;
  }
}

export { hex32 };

function str(s: string | null): string {
  return s === null ? 'null' : JSON.stringify(s);
}

/** One JSON line (no newline), field order as in spec/cli.md. */
export function oobJson(r: OobRecord): string {
  if (r.path === 'rx') {
    return `{"frame":${r.frame},"ts":"${r.ts}","path":"rx","handle":${r.handle},"sa":${str(r.sa)},` +
      `"spi":${r.spi === null ? 'null' : `"${hex32(r.spi)}"`},"seq":${r.seq},"seqHigh":${r.seqHigh},` +
      `"cryptoDone":${r.cryptoDone},"nextCryptoDone":${r.nextCryptoDone},"saDeleteReq":${r.saDeleteReq},` +
      `"cryptoStatus":"${CRYPTO_STATUS_NAMES[r.cryptoStatus]}","cryptoStatusCode":${r.cryptoStatus},` +
      `"replay":${r.replay === null ? 'null' : `"${r.replay}"`},"detail":${str(r.detail)}}`;
  }
  return `{"frame":${r.frame},"ts":"${r.ts}","path":"tx","handle":${r.handle},"tunnelHandle":${r.tunnelHandle},` +
    `"sa":${str(r.sa)},"spi":${r.spi === null ? 'null' : `"${hex32(r.spi)}"`},"seq":${r.seq},"seqHigh":${r.seqHigh},` +
    `"status":"${r.txStatus}","detail":${str(r.detail)}}`;
}

/** Short packet comment for pcapng output (what Wireshark shows as frame.comment). */
export function oobComment(r: OobRecord): string {
  let s: string;
  if (r.path === 'rx') {
    s = `ipsecov2 rx: ${CRYPTO_STATUS_NAMES[r.cryptoStatus]} cryptoDone=${r.cryptoDone} nextCryptoDone=${r.nextCryptoDone} saDeleteReq=${r.saDeleteReq}`;
    if (r.sa !== null) s += ` sa=${r.sa} handle=${r.handle}`;
    if (r.spi !== null) s += ` spi=${hex32(r.spi)} seq=${r.seq}`;
    if (r.replay !== null) s += ` replay=${r.replay}`;
  } else {
    s = `ipsecov2 tx: ${r.txStatus}`;
    if (r.sa !== null) s += ` sa=${r.sa} handle=${r.handle}`;
    if (r.tunnelHandle !== null) s += ` tunnelHandle=${r.tunnelHandle}`;
    if (r.spi !== null) s += ` spi=${hex32(r.spi)} seq=${r.seq}`;
  }
  if (r.detail !== null) s += ` (${r.detail})`;
  return s;
}
