/**
 * Algorithms are data. One entry per algorithm name of the SA file (spec/sa-file.md), with the
 * NDIS identifier (spec/ipsecov2.md §2.2), the IANA IKEv2 transform id, the names other tools use
 * (ip xfrm, Wireshark's esp_sa UAT, strongSwan) and the sizes the engines need. Handlers are
 * chosen from these entries once per SA (crypto/esp.ts, crypto/ah.ts), never per packet.
 */

export type Rfc8221 = 'MUST' | 'MUST-' | 'SHOULD' | 'SHOULD NOT' | 'MAY' | 'MUST NOT' | 'n/a';

export interface EncryptionAlgorithm {
  name: string;
  /** IPSEC_OFFLOAD_V2_ENCRYPTION_* value, or 0 when outside the NDIS set (profile `full` only). */
  ndisId: number;
  /** IKEv2 transform type 1 id (IANA). */
  ikev2Id: number;
  /** Cipher key bytes, without salt. */
  keyLen: number;
  /** Salt bytes appended to the key in the SA file (GCM, CTR, ChaCha20-Poly1305). */
  saltLen: number;
  /** Explicit IV bytes in each packet. */
  ivLen: number;
  /** Block size the ciphertext must be a multiple of (1 = none). */
  blockSize: number;
  /** Combined mode (AEAD): integrity must be none, the ICV comes from the cipher. */
  aead: boolean;
  /** Allowed ICV lengths for AEAD (first = default), [] otherwise. */
  icvLengths: number[];
  /** OpenSSL / node:crypto cipher name ('' for null; DES is pure JS, see crypto/des.ts). */
  openssl: string;
  status: Rfc8221;
  rfc: string;
}

export interface IntegrityAlgorithm {
  name: string;
  /** IPSEC_OFFLOAD_V2_AUTHENTICATION_* value, or 0 outside the NDIS set. */
  ndisId: number;
  /** IKEv2 transform type 3 id (IANA). */
  ikev2Id: number;
  keyLen: number;
  /** GMAC: 4-byte salt after the key. */
  saltLen: number;
  /** ICV bytes (truncated MAC length). */
  icvLen: number;
  kind: 'hmac' | 'gmac' | 'none';
  /** node:crypto hash name for HMAC, AES-GCM cipher name for GMAC. */
  openssl: string;
  status: Rfc8221;
  rfc: string;
}

export const ENCRYPTION: Readonly<Record<string, EncryptionAlgorithm>> = Object.freeze({
  null: { name: 'null', ndisId: 0x1, ikev2Id: 11, keyLen: 0, saltLen: 0, ivLen: 0, blockSize: 1, aead: false, icvLengths: [], openssl: '', status: 'MUST', rfc: 'RFC 2410' },
  'des-cbc': { name: 'des-cbc', ndisId: 0x2, ikev2Id: 2, keyLen: 8, saltLen: 0, ivLen: 8, blockSize: 8, aead: false, icvLengths: [], openssl: 'des-cbc', status: 'MUST NOT', rfc: 'RFC 2405' },
  '3des-cbc': { name: '3des-cbc', ndisId: 0x4, ikev2Id: 3, keyLen: 24, saltLen: 0, ivLen: 8, blockSize: 8, aead: false, icvLengths: [], openssl: 'des-ede3-cbc', status: 'SHOULD NOT', rfc: 'RFC 2451' },
  'aes-gcm-128': { name: 'aes-gcm-128', ndisId: 0x8, ikev2Id: 20, keyLen: 16, saltLen: 4, ivLen: 8, blockSize: 1, aead: true, icvLengths: [16, 12, 8], openssl: 'aes-128-gcm', status: 'MUST', rfc: 'RFC 4106' },
  'aes-gcm-192': { name: 'aes-gcm-192', ndisId: 0x10, ikev2Id: 20, keyLen: 24, saltLen: 4, ivLen: 8, blockSize: 1, aead: true, icvLengths: [16, 12, 8], openssl: 'aes-192-gcm', status: 'MAY', rfc: 'RFC 4106' },
  'aes-gcm-256': { name: 'aes-gcm-256', ndisId: 0x20, ikev2Id: 20, keyLen: 32, saltLen: 4, ivLen: 8, blockSize: 1, aead: true, icvLengths: [16, 12, 8], openssl: 'aes-256-gcm', status: 'MUST', rfc: 'RFC 4106' },
  'aes-cbc-128': { name: 'aes-cbc-128', ndisId: 0x40, ikev2Id: 12, keyLen: 16, saltLen: 0, ivLen: 16, blockSize: 16, aead: false, icvLengths: [], openssl: 'aes-128-cbc', status: 'MUST', rfc: 'RFC 3602' },
  'aes-cbc-192': { name: 'aes-cbc-192', ndisId: 0x80, ikev2Id: 12, keyLen: 24, saltLen: 0, ivLen: 16, blockSize: 16, aead: false, icvLengths: [], openssl: 'aes-192-cbc', status: 'MAY', rfc: 'RFC 3602' },
  'aes-cbc-256': { name: 'aes-cbc-256', ndisId: 0x100, ikev2Id: 12, keyLen: 32, saltLen: 0, ivLen: 16, blockSize: 16, aead: false, icvLengths: [], openssl: 'aes-256-cbc', status: 'MUST', rfc: 'RFC 3602' },
  // Profile `full` only (no NDIS identifier).
  'aes-ctr-128': { name: 'aes-ctr-128', ndisId: 0, ikev2Id: 13, keyLen: 16, saltLen: 4, ivLen: 8, blockSize: 1, aead: false, icvLengths: [], openssl: 'aes-128-ctr', status: 'MAY', rfc: 'RFC 3686' },
  'aes-ctr-192': { name: 'aes-ctr-192', ndisId: 0, ikev2Id: 13, keyLen: 24, saltLen: 4, ivLen: 8, blockSize: 1, aead: false, icvLengths: [], openssl: 'aes-192-ctr', status: 'MAY', rfc: 'RFC 3686' },
  'aes-ctr-256': { name: 'aes-ctr-256', ndisId: 0, ikev2Id: 13, keyLen: 32, saltLen: 4, ivLen: 8, blockSize: 1, aead: false, icvLengths: [], openssl: 'aes-256-ctr', status: 'MAY', rfc: 'RFC 3686' },
  'chacha20-poly1305': { name: 'chacha20-poly1305', ndisId: 0, ikev2Id: 28, keyLen: 32, saltLen: 4, ivLen: 8, blockSize: 1, aead: true, icvLengths: [16], openssl: 'chacha20-poly1305', status: 'SHOULD', rfc: 'RFC 7634' },
});

