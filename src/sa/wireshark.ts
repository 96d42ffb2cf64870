/**
 * Wireshark's `esp_sa` UAT ("ESP SAs" table: profile file `esp_sa`, or `-o uat:esp_sa:...`):
 * record syntax and the algorithm strings, shared by the importer and the exporter.
 *
 * Source: wireshark/wireshark `epan/dissectors/packet-ipsec.c` (`esp_encryption_type_vals`,
 * `esp_authentication_type_vals`, `esp_uat_flds`, `compute_ascii_key`), read from the
 * current-source mirror 1g4-mirror/wireshark @1134444c and the 4.0-era copy. Fields, in order:
 * Protocol ("IPv4" | "IPv6" | "Any"), Src IP, Dest IP, SPI, Encryption, Encryption Key,
 * Authentication, Authentication Key, and — only in current versions — SN ("32-bit" |
 * "64-bit") and ESN High Bits (hex). Wireshark ≤ 4.0 has 8 fields (extra ones are dropped with a
 * warning), no ChaCha20 names and no "Any" protocol. Addresses may be `*`, use `*` per
 * octet/nibble or carry a /mask; keys are "0x" + hex, or raw ASCII otherwise. A key for
 * AES-CTR/GCM/ChaCha20 ends with the 4-byte salt. The legacy "AES-GCM [RFC4106]" entry has no
 * ICV length and must be paired with "NULL" authentication (any other value raises
 * "AES-GCM encryption can only be used with NULL authentication").
 */

/** Wireshark encryption strings → SA-file encryption family (key size decides the variant). */
export const WS_ENCRYPTION: Readonly<Record<string, { family: 'null' | 'des-cbc' | '3des-cbc' | 'aes-cbc' | 'aes-ctr' | 'aes-gcm' | 'chacha20-poly1305' | null; icv?: number; note?: string }>> = {
  NULL: { family: 'null' },
  'TripleDES-CBC [RFC2451]': { family: '3des-cbc' },
  // strongSwan's save-keys spelled it this way before strongswan PR #2013; Wireshark rejects it.
  'TripleDes-CBC [RFC2451]': { family: '3des-cbc' },
  'AES-CBC [RFC3602]': { family: 'aes-cbc' },
  'AES-CTR [RFC3686]': { family: 'aes-ctr' },
  'DES-CBC [RFC2405]': { family: 'des-cbc' },
  'CAST5-CBC [RFC2144]': { family: null, note: 'CAST5-CBC is not implemented' },
  'BLOWFISH-CBC [RFC2451]': { family: null, note: 'Blowfish-CBC is not implemented' },
  'TWOFISH-CBC': { family: null, note: 'Twofish-CBC is not implemented' },
  'AES-GCM [RFC4106]': { family: 'aes-gcm' },
  'AES-GCM with 8 octet ICV [RFC4106]': { family: 'aes-gcm', icv: 8 },
  'AES-GCM with 12 octet ICV [RFC4106]': { family: 'aes-gcm', icv: 12 },
  'AES-GCM with 16 octet ICV [RFC4106]': { family: 'aes-gcm', icv: 16 },
  'AES-GCM with IIV and 16 octet ICV [RFC4106 & RFC8750]': { family: null, note: 'implicit IV (RFC 8750) is not implemented' },
  'ChaCha20 with Poly1305 [RFC7634]': { family: 'chacha20-poly1305', icv: 16 },
  'ChaCha20 with Poly1305 and IIV [RFC7634 & RFC8750]': { family: null, note: 'implicit IV (RFC 8750) is not implemented' },
};

/** Wireshark authentication strings → SA-file integrity name, or an ICV length without checking. */
export const WS_AUTHENTICATION: Readonly<Record<string, { integrity: string | null; anyBits?: number; note?: string }>> = {
  NULL: { integrity: 'none' },
  'HMAC-SHA-1-96 [RFC2404]': { integrity: 'hmac-sha1-96' },
  'HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]': { integrity: null, note: 'HMAC-SHA-256-96 (pre-RFC 4868 truncation) is not implemented' },
  'HMAC-SHA-256-128 [RFC4868]': { integrity: 'hmac-sha256-128' },
  'HMAC-SHA-384-192 [RFC4868]': { integrity: 'hmac-sha384-192' },
  'HMAC-SHA-512-256 [RFC4868]': { integrity: 'hmac-sha512-256' },
  'HMAC-MD5-96 [RFC2403]': { integrity: 'hmac-md5-96' },
  'MAC-RIPEMD-160-96 [RFC2857]': { integrity: null, note: 'HMAC-RIPEMD-160-96 is not implemented' },
  'ANY 64 bit authentication [no checking]': { integrity: null, anyBits: 64 },
  'ANY 96 bit authentication [no checking]': { integrity: null, anyBits: 96 },
  'ANY 128 bit authentication [no checking]': { integrity: null, anyBits: 128 },
  'ANY 192 bit authentication [no checking]': { integrity: null, anyBits: 192 },
  'ANY 256 bit authentication [no checking]': { integrity: null, anyBits: 256 },
};

