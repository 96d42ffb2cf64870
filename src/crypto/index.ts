/** Public API of the crypto layer: per-SA ESP and AH transforms (contract in ./types.ts). */
export { createEspTransform, desBackend, CRYPTO_BACKEND, type EspImplOptions } from './esp.js';
export { createAhTransform } from './ah.js';
export { OpenResult, type AhParams, type AhTransform, type EspParams, type EspTransform } from './types.js';
export { ENCRYPTION, INTEGRITY, NDIS_ENCRYPTION, NDIS_INTEGRITY, encryptionAlgorithm, integrityAlgorithm } from './registry.js';

import { nativeInfo } from './native.js';
import { desBackend } from './esp.js';
/** Which crypto paths are active, for `ipsecov2 --version`. */
export function cryptoBackendInfo(): string {
  return `crypto: ${nativeInfo()}; DES: ${desBackend() === 'openssl' ? 'OpenSSL' : 'pure JS (OpenSSL 3 legacy provider not loaded)'}; OpenSSL ${process.versions.openssl}`;
}
