/**
 * `ipsecov2 sa import`: write an SA file (YAML, version 1) from `ip xfrm state` output,
 * Wireshark's `esp_sa` UAT file or strongSwan's save-keys output.
 *
 * None of these says which side is local, so every imported SA is `direction: inbound` (unless
 * `ip xfrm` prints `dir out`); the file's header comment points at `rx --any-direction`.
 * Keys, SPIs and algorithms are carried over exactly; anything that cannot be expressed
 * (unsupported algorithm, hidden keys, wildcard SPI) is skipped with a warning naming the record.
 */

import { Document, isMap, isPair, isScalar, visit } from 'yaml';
import { ENCRYPTION } from '../crypto/registry.js';
import { parseIp } from './addr.js';
import { hex32 } from './bundle.js';
import { importUat } from './import-uat.js';

/** One SA as read from a foreign file, in SA-file terms. */
export interface ImportedSa {
  /** Where it came from, for warnings ("line 12"). */
  origin: string;
  proto: 'esp' | 'ah';
  spi: number;
  src: string | null;
  dst: string | null;
  direction?: 'inbound' | 'outbound';
  mode?: 'transport' | 'tunnel';
  selector?: { src?: string; dst?: string; protocol?: string | number; srcPort?: number; dstPort?: number };
  udp?: { type: 'transport' | 'tunnel'; srcPort: number; dstPort: number };
  esn?: boolean;
  replayWindow?: number;
  sequence?: { next?: number; high?: number };
  lifetime?: { packets?: number; bytes?: number };
  encryption?: string;
  encryptionKey?: Buffer;
  integrity?: string;
  integrityKey?: Buffer;
  icvLength?: number;
  /** Extra YAML comment for this SA. */
  comment?: string;
}

/** Sources `sa import` reads. */
export type ImportFormat = 'xfrm' | 'wireshark' | 'strongswan';

/**
 * Convert a key/state file to SA-file YAML.
 * @param from  the input format
 * @param text  the file's contents
 * @param file  its name, for the header comment and warnings
 * @returns the YAML text and human-readable warnings (`FILE: line N: ...`)
 */
export function importSa(from: ImportFormat, text: string, file: string): { yaml: string; warnings: string[] } {
  const warnings: string[] = [];
  const warn = (origin: string, msg: string): void => {
    warnings.push(`${file}: ${origin}: ${msg}`);
  };
  const sas = from === 'xfrm' ? importXfrm(text, warn) : importUat(text, from, warn);
  if (sas.length === 0) warnings.push(`${file}: no SA could be imported`);
  const hasDir = sas.some((s) => s.direction !== undefined);
  return { yaml: writeSaYaml(sas, from, file, hasDir), warnings };
}

function keyHex(b: Buffer | undefined): string | undefined {
  return b && b.length ? `0x${b.toString('hex')}` : undefined;
}

function uniqueName(base: string, used: Set<string>): string {
  let name = base;
  for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
  used.add(name);
  return name;
}