/** SA-file encryption name → Wireshark string (current and 4.0 share these), or null. */
export function wsEncryptionName(encryption: string, icvLength: number): string | null {
  if (encryption === 'null') return 'NULL';
  if (encryption === '3des-cbc') return 'TripleDES-CBC [RFC2451]';
  if (encryption === 'des-cbc') return 'DES-CBC [RFC2405]';
  if (encryption.startsWith('aes-cbc-')) return 'AES-CBC [RFC3602]';
  if (encryption.startsWith('aes-ctr-')) return 'AES-CTR [RFC3686]';
  if (encryption.startsWith('aes-gcm-')) return `AES-GCM with ${icvLength} octet ICV [RFC4106]`;
  if (encryption === 'chacha20-poly1305') return 'ChaCha20 with Poly1305 [RFC7634]';
  return null;
}

/** SA-file integrity name → Wireshark string, or null (GMAC has none). */
export function wsAuthenticationName(integrity: string): string | null {
  for (const [ws, v] of Object.entries(WS_AUTHENTICATION)) if (v.integrity === integrity) return ws;
  return null;
}

/**
 * Split one UAT record into its fields: comma-separated, each either a double-quoted string
 * (with `\\`, `\"` and `\xNN` escapes, as uat_esc writes them) or bare text. Returns null for a
 * blank or `#` comment line, or an error string.
 */
export function parseUatLine(line: string): string[] | null | { error: string } {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return null;
  const fields: string[] = [];
  let i = 0;
  while (i <= t.length) {
    while (t[i] === ' ' || t[i] === '\t') i++;
    if (t[i] === '"') {
      let v = '';
      i++;
      while (i < t.length && t[i] !== '"') {
        if (t[i] === '\\' && i + 1 < t.length) {
          const n = t[i + 1];
          if (n === 'x' && /^[0-9a-fA-F]{2}$/.test(t.slice(i + 2, i + 4))) {
            v += String.fromCharCode(parseInt(t.slice(i + 2, i + 4), 16));
            i += 4;
            continue;
          }
          v += n;
          i += 2;
          continue;
        }
        v += t[i++];
      }
      if (t[i] !== '"') return { error: 'unterminated quoted field' };
      i++;
      fields.push(v);
    } else {
      const end = t.indexOf(',', i);
      fields.push(t.slice(i, end < 0 ? t.length : end).trim());
      i = end < 0 ? t.length : end;
    }
    while (t[i] === ' ' || t[i] === '\t') i++;
    if (i >= t.length) break;
    if (t[i] !== ',') return { error: `',' expected between fields at column ${i + 1}` };
    i++;
  }
  return fields;
}

/** Quote one UAT field as Wireshark's uat_esc does (printable ASCII kept, the rest as \xNN). */
export function quoteUat(v: string): string {
  let out = '"';
  for (const ch of v) {
    const c = ch.charCodeAt(0);
    if (ch === '"' || ch === '\\' || c < 0x20 || c > 0x7e) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return out + '"';
}

/** A UAT key field → bytes: "0x" + hex (odd length = leading 0 nibble), "" or "0x" = empty, else ASCII. */
export function uatKeyBytes(v: string): Buffer | { error: string } {
  if (v === '' || /^0x$/i.test(v)) return Buffer.alloc(0);
  if (/^0x/i.test(v)) {
    let h = v.slice(2);
    if (!/^[0-9a-fA-F]+$/.test(h)) return { error: 'key has a non-hex character after 0x' };
    if (h.length % 2) h = '0' + h;
    return Buffer.from(h, 'hex');
  }
  return Buffer.from(v, 'latin1');
}
