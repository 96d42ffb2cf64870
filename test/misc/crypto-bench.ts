/**
 * Micro-benchmark of the ESP transforms: µs per packet for open() (verify + decrypt) and seal(),
 * and the strategy comparisons (CBC decrypt: long-lived ECB + JS XOR vs createDecipheriv per packet;
 * AES-CTR: ECB keystream vs OpenSSL CTR per packet). Run: node dist/test/misc/crypto-bench.js
 */
import { randomBytes } from 'node:crypto';
import { createEspTransform, type EspImplOptions } from '../../src/crypto/esp.js';
import { ENCRYPTION, INTEGRITY } from '../../src/crypto/registry.js';
import type { EspParams, EspTransform } from '../../src/crypto/types.js';

const N = 2048;

function packets(t: EspTransform, size: number, seqHigh: number): { bufs: Buffer[]; sealed: Buffer[] } {
  const bufs: Buffer[] = [];
  for (let i = 0; i < N; i++) {
    const plainLen = Math.ceil((size + 2) / t.padUnit) * t.padUnit;
    const b = Buffer.alloc(8 + t.ivLen + plainLen + t.icvLen);
    randomBytes(8 + t.ivLen + plainLen).copy(b);
    b[8 + t.ivLen + plainLen - 2] = plainLen - size - 2;
    t.seal(b, 0, b.length, seqHigh);
    bufs.push(b);
  }
  return { bufs, sealed: bufs.map((b) => Buffer.from(b)) };
}

/** Best of `reps` windows of `ms` each (the machine is shared: the minimum is the least disturbed). */
function time(label: string, fn: () => void, ms = 250, reps = 5): number {
  fn(); // warm-up
  let us = Infinity;
  for (let r = 0; r < reps; r++) {
    let n = 0;
    const t0 = performance.now();
    let t1 = t0;
    while (t1 - t0 < ms) {
      fn();
      n += N;
      t1 = performance.now();
    }
    us = Math.min(us, ((t1 - t0) * 1000) / n);
  }
  console.log(`${label.padEnd(58)} ${us.toFixed(2).padStart(7)} µs/pkt ${(1e6 / us / 1000).toFixed(0).padStart(5)} k pkt/s`);
  return us;
}

function bench(p: EspParams, size: number, impl: EspImplOptions = {}, label = ''): void {
  const t = createEspTransform(p, impl);
  const { bufs, sealed } = packets(t, size, -1);
  const name = `${p.encryption}+${p.integrity} ${size}B ${label}`;
  time(`open ${name}`, () => {
    for (let i = 0; i < N; i++) {
      bufs[i]!.set(sealed[i]!);
      t.open(bufs[i]!, 0, bufs[i]!.length, -1);
    }
  });
  time(`seal ${name}`, () => {
    for (let i = 0; i < N; i++) t.seal(bufs[i]!, 0, bufs[i]!.length, -1);
  });
}

const key = (e: string) => randomBytes(ENCRYPTION[e]!.keyLen + ENCRYPTION[e]!.saltLen);
const ikey = (i: string) => randomBytes(INTEGRITY[i]!.keyLen + INTEGRITY[i]!.saltLen);
const gcm: EspParams = { encryption: 'aes-gcm-128', encryptionKey: key('aes-gcm-128'), integrity: 'none', integrityKey: new Uint8Array(0), icvLength: 16 };
const cbcSha1: EspParams = { encryption: 'aes-cbc-128', encryptionKey: key('aes-cbc-128'), integrity: 'hmac-sha1-96', integrityKey: ikey('hmac-sha1-96'), icvLength: 12 };
const cbcSha256: EspParams = { ...cbcSha1, integrity: 'hmac-sha256-128', integrityKey: ikey('hmac-sha256-128'), icvLength: 16 };
const cbcOnly: EspParams = { ...cbcSha1, integrity: 'none', integrityKey: new Uint8Array(0), icvLength: 0 };
const ctrOnly: EspParams = { encryption: 'aes-ctr-128', encryptionKey: key('aes-ctr-128'), integrity: 'none', integrityKey: new Uint8Array(0), icvLength: 0 };
const gmac: EspParams = { encryption: 'null', encryptionKey: new Uint8Array(0), integrity: 'aes-gmac-128', integrityKey: ikey('aes-gmac-128'), icvLength: 16 };
const chacha: EspParams = { encryption: 'chacha20-poly1305', encryptionKey: key('chacha20-poly1305'), integrity: 'none', integrityKey: new Uint8Array(0), icvLength: 16 };
const des3: EspParams = { ...cbcSha1, encryption: '3des-cbc', encryptionKey: key('3des-cbc') };
const des: EspParams = { ...cbcSha1, encryption: 'des-cbc', encryptionKey: key('des-cbc') };

const what = process.argv[2] ?? 'all';
for (const size of [64, 1400]) {
  if (what === 'all' || what === 'strategy') {
    bench(cbcOnly, size, { cbc: 'ecb' }, '[cbc=ecb]');
    bench(cbcOnly, size, { cbc: 'evp' }, '[cbc=evp]');
    bench(ctrOnly, size, { ctr: 'ecb' }, '[ctr=ecb]');
    bench(ctrOnly, size, { ctr: 'evp' }, '[ctr=evp]');
  }
  if (what === 'core') {
    bench(gcm, size);
    bench(cbcSha1, size);
    bench(cbcSha256, size);
  }
  if (what === 'all' || what === 'main') {
    bench(gcm, size);
    bench(cbcSha1, size);
    bench(cbcSha1, size, { cbc: 'evp' }, '[cbc=evp]');
    bench(cbcSha256, size);
    bench(gmac, size);
    bench(chacha, size);
    bench(des3, size);
    bench(des, size);
  }
}