/** Render imported SAs as an SA file. */
export function writeSaYaml(sas: ImportedSa[], from: ImportFormat, file: string, knowsDirections: boolean): string {
  const used = new Set<string>();
  const items = sas.map((s) => {
    const o: Record<string, unknown> = { name: uniqueName(`${s.proto}-${s.spi.toString(16).padStart(8, '0')}`, used) };
    o.direction = s.direction ?? 'inbound';
    if (s.mode) o.mode = s.mode;
    if (s.selector && Object.keys(s.selector).length) o.selector = s.selector;
    if (s.src && s.dst && (s.mode === 'tunnel' || (!s.mode && o.direction === 'inbound'))) o.tunnel = { src: s.src, dst: s.dst };
    if (s.udp) o.udpEncapsulation = s.udp;
    if (s.esn) o.esn = true;
    if (s.replayWindow !== undefined) o.replayWindow = s.replayWindow;
    if (s.sequence && (s.sequence.high || (s.sequence.next !== undefined && s.sequence.next !== 1))) o.sequence = s.sequence;
    if (s.lifetime && (s.lifetime.packets || s.lifetime.bytes)) o.lifetime = s.lifetime;
    if (s.proto === 'esp') {
      const esp: Record<string, unknown> = { spi: hex32(s.spi), encryption: s.encryption ?? 'null' };
      if (keyHex(s.encryptionKey)) esp.encryptionKey = keyHex(s.encryptionKey);
      if (s.integrity && s.integrity !== 'none') {
        esp.integrity = s.integrity;
        esp.integrityKey = keyHex(s.integrityKey);
      }
      if (ENCRYPTION[s.encryption ?? '']?.aead && s.icvLength) esp.icvLength = s.icvLength;
      o.esp = esp;
    } else {
      o.ah = { spi: hex32(s.spi), integrity: s.integrity, integrityKey: keyHex(s.integrityKey) };
    }
    return { o, comment: s.comment };
  });
  const doc = new Document({ version: 1, sas: items.map((i) => i.o) });
  const header = [
    ` SA file imported by \`ipsecov2 sa import --from ${from}\` from ${file}.`,
    ' It holds keys: keep it private (chmod 600).',
  ];
  if (!knowsDirections) {
    header.push(
      ' Directions: the source does not say which side is local, so every SA is marked',
      ' direction: inbound (SAs towards the local host are inbound). For a capture taken on the',
      ' wire, where both directions are encrypted, run `ipsecov2 rx --any-direction`; for tx,',
      ' set direction: outbound (and mode) on the SAs this host sends with.',
    );
  }
  if (from !== 'xfrm') header.push(' The address pair of each record is written as tunnel: (the outer header); the', ' mode is left to each packet. Set mode: transport/tunnel when you know it.');
  if (from === 'strongswan') header.push(' strongSwan writes the IKE SA\'s endpoints: wrong after MOBIKE, or when ESP and IKE', ' endpoints differ (the SPI still matches; fix or remove tunnel: then).');
  doc.commentBefore = header.join('\n');
  const seq = doc.get('sas', true) as unknown as { items: { commentBefore?: string }[] };
  items.forEach((it, i) => {
    if (it.comment) seq.items[i].commentBefore = ` ${it.comment}`;
  });
  // Small mappings read best on one line.
  visit(doc, {
    Pair(_, pair) {
      if (isPair(pair) && isScalar(pair.key) && ['selector', 'tunnel', 'udpEncapsulation', 'sequence', 'lifetime'].includes(String(pair.key.value)) && isMap(pair.value)) pair.value.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0 });
}

// --- ip xfrm state ------------------------------------------------------------------------------

const XFRM_PROTO_NAMES: Record<string, string | number> = { tcp: 'tcp', udp: 'udp', icmp: 'icmp', 'ipv6-icmp': 'icmpv6', icmpv6: 'icmpv6', sctp: 132, gre: 47 };
/** Kernel default truncation of `auth NAME` (net/xfrm/xfrm_algo.c icv_truncbits). */
const HMAC_DEFAULT_TRUNC: Record<string, number> = { md5: 96, sha1: 96, sha256: 96, sha384: 192, sha512: 256 };
const HMAC_NAMES: Record<string, string> = { 'md5/96': 'hmac-md5-96', 'sha1/96': 'hmac-sha1-96', 'sha256/128': 'hmac-sha256-128', 'sha384/192': 'hmac-sha384-192', 'sha512/256': 'hmac-sha512-256' };

function hostOrPrefix(text: string): string | undefined {
  const [addr, len] = text.split('/');
  if (!parseIp(addr)) return undefined;
  if (len === '0') return undefined; // 0.0.0.0/0, ::/0 = any
  return text;
}

/**
 * Parse `ip xfrm state` / `ip -s xfrm state` output (iproute2 ipxfrm.c layout: a record starts
 * with `src A dst B` at column 0, its other lines are indented). Statistics, lifetimes and
 * anti-replay context lines are read where useful and otherwise ignored.
 */
export function importXfrm(text: string, warn: (origin: string, msg: string) => void): ImportedSa[] {
  const records: { line: number; lines: string[] }[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (/^src\s/.test(line)) records.push({ line: i + 1, lines: [line] });
    else if (records.length && line.trim()) records[records.length - 1].lines.push(line);
  });
  const out: ImportedSa[] = [];
  for (const rec of records) {
    const origin = `line ${rec.line}`;
    const sa = parseXfrmRecord(rec.lines, origin, warn);
    if (sa) out.push(sa);
  }
  return out;
}