export const INTEGRITY: Readonly<Record<string, IntegrityAlgorithm>> = Object.freeze({
  none: { name: 'none', ndisId: 0, ikev2Id: 0, keyLen: 0, saltLen: 0, icvLen: 0, kind: 'none', openssl: '', status: 'n/a', rfc: '' },
  'hmac-md5-96': { name: 'hmac-md5-96', ndisId: 0x1, ikev2Id: 1, keyLen: 16, saltLen: 0, icvLen: 12, kind: 'hmac', openssl: 'md5', status: 'MUST NOT', rfc: 'RFC 2403' },
  'hmac-sha1-96': { name: 'hmac-sha1-96', ndisId: 0x2, ikev2Id: 2, keyLen: 20, saltLen: 0, icvLen: 12, kind: 'hmac', openssl: 'sha1', status: 'MUST-', rfc: 'RFC 2404' },
  'hmac-sha256-128': { name: 'hmac-sha256-128', ndisId: 0x4, ikev2Id: 12, keyLen: 32, saltLen: 0, icvLen: 16, kind: 'hmac', openssl: 'sha256', status: 'MUST', rfc: 'RFC 4868' },
  'aes-gmac-128': { name: 'aes-gmac-128', ndisId: 0x8, ikev2Id: 9, keyLen: 16, saltLen: 4, icvLen: 16, kind: 'gmac', openssl: 'aes-128-gcm', status: 'MAY', rfc: 'RFC 4543' },
  'aes-gmac-192': { name: 'aes-gmac-192', ndisId: 0x10, ikev2Id: 10, keyLen: 24, saltLen: 4, icvLen: 16, kind: 'gmac', openssl: 'aes-192-gcm', status: 'MAY', rfc: 'RFC 4543' },
  'aes-gmac-256': { name: 'aes-gmac-256', ndisId: 0x20, ikev2Id: 11, keyLen: 32, saltLen: 4, icvLen: 16, kind: 'gmac', openssl: 'aes-256-gcm', status: 'MAY', rfc: 'RFC 4543' },
  // Profile `full` only.
  'hmac-sha384-192': { name: 'hmac-sha384-192', ndisId: 0, ikev2Id: 13, keyLen: 48, saltLen: 0, icvLen: 24, kind: 'hmac', openssl: 'sha384', status: 'SHOULD', rfc: 'RFC 4868' },
  'hmac-sha512-256': { name: 'hmac-sha512-256', ndisId: 0, ikev2Id: 14, keyLen: 64, saltLen: 0, icvLen: 32, kind: 'hmac', openssl: 'sha512', status: 'SHOULD', rfc: 'RFC 4868' },
});

/** Encryption names of the NDIS set (profile `ndis`). */
export const NDIS_ENCRYPTION: readonly string[] = Object.values(ENCRYPTION).filter((a) => a.ndisId !== 0).map((a) => a.name);
/** Integrity names of the NDIS set (profile `ndis`; 'none' is implicit). */
export const NDIS_INTEGRITY: readonly string[] = Object.values(INTEGRITY).filter((a) => a.ndisId !== 0).map((a) => a.name);

/** Look up an encryption algorithm by SA-file name; accepts 'none' as an alias of 'null'. */
export function encryptionAlgorithm(name: string): EncryptionAlgorithm | undefined {
  return ENCRYPTION[name === 'none' ? 'null' : name];
}

export function integrityAlgorithm(name: string): IntegrityAlgorithm | undefined {
  return INTEGRITY[name];
}
