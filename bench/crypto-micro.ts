/**
 * Micro-benchmark: per-packet ESP open (rx) and seal (tx), node:crypto transforms vs the native
 * addon (per-packet calls, and whole batches through runBatch, with its cipher contexts calling
 * OpenSSL's provider functions directly and through EVP), same process, interleaved A/B.
 *
 *   node dist/bench/crypto-micro.js [--seconds 0.3] [--reps 5] [--sizes 64,1400] [--batch 1024]
 *
 * Each measurement opens (or seals) a ring of `batch` distinct valid packets laid out like a
 * JobBatch; before each pass the ring is restored from a pristine copy (memcpy, same for every
 * engine; its cost per packet is printed as "restore"). Figures are medians of `reps` windows.
 */
import { createEspTransform, OpenResult, type EspParams, type EspTransform } from '../src/crypto/index.js';
import { createNativeEspTransform, createNativeSlotTable, nativeAvailable, nativeCipherCalls, nativeInfo } from '../src/crypto/native.js';
import { J, JOB_FIELDS, Op } from '../src/offload/jobs.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}
const SECONDS = Number(arg('seconds', '0.3'));
const REPS = Number(arg('reps', '5'));
const SIZES = arg('sizes', '64,1400').split(',').map(Number);
const BATCH = Number(arg('batch', '1024'));

function fill(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

interface Ring {
  data: Uint8Array;
  pristine: Uint8Array;
  starts: Int32Array;
  ends: Int32Array;
  meta: Int32Array;
}

/** `BATCH` packets of `payload` bytes, sealed by `t` (op = ESP_OPEN) or plaintext (op = ESP_SEAL). */
function ring(t: EspTransform, payload: number, sealed: boolean): Ring {
  const body = payload + 2;
  const padded = Math.ceil(body / t.padUnit) * t.padUnit;
  const len = 8 + t.ivLen + padded + t.icvLen;
  const stride = (len + 7) & ~7;
  const data = fill(stride * BATCH, 12345 + payload);
  const starts = new Int32Array(BATCH);
  const ends = new Int32Array(BATCH);
  const meta = new Int32Array(BATCH * JOB_FIELDS);
  for (let i = 0; i < BATCH; i++) {
    const s = i * stride;
    const ct = s + 8 + t.ivLen;
    data[ct + padded - 2] = padded - body;
    data[ct + padded - 1] = 17;
    starts[i] = s;
    ends[i] = s + len;
    if (sealed) t.seal(data, s, s + len, -1);
    const b = i * JOB_FIELDS;
    meta[b + J.ESP_SLOT] = 0;
    meta[b + J.AH_SLOT] = 0;
    meta[b + J.OP] = sealed ? Op.ESP_OPEN : Op.ESP_SEAL;
    meta[b + J.OFF] = s;
    meta[b + J.LEN] = len;
    meta[b + J.ESP] = 0;
    meta[b + J.SEQH_ESP] = -1;
    meta[b + J.SEQH_AH] = -1;
  }
  return { data, pristine: data.slice(), starts, ends, meta };
}

type Pass = (r: Ring) => number;

function perPacket(t: EspTransform, open: boolean): Pass {
  return (r) => {
    const { data, starts, ends } = r;
    let bad = 0;
    if (open) {
      for (let i = 0; i < BATCH; i++) if (t.open(data, starts[i]!, ends[i]!, -1) !== OpenResult.Ok) bad++;
    } else {
      for (let i = 0; i < BATCH; i++) t.seal(data, starts[i]!, ends[i]!, -1);
    }
    return bad;
  };
}

function batchPass(t: EspTransform): Pass {
  const nt = createNativeSlotTable()!;
  nt.define(0, t, null);
  return (r) => {
    nt.run(r.data, r.meta, BATCH);
    let bad = 0;
    for (let i = 0; i < BATCH; i++) {
      if (r.meta[i * JOB_FIELDS + J.RESULT]! !== 0x0f) bad++; // AH not run, ESP Ok
    }
    return bad;
  };
}

const restoreOnly: Pass = () => 0;

/** Packets per second over one window (restore + pass per ring). */
function window(r: Ring, pass: Pass): number {
  let n = 0;
  const t0 = process.hrtime.bigint();
  const limit = BigInt(Math.round(SECONDS * 1e9));
  let t = t0;
  while (t - t0 < limit) {
    r.data.set(r.pristine);
    if (pass(r) !== 0) throw new Error('benchmark: a packet failed');
    n += BATCH;
    t = process.hrtime.bigint();
  }
  return n / (Number(t - t0) / 1e9);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function key(n: number, seed: number): Uint8Array {
  return fill(n, seed);
}

const SUITES: { name: string; p: EspParams }[] = [
  { name: 'AES-128-GCM-16', p: { encryption: 'aes-gcm-128', encryptionKey: key(20, 1), integrity: 'none', integrityKey: new Uint8Array(0), icvLength: 16 } },
  { name: 'AES-128-CBC+HMAC-SHA1-96', p: { encryption: 'aes-cbc-128', encryptionKey: key(16, 2), integrity: 'hmac-sha1-96', integrityKey: key(20, 3), icvLength: 12 } },
];

console.log(`crypto-micro: ${nativeInfo()}; node ${process.version}, OpenSSL ${process.versions.openssl}; ${BATCH} packets/ring, ${REPS}×${SECONDS}s windows, medians`);
if (!nativeAvailable()) console.log('(native addon unavailable: only node:crypto is measured)');
const rows: string[][] = [['suite', 'payload', 'dir', 'engine', 'pkt/s', 'µs/pkt', 'µs/pkt − restore', 'vs node:crypto']];

for (const s of SUITES) {
  const js = createEspTransform(s.p);
  const nat = createNativeEspTransform(s.p);
  // the same transform with its cipher contexts going through EVP (the addon's fallback)
  const was = nativeCipherCalls(false);
  const natEvp = was ? createNativeEspTransform(s.p) : null;
  if (was) nativeCipherCalls(was.previous);
  for (const size of SIZES) {
    for (const dir of ['open', 'seal'] as const) {
      const r = ring(js, size, dir === 'open');
      const engines: [string, Pass][] = [['restore only', restoreOnly], ['node:crypto', perPacket(js, dir === 'open')]];
      if (nat) {
        engines.push(['native per packet', perPacket(nat, dir === 'open')]);
        engines.push(['native runBatch', batchPass(nat)]);
        if (natEvp) engines.push(['native runBatch, EVP', batchPass(natEvp)]);
      }
      const res: number[][] = engines.map(() => []);
      for (const [, p] of engines) window(r, p); // warm-up
      for (let k = 0; k < REPS; k++) engines.forEach(([, p], i) => res[i]!.push(window(r, p)));
      const med = res.map(median);
      const restoreUs = 1e6 / med[0]!;
      engines.forEach(([name], i) => {
        if (i === 0) {
          rows.push([s.name, String(size), dir, name, '', restoreUs.toFixed(3), '', '']);
          return;
        }
        const us = 1e6 / med[i]!;
        const net = us - restoreUs;
        const jsNet = 1e6 / med[1]! - restoreUs;
        rows.push([s.name, String(size), dir, name, Math.round(1e6 / net).toLocaleString('en-US'), us.toFixed(3), net.toFixed(3), `${(jsNet / net).toFixed(2)}×`]);
      });
    }
  }
}

const w = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const r of rows) console.log(r.map((x, c) => (c >= 4 ? x.padStart(w[c]!) : x.padEnd(w[c]!))).join('  '));
console.log('pkt/s and "µs/pkt − restore" exclude the per-pass memcpy that restores the ring (row "restore only").');