function parseXfrmRecord(lines: string[], origin: string, warn: (origin: string, msg: string) => void): ImportedSa | null {
  const head = /^src\s+(\S+)\s+dst\s+(\S+)/.exec(lines[0]);
  if (!head) return null;
  const sa: ImportedSa = { origin, proto: 'esp', spi: 0, src: head[1], dst: head[2] };
  let proto = '';
  let mode = '';
  let authTrunc: { alg: string; key: string; bits: number } | null = null;
  let auth: { alg: string; key: string } | null = null;
  let enc: { alg: string; key: string } | null = null;
  let aead: { alg: string; key: string; bits: number } | null = null;
  let esnWindow: number | undefined;
  let seqHi: number | undefined;
  let oseq: number | undefined;
  let oseqHi: number | undefined;
  let inLifetimeConfig = false;
  for (const raw of lines.slice(1)) {
    const l = raw.trim();
    // "0x<key> (160 bits)" in `ip -s` output: drop the bit count after the key.
    const t = l.replace(/^(\S+\s+\S+\s+\S+)\s+\(\d+ bits\)/, '$1').split(/\s+/);
    let m: RegExpExecArray | null;
    if (t[0] === 'proto') {
      proto = t[1];
      const spiText = (t[t.indexOf('spi') + 1] ?? '').replace(/\(.*$/, '');
      sa.spi = parseInt(spiText, 16) >>> 0;
      mode = t[t.indexOf('mode') + 1] ?? '';
    } else if (t[0] === 'replay-window' && sa.replayWindow === undefined) {
      // (the "stats:" block has a replay-window counter too; the first one is the setting)
      sa.replayWindow = Number(t[1]);
      const fi = t.indexOf('flag');
      if (fi >= 0 && t.slice(fi + 1).includes('esn')) sa.esn = true;
    } else if (t[0] === 'auth-trunc') authTrunc = { alg: t[1], key: t[2], bits: Number(t[3]) };
    else if (t[0] === 'auth') auth = { alg: t[1], key: t[2] };
    else if (t[0] === 'enc') enc = { alg: t[1], key: t[2] };
    else if (t[0] === 'aead') aead = { alg: t[1], key: t[2], bits: Number(t[3]) };
    else if (t[0] === 'encap') {
      const type = t[t.indexOf('type') + 1];
      const sport = Number(t[t.indexOf('sport') + 1]);
      const dport = Number(t[t.indexOf('dport') + 1]);
      if (type === 'espinudp' || type === 'espinudp-nonike') {
        sa.udp = { type: 'transport', srcPort: sport, dstPort: dport };
        if (type === 'espinudp-nonike') warn(origin, 'encap espinudp-nonike (draft non-IKE marker format) imported as RFC 3948 UDP encapsulation');
      } else {
        warn(origin, `encap ${type} is not supported (SPI ${hex32(sa.spi)} skipped)`);
        return null;
      }
    } else if (t[0] === 'sel') {
      const sel: NonNullable<ImportedSa['selector']> = {};
      for (let i = 1; i < t.length - 1; i += 2) {
        const v = t[i + 1];
        if (t[i] === 'src') sel.src = hostOrPrefix(v);
        else if (t[i] === 'dst') sel.dst = hostOrPrefix(v);
        else if (t[i] === 'proto') {
          const p = /^\d+$/.test(v) ? Number(v) : XFRM_PROTO_NAMES[v];
          if (p === undefined) warn(origin, `selector protocol ${v} not understood; using any`);
          else if (p !== 0) sel.protocol = p;
        } else if (t[i] === 'sport' && Number(v)) sel.srcPort = Number(v);
        else if (t[i] === 'dport' && Number(v)) sel.dstPort = Number(v);
      }
      for (const k of Object.keys(sel) as (keyof typeof sel)[]) if (sel[k] === undefined) delete sel[k];
      sa.selector = sel;
    } else if (t[0] === 'dir' && (t[1] === 'in' || t[1] === 'out')) sa.direction = t[1] === 'in' ? 'inbound' : 'outbound';
    else if (t[0] === 'offload' && t.includes('dir')) {
      const d = t[t.indexOf('dir') + 1];
      if (d === 'in' || d === 'out') sa.direction = d === 'in' ? 'inbound' : 'outbound';
    } else if ((m = /seq-hi 0x([0-9a-f]+), seq 0x[0-9a-f]+, oseq-hi 0x([0-9a-f]+), oseq 0x([0-9a-f]+)/i.exec(l))) {
      seqHi = parseInt(m[1], 16);
      oseqHi = parseInt(m[2], 16);
      oseq = parseInt(m[3], 16);
    } else if ((m = /replay_window (\d+), bitmap-length/.exec(l))) esnWindow = Number(m[1]);
    else if ((m = /^anti-replay context: seq 0x[0-9a-f]+, oseq 0x([0-9a-f]+)/i.exec(l))) oseq = parseInt(m[1], 16);
    else if (l === 'lifetime config:') inLifetimeConfig = true;
    else if (l === 'lifetime current:' || l === 'stats:') inLifetimeConfig = false;
    else if (inLifetimeConfig && (m = /^limit: soft (\S+)\((bytes|packets)\)/.exec(l))) {
      if (m[1] !== '(INF)' && /^\d+$/.test(m[1])) (sa.lifetime ??= {})[m[2] as 'bytes' | 'packets'] = Number(m[1]);
    }
  }
  const label = `${proto || '?'} SPI ${hex32(sa.spi)}`;
  if (proto !== 'esp' && proto !== 'ah') {
    warn(origin, `proto ${proto || '(none)'} is not ESP or AH; skipped`);
    return null;
  }
  sa.proto = proto;
  if (sa.spi <= 255) {
    warn(origin, `${label}: SPIs 0..255 are reserved; skipped`);
    return null;
  }
  if (mode === 'transport' || mode === 'tunnel') sa.mode = mode;
  else {
    warn(origin, `${label}: mode ${mode || '(none)'} is not transport or tunnel; skipped`);
    return null;
  }
  if (mode === 'transport') {
    // Transport mode: the state's addresses are the packet's addresses; keep sel's protocol/ports.
    const host = (a: string): string => `${a}/${parseIp(a)?.family === 6 ? 128 : 32}`;
    sa.selector = { ...(sa.selector ?? {}), src: host(sa.src!), dst: host(sa.dst!) };
  } else if (sa.udp) sa.udp.type = 'tunnel';
  if (esnWindow !== undefined) sa.replayWindow = esnWindow;
  if (sa.replayWindow !== undefined && sa.replayWindow !== 0 && sa.replayWindow < 32) {
    warn(origin, `${label}: replay-window ${sa.replayWindow} is below the SA file's minimum of 32; using 32`);
    sa.replayWindow = 32;
  } else if (sa.replayWindow !== undefined && sa.replayWindow > 4096) {
    warn(origin, `${label}: replay-window ${sa.replayWindow} is above 4096; using 4096`);
    sa.replayWindow = 4096;
  }
  if (sa.esn) {
    sa.sequence = sa.direction === 'outbound' ? { next: (oseq ?? 0) + 1, high: oseqHi ?? 0 } : { high: seqHi ?? 0 };
  } else if (sa.direction === 'outbound' && oseq !== undefined) sa.sequence = { next: oseq + 1 };

  const keyOf = (k: string | undefined): Buffer | null => {
    if (!k || k.startsWith('<<')) return null;
    const h = k.replace(/^0x/i, '');
    return /^([0-9a-f]{2})*$/i.test(h) ? Buffer.from(h, 'hex') : null;
  };
  const anyKey = aead?.key ?? enc?.key ?? authTrunc?.key ?? auth?.key;
  if (anyKey && anyKey.startsWith('<<')) {
    warn(origin, `${label}: keys hidden in the input (run ip xfrm state without -n/nokeys); skipped`);
    return null;
  }
  const hmac = authTrunc ? { alg: authTrunc.alg, bits: authTrunc.bits, key: authTrunc.key } : auth ? { alg: auth.alg, bits: HMAC_DEFAULT_TRUNC[/^hmac\((\w+)\)$/.exec(auth.alg)?.[1] ?? ''] ?? 0, key: auth.key } : null;
  let integrity: string | undefined;
  if (hmac) {
    const h = /^hmac\((\w+)\)$/.exec(hmac.alg)?.[1];
    integrity = h ? HMAC_NAMES[`${h}/${hmac.bits}`] : undefined;
    if (!integrity) {
      warn(origin, `${label}: integrity ${hmac.alg} with a ${hmac.bits}-bit ICV is not supported; skipped`);
      return null;
    }
    sa.integrity = integrity;
    sa.integrityKey = keyOf(hmac.key) ?? Buffer.alloc(0);
  }
  if (proto === 'ah') {
    if (!integrity) {
      warn(origin, `${label}: AH without an auth algorithm; skipped`);
      return null;
    }
    return sa;
  }
  if (aead) {
    const key = keyOf(aead.key) ?? Buffer.alloc(0);
    const bits = (key.length - 4) * 8;
    if (aead.alg === 'rfc4106(gcm(aes))') {
      sa.encryption = `aes-gcm-${bits}`;
      sa.encryptionKey = key;
      sa.icvLength = aead.bits / 8;
    } else if (aead.alg === 'rfc4543(gcm(aes))') {
      // RFC 4543 ENCR_NULL_AUTH_AES_GMAC: NULL encryption, GMAC integrity keyed with key || salt.
      sa.encryption = 'null';
      sa.integrity = `aes-gmac-${bits}`;
      sa.integrityKey = key;
      if (aead.bits !== 128) warn(origin, `${label}: GMAC with a ${aead.bits}-bit ICV; the SA file's GMAC ICV is 128 bits`);
    } else if (aead.alg === 'rfc7539esp(chacha20,poly1305)') {
      sa.encryption = 'chacha20-poly1305';
      sa.encryptionKey = key;
      sa.icvLength = aead.bits / 8;
    } else {
      warn(origin, `${label}: aead ${aead.alg} is not supported; skipped`);
      return null;
    }
    if (!ENCRYPTION[sa.encryption] && sa.encryption !== 'null') {
      warn(origin, `${label}: ${aead.alg} with a ${key.length}-byte key is not a known size; skipped`);
      return null;
    }
    return sa;
  }
  if (enc) {
    const key = keyOf(enc.key) ?? Buffer.alloc(0);
    const map: Record<string, string | undefined> = {
      'cbc(aes)': `aes-cbc-${key.length * 8}`,
      'cbc(des3_ede)': '3des-cbc',
      'cbc(des)': 'des-cbc',
      'ecb(cipher_null)': 'null',
      'rfc3686(ctr(aes))': `aes-ctr-${(key.length - 4) * 8}`,
    };
    const name = map[enc.alg];
    if (!name || !ENCRYPTION[name]) {
      warn(origin, `${label}: enc ${enc.alg}${name ? ` with a ${key.length}-byte key` : ''} is not supported; skipped`);
      return null;
    }
    sa.encryption = name;
    sa.encryptionKey = name === 'null' ? Buffer.alloc(0) : key;
  }
  if (!sa.encryption) sa.encryption = 'null';
  if (sa.encryption === 'null' && !sa.integrity) {
    warn(origin, `${label}: neither encryption nor integrity; skipped`);
    return null;
  }
  return sa;
}
