/**
 * Native crypto addon: the automatic fallback (IPSECOV2_NO_NATIVE=1 → node:crypto, factories
 * return null, nativeInfo says why), its EVP mode (IPSECOV2_NATIVE_EVP=1), and loading in
 * worker_threads (one addon instance per thread, contexts created and finalised per thread).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { nativeAvailable, nativeInfo } from '../src/crypto/native.js';

const NATIVE_JS = new URL('../src/crypto/native.js', import.meta.url).href;

test('IPSECOV2_NO_NATIVE=1 disables the addon: factories return null, info says node:crypto', () => {
  const script = `
    const n = await import(${JSON.stringify(NATIVE_JS)});
    const p = { encryption: 'aes-gcm-128', encryptionKey: new Uint8Array(20), integrity: 'none', integrityKey: new Uint8Array(0), icvLength: 16 };
    console.log(JSON.stringify({
      available: n.nativeAvailable(),
      info: n.nativeInfo(),
      esp: n.createNativeEspTransform(p),
      ah: n.createNativeAhTransform({ integrity: 'hmac-sha1-96', integrityKey: new Uint8Array(20), icvLength: 12 }),
      table: n.createNativeSlotTable(),
    }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, IPSECOV2_NO_NATIVE: '1' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.deepEqual(o, { available: false, info: 'node:crypto (disabled by IPSECOV2_NO_NATIVE)', esp: null, ah: null, table: null });
});

test('IPSECOV2_NATIVE_EVP=1: the addon\'s cipher contexts go through EVP, and info says so', { skip: nativeAvailable() ? false : nativeInfo() }, () => {
  const script = `
    const n = await import(${JSON.stringify(NATIVE_JS)});
    const p = { encryption: 'aes-gcm-128', encryptionKey: new Uint8Array(20), integrity: 'none', integrityKey: new Uint8Array(0), icvLength: 16 };
    const esp = n.createNativeEspTransform(p);
    console.log(JSON.stringify({ esp: esp !== null, info: n.nativeInfo(), calls: n.nativeCipherCalls() }));`;
  for (const [env, direct] of [['1', false], ['0', true], ['', true]] as const) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, IPSECOV2_NATIVE_EVP: env }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout) as { esp: boolean; info: string; calls: { previous: boolean; made: { direct: number; evp: number } } };
    assert.equal(o.esp, true);
    assert.match(o.info, direct ? /, provider calls\)$/ : /, EVP calls: IPSECOV2_NATIVE_EVP\)$/);
    assert.deepEqual(o.calls, { previous: direct, made: direct ? { direct: 2, evp: 0 } : { direct: 0, evp: 2 } });
  }
});

test('nativeInfo names the active path', () => {
  if (nativeAvailable()) assert.match(nativeInfo(), /^native addon \(OpenSSL 3\.\S+ via node, (provider calls|EVP calls: IPSECOV2_NATIVE_EVP)\)$/);
  else assert.match(nativeInfo(), /^node:crypto \(.+\)$/);
});

test('the addon loads and works in worker threads (one instance per thread)', { skip: nativeAvailable() ? false : nativeInfo() }, async () => {
  const src = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(NATIVE_JS)}).then((n) => {
      const c = require('node:crypto');
      const key = Buffer.alloc(20, 7);
      const p = { encryption: 'aes-gcm-128', encryptionKey: key, integrity: 'none', integrityKey: new Uint8Array(0), icvLength: 16 };
      let ok = 0;
      for (let k = 0; k < 200; k++) {
        const t = n.createNativeEspTransform(p);
        const buf = new Uint8Array(8 + 8 + 32 + 16);
        buf.set(c.randomBytes(16), 0);
        t.seal(buf, 0, buf.length, -1);
        if (t.open(buf, 0, buf.length, -1) === 0) ok++;
      }
      parentPort.postMessage({ ok, info: n.nativeInfo() });
    });`;
  const run = () =>
    new Promise<{ ok: number; info: string }>((resolve, reject) => {
      const w = new Worker(src, { eval: true });
      w.once('message', (m: { ok: number; info: string }) => {
        void w.terminate().then(() => resolve(m));
      });
      w.once('error', reject);
    });
  const res = await Promise.all([run(), run(), run()]);
  for (const m of res) {
    assert.equal(m.ok, 200);
    assert.match(m.info, /^native addon/);
  }
});
