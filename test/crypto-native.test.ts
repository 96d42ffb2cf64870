/**
 * Native crypto addon (src/crypto/native.ts) against the node:crypto transforms
 * (src/crypto/esp.ts, ah.ts), on every algorithm the addon covers: seal with one, open with the
 * other, byte-identical output, ESN on/off, random sizes and offsets, tampering → AuthFailed with
 * the packet untouched, bad lengths → BadLength; AH compute/verify over random chunkings; and the
 * whole-batch entry point (runBatch) against runJobs on mixed batches. All of it twice: with the
 * addon's cipher contexts calling OpenSSL's provider functions directly, and through EVP.
 * Skipped, with the reason, when the addon is not built (or IPSECOV2_NO_NATIVE=1).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAhTransform, createEspTransform, OpenResult, type AhParams, type EspParams, type EspTransform } from '../src/crypto/index.js';
import { ENCRYPTION, INTEGRITY } from '../src/crypto/registry.js';
import {
  createNativeAhTransform,
  createNativeEspTransform,
  createNativeSlotTable,
  DEFERRED,
  isNativeTransform,
  nativeAvailable,
  nativeCipherCalls,
  nativeInfo,
} from '../src/crypto/native.js';
import { J, JOB_FIELDS, Op, runJobs, SlotTable } from '../src/offload/jobs.js';

const skip = nativeAvailable() ? false : `native addon unavailable: ${nativeInfo()}`;
if (skip) console.log(`# crypto-native: SKIPPED (${skip})`);

// Deterministic PRNG (mulberry32) so that a failure can be replayed: IPSECOV2_TEST_SEED=n.
const SEED = Number(process.env.IPSECOV2_TEST_SEED ?? 0x5eed1234) >>> 0;
let st = SEED;
function rnd(): number {
  st = (st + 0x6d2b79f5) >>> 0;
  let t = st;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function int(n: number): number {
  return Math.floor(rnd() * n);
}
function bytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
}

interface Combo {
  name: string;
  p: EspParams;
}

function espParams(encryption: string, integrity: string, icvLength?: number): EspParams {
  const enc = ENCRYPTION[encryption]!;
  const integ = INTEGRITY[integrity]!;
  return {
    encryption,
    encryptionKey: bytes(enc.keyLen + enc.saltLen),
    integrity,
    integrityKey: bytes(integ.keyLen + integ.saltLen),
    icvLength: icvLength ?? (enc.aead ? enc.icvLengths[0]! : integ.icvLen),
  };
}

const SEPARATE_ENC = ['null', 'aes-cbc-128', 'aes-cbc-192', 'aes-cbc-256', '3des-cbc', 'aes-ctr-128', 'aes-ctr-192', 'aes-ctr-256'];
const HMACS = ['hmac-md5-96', 'hmac-sha1-96', 'hmac-sha256-128', 'hmac-sha384-192', 'hmac-sha512-256'];
const GMACS = ['aes-gmac-128', 'aes-gmac-192', 'aes-gmac-256'];

function combos(): Combo[] {
  const out: Combo[] = [];
  for (const e of ['aes-gcm-128', 'aes-gcm-192', 'aes-gcm-256']) {
    for (const icv of [16, 12, 8]) out.push({ name: `${e}/icv${icv}`, p: espParams(e, 'none', icv) });
  }
  out.push({ name: 'chacha20-poly1305', p: espParams('chacha20-poly1305', 'none') });
  for (const g of GMACS) out.push({ name: `null+${g}`, p: espParams('null', g) });
  for (const e of SEPARATE_ENC) {
    for (const i of ['none', ...HMACS]) out.push({ name: `${e}+${i}`, p: espParams(e, i) });
  }
  // A truncation other than the RFC one (TruncatedHmac accepts 1..digest length).
  out.push({ name: 'aes-cbc-128+hmac-sha256-128/icv32', p: espParams('aes-cbc-128', 'hmac-sha256-128', 32) });
  return out;
}

/** A plaintext ESP packet (SPI, Seq, IV, payload+padding+padLen+NH, ICV space) at a random offset. */
function makePacket(t: EspTransform, payload: number): { buf: Uint8Array; start: number; end: number } {
  const body = payload + 2;
  const padded = Math.ceil(body / t.padUnit) * t.padUnit;
  const len = 8 + t.ivLen + padded + t.icvLen;
  const start = int(40);
  const buf = bytes(start + len + int(40));
  const ct = start + 8 + t.ivLen;
  const padLen = padded - body;
  for (let i = 0; i < padLen; i++) buf[ct + payload + i] = i + 1;
  buf[ct + padded - 2] = padLen;
  buf[ct + padded - 1] = 17;
  buf.fill(0, ct + padded, start + len);
  return { buf, start, end: start + len };
}

