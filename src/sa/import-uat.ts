/**
 * Import Wireshark `esp_sa` UAT records (8-field form of Wireshark ≤ 4.0, 10-field form with
 * SN length and ESN high bits of current versions; see wireshark.ts) and strongSwan save-keys
 * output, which is the 8-field form with two quirks.
 *
 * strongSwan (src/libcharon/plugins/save_keys/save_keys_listener.c, `esp_encr` / `esp_integ` /
 * `esp_names` / `child_derived_keys`): it writes AES-GCM as the legacy "AES-GCM [RFC4106]" with
 * the ICV length smuggled into the authentication field as "ANY 64|128 bit authentication [no
 * checking]" and an empty ("0x") authentication key. Current Wireshark rejects that pair
 * ("AES-GCM encryption can only be used with NULL authentication"), and with NULL the legacy
 * entry has no ICV. We map it to aes-gcm-<bits> with icvLength from the ANY field. Because
 * `esp_names` looks up the ICV length by the *encryption* id, ICV12 is written as 64 bits just
 * like ICV8: "ANY 64" is imported as icvLength 8 with a warning. Older releases wrote 3DES as
 * "TripleDes-CBC", accepted here. It writes one line per direction of each CHILD_SA with the
 * IKE SA's endpoints (wrong under MOBIKE or when ESP and IKE endpoints differ), ESP only.
 */

import { ENCRYPTION, INTEGRITY } from '../crypto/registry.js';
import { parseIp } from './addr.js';
import type { ImportedSa } from './import.js';
import { WS_AUTHENTICATION, WS_ENCRYPTION, parseUatLine, uatKeyBytes } from './wireshark.js';

/** Parse an esp_sa file (Wireshark or strongSwan flavour). */
export function importUat(text: string, flavour: 'wireshark' | 'strongswan', warn: (origin: string, msg: string) => void): ImportedSa[] {
  const out: ImportedSa[] = [];
  const anyAddress = new Set<string>();
  text.split(/\r?\n/).forEach((line, i) => {
    const origin = `line ${i + 1}`;
    const fields = parseUatLine(line);
    if (fields === null) return;
    if (!Array.isArray(fields)) {
      warn(origin, `not an esp_sa record (${fields.error}); skipped`);
      return;
    }
    if (fields.length !== 8 && fields.length !== 10) {
      warn(origin, `${fields.length} fields; an esp_sa record has 8 (Wireshark ≤ 4.0, strongSwan) or 10 (with SN and ESN high bits); skipped`);
      return;
    }
    const sa = uatRecord(fields, origin, flavour, warn);
    if (!sa) return;
    if (!sa.src || !sa.dst) {
      // The same SA listed once per protocol ("IPv4" and "IPv6" with "*" addresses, as
      // Wireshark ≤ 4.0 needs) is one SA here.
      const id = [sa.spi, sa.encryption, sa.encryptionKey?.toString('hex'), sa.integrity, sa.integrityKey?.toString('hex'), sa.icvLength].join('|');
      if (anyAddress.has(id)) return;
      anyAddress.add(id);
    }
    out.push(sa);
  });
  return out;
}

/** Address field → exact address text, or null for wildcards/masks (with a warning). */
function address(v: string, what: string, origin: string, warn: (o: string, m: string) => void): string | null | undefined {
  const a = v.replace(/\[\d+\]$/, '').trim(); // strongSwan %H may add [port]
  if (a === '*' || a === '') return null;
  if (parseIp(a)) return a;
  warn(origin, `${what} address "${a}" has wildcards or a mask; the SA is imported without addresses (matches any)`);
  return null;
}

function uatRecord(f: string[], origin: string, flavour: 'wireshark' | 'strongswan', warn: (o: string, m: string) => void): ImportedSa | null {
  const [, srcF, dstF, spiF, encF, encKeyF, authF, authKeyF, snF, highF] = f;
  if (!/^0x[0-9a-f]{1,8}$/i.test(spiF.trim())) {
    warn(origin, `SPI "${spiF}" is not one exact 0x... value (wildcards cannot be imported); skipped`);
    return null;
  }
  const spi = parseInt(spiF.trim(), 16) >>> 0;
  const label = `SPI 0x${spi.toString(16).padStart(8, '0')}`;
  if (spi <= 255) {
    warn(origin, `${label}: SPIs 0..255 are reserved; skipped`);
    return null;
  }
  const src = address(srcF, 'source', origin, warn);
  const dst = address(dstF, 'destination', origin, warn);
  const encInfo = WS_ENCRYPTION[encF];
  const authInfo = WS_AUTHENTICATION[authF];
  if (!encInfo) {
    warn(origin, `${label}: unknown encryption "${encF}"; skipped`);
    return null;
  }
  if (!encInfo.family) {
    warn(origin, `${label}: ${encInfo.note}; skipped`);
    return null;
  }
  if (!authInfo) {
    warn(origin, `${label}: unknown authentication "${authF}"; skipped`);
    return null;
  }
  const encKey = uatKeyBytes(encKeyF);
  const authKey = uatKeyBytes(authKeyF);
  if (!Buffer.isBuffer(encKey) || !Buffer.isBuffer(authKey)) {
    warn(origin, `${label}: ${(Buffer.isBuffer(encKey) ? (authKey as { error: string }) : encKey).error}; skipped`);
    return null;
  }
  const sa: ImportedSa = { origin, proto: 'esp', spi, src: src ?? null, dst: dst ?? null };
  if (!src || !dst) {
    sa.src = null;
    sa.dst = null;
  }
  const fam = encInfo.family;
  const aead = fam === 'aes-gcm' || fam === 'chacha20-poly1305';
  const salt = fam === 'aes-gcm' || fam === 'aes-ctr' || fam === 'chacha20-poly1305' ? 4 : 0;
  const name = fam === 'aes-cbc' || fam === 'aes-ctr' || fam === 'aes-gcm' ? `${fam}-${(encKey.length - salt) * 8}` : fam;
  if (!ENCRYPTION[name]) {
    warn(origin, `${label}: ${encF} with a ${encKey.length}-byte key matches no known key size${salt ? ` (key + ${salt}-byte salt)` : ''}; skipped`);
    return null;
  }
  sa.encryption = name;
  sa.encryptionKey = encKey;
  if (aead) {
    let icv = encInfo.icv;
    if (icv === undefined) {
      // Legacy "AES-GCM [RFC4106]": strongSwan puts the ICV length in the ANY field.
      if (authInfo.anyBits) {
        icv = authInfo.anyBits / 8;
        if (authInfo.anyBits === 64 && flavour === 'strongswan') warn(origin, `${label}: strongSwan writes "ANY 64 bit" for both 8- and 12-octet GCM ICVs; assumed 8 (set icvLength: 12 if ICVs fail)`);
      } else {
        icv = 16;
        warn(origin, `${label}: legacy "AES-GCM [RFC4106]" says no ICV length; assumed 16`);
      }
    } else if (authInfo.integrity !== 'none') warn(origin, `${label}: ${encF} is combined mode; authentication "${authF}" ignored`);
    if (![8, 12, 16].includes(icv) || (fam === 'chacha20-poly1305' && icv !== 16)) {
      warn(origin, `${label}: ICV of ${icv} bytes not allowed for ${name}; skipped`);
      return null;
    }
    sa.icvLength = icv;
  } else if (authInfo.anyBits) {
    warn(origin, `${label}: "${authF}" names no algorithm (Wireshark does not check it), so the ICV cannot be verified or built; skipped — give the integrity algorithm and key by hand`);
    return null;
  } else if (!authInfo.integrity) {
    warn(origin, `${label}: ${authInfo.note}; skipped`);
    return null;
  } else {
    sa.integrity = authInfo.integrity;
    if (authInfo.integrity !== 'none') {
      const want = INTEGRITY[authInfo.integrity].keyLen;
      if (authKey.length !== want) warn(origin, `${label}: ${authInfo.integrity} key is ${authKey.length} bytes, the SA file requires ${want}; fix it before use`);
      sa.integrityKey = authKey;
    } else if (name === 'null') {
      warn(origin, `${label}: NULL encryption and NULL authentication protect nothing; skipped`);
      return null;
    }
  }
  if (snF !== undefined && snF === '64-bit') {
    sa.esn = true;
    const high = parseInt((highF ?? '0').replace(/^0x/i, '') || '0', 16);
    sa.sequence = { high: Number.isFinite(high) ? high >>> 0 : 0 };
  }
  return sa;
}