function seqHighs(): number[] {
  return [-1, 0, 1 + int(0x7fffffff), 0x80000000 + int(0x7fffffff), 0xffffffff];
}

/**
 * Every suite runs twice: with the addon's cipher contexts calling the OpenSSL provider's functions
 * directly (the default), and through EVP (the fallback, IPSECOV2_NATIVE_EVP=1).
 */
for (const mode of ['direct', 'EVP'] as const) {
  describe(`crypto-native (${mode} cipher calls): ESP cross-check against node:crypto`, { skip }, () => {
    before(() => { nativeCipherCalls(mode === 'direct'); });
    test('single DES is left to the JS fallback (null)', () => {
      assert.equal(createNativeEspTransform(espParams('des-cbc', 'hmac-sha1-96')), null);
    });

    for (const c of combos()) {
      test(c.name, () => {
        const js = createEspTransform(c.p);
        const nat = createNativeEspTransform(c.p);
        assert.ok(nat, 'native transform created');
        assert.ok(isNativeTransform(nat));
        assert.equal(nat.ivLen, js.ivLen);
        assert.equal(nat.icvLen, js.icvLen);
        assert.equal(nat.blockSize, js.blockSize);
        assert.equal(nat.padUnit, js.padUnit);
        const hasIcv = js.icvLen > 0;
        const sizes = [0, 1, 13, 14, 15, 16, 17, 63, 64, 1400, ...Array.from({ length: 8 }, () => int(1600))];
        for (const size of sizes) {
          for (const sh of seqHighs()) {
            const { buf, start, end } = makePacket(js, size);
            const plain = buf.slice();
            // seal with both: byte-identical (the IV is in the packet, so sealing is deterministic)
            const a = buf.slice();
            const b = buf.slice();
            js.seal(a, start, end, sh);
            nat.seal(b, start, end, sh);
            assert.deepEqual(b, a, `seal differs (size ${size}, seqHigh ${sh})`);
            // open across: JS-sealed by native, native-sealed by JS
            const a2 = a.slice();
            assert.equal(nat.open(a2, start, end, sh), OpenResult.Ok, `native open of JS seal (size ${size}, seqHigh ${sh})`);
            assert.equal(js.open(b, start, end, sh), OpenResult.Ok, `JS open of native seal (size ${size}, seqHigh ${sh})`);
            // the plaintext region matches the original; ICV region and the rest equal to the sealed bytes
            const ptEnd = end - js.icvLen;
            assert.deepEqual(a2.subarray(0, ptEnd), plain.subarray(0, ptEnd));
            assert.deepEqual(b.subarray(0, ptEnd), plain.subarray(0, ptEnd));
            assert.deepEqual(a2.subarray(ptEnd), a.subarray(ptEnd));
            if (!hasIcv) continue;
            // tampering: one bit anywhere in SPI..ICV, or the wrong ESN high bits
            const t = a.slice();
            const pos = start + int(end - start);
            t[pos]! ^= 1 << int(8);
            const t1 = t.slice();
            const t2 = t.slice();
            assert.equal(nat.open(t1, start, end, sh), OpenResult.AuthFailed, `native tamper @${pos - start}`);
            assert.equal(js.open(t2, start, end, sh), OpenResult.AuthFailed, `JS tamper @${pos - start}`);
            assert.deepEqual(t1, t, 'native left a failed packet untouched');
            assert.deepEqual(t2, t);
            if (sh >= 0) {
              const w = a.slice();
              const wrong = sh === 0 ? 1 : sh - 1;
              assert.equal(nat.open(w, start, end, wrong), OpenResult.AuthFailed, 'native wrong ESN high');
              assert.equal(js.open(a.slice(), start, end, wrong), OpenResult.AuthFailed);
              assert.deepEqual(w, a);
              assert.equal(nat.open(a.slice(), start, end, -1), OpenResult.AuthFailed, 'native ESN vs no ESN');
            }
          }
        }
        // bad lengths: shorter than header + IV + 2 + ICV, and (block ciphers) not whole blocks
        const { buf, start, end } = makePacket(js, 30);
        js.seal(buf, start, end, -1);
        const minEnd = start + 8 + js.ivLen + js.icvLen + 2;
        for (const e of [start, start + 8, minEnd - 1]) {
          const x = buf.slice();
          assert.equal(nat.open(x, start, e, -1), OpenResult.BadLength, `native short ${e - start}`);
          assert.equal(js.open(buf.slice(), start, e, -1), OpenResult.BadLength);
          assert.deepEqual(x, buf);
        }
        if (js.blockSize > 1) {
          for (const d of [1, js.blockSize - 1]) {
            assert.equal(nat.open(buf.slice(), start, end - d, -1), OpenResult.BadLength, `native partial block -${d}`);
            assert.equal(js.open(buf.slice(), start, end - d, -1), OpenResult.BadLength);
          }
          assert.throws(() => nat.seal(buf.slice(), start, end - 1, -1), RangeError);
        }
      });
    }

    test('Buffer views with a byteOffset, and out-of-range regions → Internal', () => {
      const p = espParams('aes-gcm-128', 'none');
      const js = createEspTransform(p);
      const nat = createNativeEspTransform(p)!;
      const { buf, start, end } = makePacket(js, 100);
      js.seal(buf, start, end, 7);
      const big = Buffer.alloc(buf.length + 100);
      big.set(buf, 33);
      const view = big.subarray(33, 33 + buf.length);
      assert.equal(nat.open(view, start, end, 7), OpenResult.Ok);
      assert.equal(nat.open(buf.slice(), start, buf.length + 1, 7), OpenResult.Internal);
      assert.equal(nat.open(buf.slice(), -1, end, 7), OpenResult.Internal);
    });

    test('parameter errors throw like createEspTransform', () => {
      const bad: EspParams[] = [
        { ...espParams('aes-gcm-128', 'none'), icvLength: 4 },
        { ...espParams('aes-gcm-128', 'none'), encryptionKey: bytes(16) },
        { ...espParams('aes-gcm-128', 'none'), integrity: 'hmac-sha1-96' },
        { ...espParams('aes-cbc-128', 'hmac-sha1-96'), icvLength: 21 },
        { ...espParams('aes-cbc-128', 'none'), icvLength: 12 },
        espParams('aes-cbc-128', 'aes-gmac-128'),
        { ...espParams('null', 'aes-gmac-128'), icvLength: 12 },
        { ...espParams('aes-cbc-128', 'none'), encryption: 'rot13' },
      ];
      // the same message too: SlotTable.define makes only the addon's transform when it can, so its
      // message is what a user sees for a bad SA
      for (const p of bad) {
        const what = JSON.stringify({ ...p, encryptionKey: p.encryptionKey.length, integrityKey: p.integrityKey.length });
        let message = '';
        assert.throws(() => createEspTransform(p), (e: Error) => { message = e.message; return e instanceof RangeError; });
        assert.throws(() => createNativeEspTransform(p), (e: Error) => e instanceof RangeError && e.message === message, `${what}: ${message}`);
      }
    });

    test('AH parameter errors throw like createAhTransform, with the same message', () => {
      const bad: AhParams[] = [
        { integrity: 'hmac-sha1-96', integrityKey: bytes(20), icvLength: 21 },
        { integrity: 'hmac-sha256-128', integrityKey: bytes(32), icvLength: 0 },
        { integrity: 'aes-gmac-128', integrityKey: bytes(16), icvLength: 16 },
        { integrity: 'aes-gmac-128', integrityKey: bytes(20), icvLength: 12 },
        { integrity: 'none', integrityKey: bytes(0), icvLength: 0 },
        { integrity: 'rot13', integrityKey: bytes(20), icvLength: 12 },
      ];
      for (const p of bad) {
        let message = '';
        assert.throws(() => createAhTransform(p), (e: Error) => { message = e.message; return e instanceof RangeError; }, p.integrity);
        assert.throws(() => createNativeAhTransform(p), (e: Error) => e instanceof RangeError && e.message === message, `${p.integrity}/${p.integrityKey.length}/${p.icvLength}: ${message}`);
      }
    });
  });

  describe(`crypto-native (${mode} cipher calls): AH cross-check against node:crypto`, { skip }, () => {
    before(() => { nativeCipherCalls(mode === 'direct'); });
    for (const name of [...HMACS, ...GMACS]) {
      test(name, () => {
        const integ = INTEGRITY[name]!;
        const p: AhParams = { integrity: name, integrityKey: bytes(integ.keyLen + integ.saltLen), icvLength: integ.icvLen };
        const js = createAhTransform(p);
        const nat = createNativeAhTransform(p);
        assert.ok(nat && isNativeTransform(nat));
        assert.equal(nat.icvLen, js.icvLen);
        assert.equal(nat.ivLen, js.ivLen);
        for (let k = 0; k < 40; k++) {
          const msg = bytes(int(1600));
          const chunks: Uint8Array[] = [];
          for (let o = 0; o < msg.length; ) {
            const n = Math.min(msg.length - o, 1 + int(400));
            chunks.push(msg.subarray(o, o + n));
            o += n;
          }
          if (k === 0) chunks.length = 0; // empty ICV input
          const sh = seqHighs()[k % 5]!;
          const iv = js.ivLen ? bytes(js.ivLen) : null;
          const a = new Uint8Array(js.icvLen + 5);
          const b = new Uint8Array(js.icvLen + 5);
          js.compute(chunks, sh, iv, a, 3);
          nat.compute(chunks, sh, iv, b, 3);
          assert.deepEqual(b, a, `compute differs (k ${k})`);
          const icv = a.slice(3, 3 + js.icvLen);
          assert.equal(nat.verify(chunks, sh, iv, icv), true);
          assert.equal(nat.verify([msg.subarray(0, chunks.length ? msg.length : 0)], sh, iv, icv), true, 'one chunk = same MAC');
          const bad = icv.slice();
          bad[int(bad.length)]! ^= 1 << int(8);
          assert.equal(nat.verify(chunks, sh, iv, bad), false);
          assert.equal(js.verify(chunks, sh, iv, bad), false);
          if (sh >= 0) assert.equal(nat.verify(chunks, sh === 0 ? 1 : sh - 1, iv, icv), false);
          if (iv) {
            const iv2 = iv.slice();
            iv2[0]! ^= 1;
            assert.equal(nat.verify(chunks, sh, iv2, icv), false);
            assert.equal(js.verify(chunks, sh, iv2, icv), false);
            assert.equal(nat.verify(chunks, sh, null, icv), false);
            assert.throws(() => nat.compute(chunks, sh, null, a, 0), RangeError);
          }
          assert.equal(nat.verify(chunks, sh, iv, icv.subarray(1)), false, 'wrong expected length');
        }
      });
    }
  });

  describe(`crypto-native (${mode} cipher calls): runBatch against runJobs`, { skip }, () => {
    before(() => { nativeCipherCalls(mode === 'direct'); });
    test('mixed tx then rx batches, tampering, missing and fallback slots', () => {
      // slot → (esp, ah) definitions; slot 5 uses single DES (deferred to JS), 7 is never defined.
      const defs = [
        { slot: 0, esp: espParams('aes-gcm-128', 'none'), ah: null },
        { slot: 1, esp: espParams('aes-cbc-128', 'hmac-sha1-96'), ah: null },
        { slot: 2, esp: espParams('chacha20-poly1305', 'none'), ah: { integrity: 'hmac-sha256-128', integrityKey: bytes(32), icvLength: 16 } },
        { slot: 3, esp: null, ah: { integrity: 'aes-gmac-128', integrityKey: bytes(20), icvLength: 16 } },
        { slot: 4, esp: espParams('null', 'aes-gmac-256'), ah: { integrity: 'hmac-sha1-96', integrityKey: bytes(20), icvLength: 12 } },
        { slot: 5, esp: espParams('des-cbc', 'hmac-md5-96'), ah: null },
        { slot: 6, esp: espParams('aes-ctr-256', 'hmac-sha512-256'), ah: null },
      ];
      // The reference is runJobs on node:crypto transforms: a SlotTable without the addon's mirror
      // (`native` is the field through which runJobs hands whole batches to the addon, when hooked).
      const jsOnly = (t: SlotTable): SlotTable => Object.assign(t, { native: null });
      const jsTable = jsOnly(new SlotTable());
      const natJsTable = jsOnly(new SlotTable()); // the JS transforms the native table falls back to
      const nt = createNativeSlotTable()!;
      for (const d of defs) {
        jsTable.define(d);
        natJsTable.define(d);
        const e = d.esp ? createNativeEspTransform(d.esp) ?? createEspTransform(d.esp) : null;
        const a = d.ah ? createNativeAhTransform(d.ah) ?? createAhTransform(d.ah) : null;
        nt.define(d.slot, e, a);
      }
      const N = 300;
      const data = new Uint8Array(N * 1800);
      const meta = new Int32Array(N * JOB_FIELDS);
      let used = 0;
      for (let i = 0; i < N; i++) {
        const slot = int(8);
        const d = defs[slot];
        const esp = d?.esp ? createEspTransform(d.esp) : null;
        const ah = d?.ah ? createAhTransform(d.ah) : null;
        const ahLen = ah ? 12 + int(40) : 0; // a fake "AH header + IP" prefix covered by the AH ICV
        const pkt = makePacket(esp ?? createEspTransform(espParams('null', 'none')), int(1400));
        const espLen = pkt.end - pkt.start;
        const off = used;
        const len = ahLen + espLen;
        data.set(bytes(ahLen), off);
        data.set(pkt.buf.subarray(pkt.start, pkt.end), off + ahLen);
        const aux = off + len;
        used = (aux + 8 + 32 + 7) & ~7;
        const b = i * JOB_FIELDS;
        meta[b + J.ESP_SLOT] = slot;
        meta[b + J.AH_SLOT] = slot;
        let op = 0;
        if (esp || slot === 7) op |= Op.ESP_SEAL;
        if (ah || (slot === 7 && int(2))) op |= Op.AH_COMPUTE;
        meta[b + J.OP] = op;
        meta[b + J.OFF] = off;
        meta[b + J.LEN] = len;
        meta[b + J.ESP] = ahLen;
        meta[b + J.SEQH_ESP] = int(3) === 0 ? -1 : int(1000);
        meta[b + J.SEQH_AH] = int(3) === 0 ? -1 : int(1000);
        meta[b + J.AUX] = aux;
        data.set(bytes(8), aux); // GMAC IV
      }
      const run = (d: Uint8Array, m: Int32Array, srcs: Uint8Array[] = []) => {
        const jd = d.slice();
        const jm = m.slice();
        runJobs(jsTable, jd, jm, N, srcs);
        const nd = d.slice();
        const nm = m.slice();
        const deferred = nt.run(nd, nm, N, srcs);
        let seen = 0;
        for (let i = 0; i < N; i++) {
          const b = i * JOB_FIELDS;
          if (nm[b + J.RESULT] === DEFERRED) {
            seen++;
            runJobs(natJsTable, nd, nm.subarray(b, b + JOB_FIELDS), 1, srcs);
          }
        }
        assert.equal(seen, deferred);
        assert.ok(deferred > 0, 'some DES jobs were deferred');
        assert.deepEqual(nm, jm, 'results');
        assert.deepEqual(nd, jd, 'data');
        return { d: jd, m: jm };
      };
      // tx: seal + compute
      const tx = run(data, meta);
      // rx: verify + open of what tx produced; a third of the jobs tampered
      const rxMeta = tx.m.slice();
      const rxData = tx.d.slice();
      for (let i = 0; i < N; i++) {
        const b = i * JOB_FIELDS;
        const op = rxMeta[b + J.OP]!;
        rxMeta[b + J.OP] = (op & Op.ESP_SEAL ? Op.ESP_OPEN : 0) | (op & Op.AH_COMPUTE ? Op.AH_VERIFY : 0);
        rxMeta[b + J.RESULT] = 0;
        if (int(3) === 0) rxData[rxMeta[b + J.OFF]! + int(rxMeta[b + J.LEN]!)]! ^= 0x80;
      }
      // half the jobs copy their region from one of two shared sources first (J.SRC, as rx jobs
      // whose bytes are in the reader's input chunk); their data holds garbage until then. A few
      // name a source that does not exist or a range beyond it: internal error, nothing copied.
      const srcs = [new Uint8Array(new SharedArrayBuffer(N * 1800)), new Uint8Array(new SharedArrayBuffer(N * 1800))];
      const srcUsed = [0, 0];
      const bad: number[] = [];
      for (let i = 0; i < N; i++) {
        const b = i * JOB_FIELDS;
        if (int(2) === 0) continue;
        const k = int(2);
        const off = rxMeta[b + J.OFF]!;
        const len = rxMeta[b + J.LEN]!;
        const at = srcUsed[k]! + int(5);
        srcs[k]!.set(rxData.subarray(off, off + len), at);
        srcUsed[k] = at + len;
        rxData.set(bytes(len), off);
        rxMeta[b + J.SRC] = k + 1;
        rxMeta[b + J.SRC_OFF] = at;
        if (int(20) === 0) {
          if (int(2) === 0) rxMeta[b + J.SRC] = 3;
          else rxMeta[b + J.SRC_OFF] = srcs[k]!.length - len + 1;
          bad.push(i);
        }
      }
      assert.ok(bad.length > 0);
      const rx = run(rxData, rxMeta, srcs);
      for (const i of bad) {
        const r = rx.m[i * JOB_FIELDS + J.RESULT]!;
        assert.ok(r === (3 | (15 << 4)) || r === (15 | (3 << 4)), `job ${i} with a bad source: ${r.toString(16)}`);
      }
      const results = new Set<number>();
      for (let i = 0; i < N; i++) results.add(rx.m[i * JOB_FIELDS + J.RESULT]!);
      assert.ok(results.size >= 4, `a mix of outcomes: ${[...results].map((r) => r.toString(16)).join(',')}`);
    });
  });

  describe(`crypto-native (${mode} cipher calls): ESP-only rx jobs read from a source`, { skip }, () => {
    before(() => { nativeCipherCalls(mode === 'direct'); });
    // The addon decrypts such jobs out of place (from the source into the job's bytes, no copy
    // first): the same results and bytes as in place and as runJobs on node:crypto, for every
    // ESP mode; a failure leaves the packet as received.
    const combos: [string, string][] = [
      ['aes-gcm-128', 'none'], ['aes-gcm-256', 'none'], ['chacha20-poly1305', 'none'], ['null', 'aes-gmac-128'],
      ['null', 'hmac-sha256-128'], ['aes-cbc-128', 'hmac-sha1-96'], ['aes-cbc-256', 'none'], ['aes-ctr-128', 'hmac-sha512-256'],
      ['3des-cbc', 'hmac-md5-96'],
    ];
    for (const [encName, integName] of combos) {
      test(`${encName} + ${integName}: good, tampered (header, IV, ciphertext, ICV), bad length`, () => {
        const d = { slot: 0, esp: espParams(encName, integName), ah: null };
        const t = createEspTransform(d.esp);
        const jsTable = Object.assign(new SlotTable(), { native: null });
        jsTable.define(d);
        const nt = createNativeSlotTable()!;
        nt.define(0, createNativeEspTransform(d.esp) ?? t, null);
        const N = 60;
        const data = new Uint8Array(N * 1700);
        const meta = new Int32Array(N * JOB_FIELDS);
        let used = 0;
        for (let i = 0; i < N; i++) {
          const pre = int(60); // an outer header before ESP (copied as is)
          const pkt = makePacket(t, int(1400));
          const espLen = pkt.end - pkt.start;
          data.set(bytes(pre), used);
          data.set(pkt.buf.subarray(pkt.start, pkt.end), used + pre);
          const b = i * JOB_FIELDS;
          meta[b + J.ESP_SLOT] = 0;
          meta[b + J.AH_SLOT] = -1;
          meta[b + J.OP] = Op.ESP_SEAL;
          meta[b + J.OFF] = used;
          meta[b + J.LEN] = pre + espLen;
          meta[b + J.ESP] = pre;
          meta[b + J.SEQH_ESP] = int(2) === 0 ? -1 : int(1000);
          used += pre + espLen + int(9);
        }
        runJobs(jsTable, data, meta, N, []);
        const sealed = data.slice();
        const srcs = [new Uint8Array(new SharedArrayBuffer(data.length + 64))];
        const srcOff = 1 + int(60);
        for (let i = 0; i < N; i++) {
          const b = i * JOB_FIELDS;
          meta[b + J.OP] = Op.ESP_OPEN;
          meta[b + J.RESULT] = 0;
          const off = meta[b + J.OFF]!;
          const len = meta[b + J.LEN]!;
          const esp = meta[b + J.ESP]!;
          const kind = i % 6;
          const ivLen = t.ivLen;
          if (kind === 1) sealed[off + esp + int(8)]! ^= 1; // SPI or sequence number (authenticated)
          else if (kind === 2 && ivLen > 0) sealed[off + esp + 8 + int(ivLen)]! ^= 1;
          else if (kind === 3) sealed[off + esp + 8 + ivLen + int(len - esp - 8 - ivLen - t.icvLen)]! ^= 0x40;
          else if (kind === 4 && t.icvLen > 0) sealed[off + len - 1 - int(t.icvLen)]! ^= 1;
          else if (kind === 5) meta[b + J.LEN] = len - 1; // not a whole ESP packet (bad length for block ciphers and short ones)
          srcs[0]!.set(sealed.subarray(off, off + len), srcOff + off);
          meta[b + J.SRC] = 1;
          meta[b + J.SRC_OFF] = srcOff + off;
        }
        // reference: node:crypto, in place over the received bytes
        const jd = sealed.slice();
        const jm = meta.slice();
        for (let i = 0; i < N; i++) jm[i * JOB_FIELDS + J.SRC] = 0;
        runJobs(jsTable, jd, jm, N, []);
        // the addon, in place and from the source (the job's bytes hold garbage until then)
        const ipd = sealed.slice();
        const ipm = jm.slice();
        for (let i = 0; i < N; i++) ipm[i * JOB_FIELDS + J.RESULT] = 0;
        const ipDeferred = nt.run(ipd, ipm, N, []);
        const sd = bytes(sealed.length);
        const sm = meta.slice();
        const sDeferred = nt.run(sd, sm, N, srcs);
        assert.equal(ipDeferred, 0, 'every mode here has a native transform');
        assert.equal(sDeferred, 0);
        for (const [dd, mm] of [[ipd, ipm], [sd, sm]] as const) {
          for (let i = 0; i < N; i++) {
            const b = i * JOB_FIELDS;
            assert.equal(mm[b + J.RESULT], jm[b + J.RESULT], `job ${i} (kind ${i % 6}) result`);
            const off = jm[b + J.OFF]!;
            assert.deepEqual(dd.subarray(off, off + jm[b + J.LEN]!), jd.subarray(off, off + jm[b + J.LEN]!), `job ${i} (kind ${i % 6}) bytes`);
          }
        }
        const results = new Set<number>();
        for (let i = 0; i < N; i++) results.add(jm[i * JOB_FIELDS + J.RESULT]! >> 4);
        assert.ok(results.has(OpenResult.Ok), `outcomes: ${[...results].join(',')}`);
        if (t.icvLen > 0) assert.ok(results.has(OpenResult.AuthFailed), `outcomes: ${[...results].join(',')}`);
        // a failed job's bytes are the packet as received
        for (let i = 0; i < N; i++) {
          const b = i * JOB_FIELDS;
          if (jm[b + J.RESULT]! >> 4 === OpenResult.Ok) continue;
          const off = jm[b + J.OFF]!;
          assert.deepEqual(sd.subarray(off, off + jm[b + J.LEN]!), sealed.subarray(off, off + jm[b + J.LEN]!), `job ${i} untouched`);
        }
      });
    }
  });

  describe(`crypto-native (${mode} cipher calls): runBatch ESN high bits ≥ 2^31`, { skip }, () => {
    before(() => { nativeCipherCalls(mode === 'direct'); });
    test('op bit 16/32 reads SEQH_ESP/SEQH_AH as unsigned 32-bit', () => {
      const p = espParams('aes-gcm-128', 'none');
      const ahp: AhParams = { integrity: 'hmac-sha1-96', integrityKey: bytes(20), icvLength: 12 };
      const js = createEspTransform(p);
      const jsAh = createAhTransform(ahp);
      const nt = createNativeSlotTable()!;
      nt.define(0, createNativeEspTransform(p), createNativeAhTransform(ahp));
      const pkt = makePacket(js, 100);
      const len = pkt.end - pkt.start;
      const data = new Uint8Array(len + 64);
      data.set(pkt.buf.subarray(pkt.start, pkt.end), 0);
      const meta = new Int32Array(JOB_FIELDS);
      meta[J.OP] = Op.ESP_SEAL | Op.AH_COMPUTE | 16 | 32;
      meta[J.LEN] = len;
      meta[J.SEQH_ESP] = 0x80000005 | 0;
      meta[J.SEQH_AH] = 0xfffffffe | 0;
      meta[J.AUX] = len + 8;
      assert.equal(nt.run(data, meta, 1), 0);
      assert.equal(meta[J.RESULT], 0);
      const ref = pkt.buf.slice(pkt.start, pkt.end);
      js.seal(ref, 0, len, 0x80000005);
      assert.deepEqual(data.subarray(0, len), ref);
      const icv = new Uint8Array(12);
      jsAh.compute([ref], 0xfffffffe, null, icv, 0);
      assert.deepEqual(data.subarray(len + 8, len + 20), icv);
    });
  });
}

test('crypto-native: contexts are made with direct provider calls by default, through EVP on request', { skip }, () => {
  const prev = nativeCipherCalls(true)!;
  try {
    for (const direct of [true, false]) {
      nativeCipherCalls(direct);
      const before = nativeCipherCalls()!.made;
      for (const e of ['aes-gcm-128', 'aes-cbc-256', 'chacha20-poly1305', '3des-cbc', 'aes-ctr-128']) assert.ok(createNativeEspTransform(espParams(e, e.includes('gcm') || e.includes('chacha') ? 'none' : 'hmac-sha1-96')));
      assert.ok(createNativeAhTransform({ integrity: 'aes-gmac-128', integrityKey: bytes(20), icvLength: 16 } as AhParams));
      const after = nativeCipherCalls()!.made;
      // GCM and ChaCha20: 2 contexts each (both directions), CBC 2, CTR 1, 3DES-CBC 2, AH GMAC 1
      assert.equal(direct ? after.direct - before.direct : after.evp - before.evp, 10, JSON.stringify({ before, after }));
      assert.equal(direct ? after.evp - before.evp : after.direct - before.direct, 0);
    }
  } finally {
    nativeCipherCalls(prev.previous);
  }
});
