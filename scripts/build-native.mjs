#!/usr/bin/env node
/**
 * Install-time build of the optional native crypto addon (native/ipsecov2_native.c, binding.gyp)
 * into build/Release/ipsecov2_native.node. It NEVER fails the install: on any problem it prints
 * one line ("ipsecov2: native crypto addon not built (REASON); using node:crypto"), removes any
 * half-built addon and exits 0; the tool then uses node:crypto (src/crypto/native.ts decides at
 * run time). After building, the addon is loaded in a child process and checked against
 * node:crypto on a GCM and an HMAC packet; one that fails is deleted.
 *
 * node-gyp: the one npm bundles ($npm_config_node_gyp, set by npm for lifecycle scripts), else
 * npm's copy next to this node, else `node-gyp` on PATH. Headers: npm's nodedir when configured,
 * else the ones installed with this node (<prefix>/include/node, which include OpenSSL's) when
 * present, else node-gyp's download.
 *
 * Env: IPSECOV2_NO_NATIVE=1 skips the build; IPSECOV2_NATIVE_VERBOSE=1 echoes node-gyp's output.
 * Full output of the last build: build/native-build.log.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ADDON = join(ROOT, 'build', 'Release', 'ipsecov2_native.node');
const LOG = join(ROOT, 'build', 'native-build.log');
const verbose = !!process.env.IPSECOV2_NATIVE_VERBOSE;

function fail(reason, keep = false) {
  if (!keep) {
    try {
      rmSync(ADDON, { force: true }); // never leave a half-built or failing addon behind
    } catch {
      /* nothing to remove */
    }
  }
  console.log(`ipsecov2: native crypto addon not built (${reason}); using node:crypto`);
  process.exit(0);
}

function nodeGyp() {
  const c = [];
  if (process.env.npm_config_node_gyp) c.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) c.push(join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const prefix = resolve(dirname(process.execPath), '..');
  c.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  c.push(join(dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')); // Windows layout
  for (const p of c) if (p && existsSync(p)) return { cmd: process.execPath, args: [p] };
  const which = spawnSync(process.platform === 'win32' ? 'where' : 'which', ['node-gyp'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return { cmd: which.stdout.trim().split(/\r?\n/)[0], args: [] };
  return null;
}

/** The most telling line of a failed build's output. */
function firstError(out) {
  const lines = out.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const pick =
    (lines.some((l) => l.startsWith('gyp ERR! find Python')) ? 'Python 3 not found (node-gyp needs it)' : undefined) ??
    lines.find((l) => /fatal error|No such file/.test(l)) ??
    lines.find((l) => /\berror\b[: ]/i.test(l) && !/^gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(l)) ??
    lines.find((l) => l.startsWith('gyp ERR!')) ??
    lines[lines.length - 1] ??
    'no output';
  const s = pick.replace(/^gyp ERR! /, '');
  return s.length > 140 ? `${s.slice(0, 137)}...` : s;
}

// Loads the addon and checks it against node:crypto (runs in a child: a crash cannot hurt us).
const SELF_TEST = `
const c = require('node:crypto');
const a = require(process.argv[1]);
if (a.abi !== 14) throw new Error('abi ' + a.abi);
const key = c.randomBytes(16), salt = c.randomBytes(4), iv = c.randomBytes(8), pt = c.randomBytes(61);
const hdr = Buffer.from('0000100000000007', 'hex');
const ci = c.createCipheriv('aes-128-gcm', key, Buffer.concat([salt, iv]), { authTagLength: 16 });
ci.setAAD(hdr);
const ct = Buffer.concat([ci.update(pt), ci.final()]);
const sealed = Buffer.concat([hdr, iv, ct, ci.getAuthTag()]);
for (const direct of [true, false]) { // OpenSSL's provider functions called directly, and through EVP
  a.setDirect(direct);
  const pkt = new Uint8Array(sealed);
  const g = a.espNew(1, 'aes-128-gcm', key, salt, 0, null, 8, 16, 1);
  if (a.espOpen(g, pkt, 0, pkt.length, -1) !== 0) throw new Error('GCM open failed');
  if (!Buffer.from(pkt.subarray(16, 16 + pt.length)).equals(pt)) throw new Error('GCM plaintext differs');
}
if (a.madeCounts()[0] < 2) throw new Error('no direct provider calls');
{ // a batch job whose region is copied from a shared source first (J.SRC = 12, J.SRC_OFF = 13)
  const t = a.tableNew();
  a.tableSet(t, 0, 1, a.espNew(1, 'aes-128-gcm', key, salt, 0, null, 8, 16, 1), 0, null);
  const sab = new SharedArrayBuffer(sealed.length + 3);
  new Uint8Array(sab).set(sealed, 3);
  const data = new Uint8Array(sealed.length + 8), meta = new Int32Array(14);
  meta[2] = 2; meta[3] = 8; meta[4] = sealed.length; meta[7] = -1; meta[8] = -1; meta[12] = 1; meta[13] = 3;
  if (a.runBatch(t, data, meta, 1, [new Uint8Array(sab)]) !== 0 || meta[10] !== 15) throw new Error('runBatch with a source failed: ' + meta[10]);
  if (!Buffer.from(data.subarray(24, 24 + pt.length)).equals(pt)) throw new Error('runBatch plaintext differs');
  const alias = new Uint8Array(a.aliasShared(new Uint8Array(sab)));
  alias[0] = 0x5a;
  if (alias.length !== sab.byteLength || new Uint8Array(sab)[0] !== 0x5a) throw new Error('aliasShared: not the same memory');
}
const mk = c.randomBytes(20), p2 = new Uint8Array(Buffer.concat([hdr, c.randomBytes(40), Buffer.alloc(12)]));
const h = a.espNew(0, '', null, null, 2, mk, 0, 12, 1);
if (a.espSeal(h, p2, 0, p2.length, 5) !== 0) throw new Error('HMAC seal failed');
const want = c.createHmac('sha1', mk).update(p2.subarray(0, p2.length - 12)).update(Buffer.from([0, 0, 0, 5])).digest().subarray(0, 12);
if (!want.equals(p2.subarray(p2.length - 12))) throw new Error('HMAC-SHA1 differs');
const tx = a.textNew(), ends = new Int32Array(2);
a.textPiece(tx, 0, Buffer.from('x'));
if (a.emitBatch(tx, new Int32Array(20), 0, new Uint8Array(8), new Uint8Array(8), null, 0, null, 0, ends) !== true) throw new Error('emitBatch failed');
`;

try {
  const off = process.env.IPSECOV2_NO_NATIVE;
  if (off !== undefined && off !== '' && off !== '0') fail('IPSECOV2_NO_NATIVE is set', true);
  if (!existsSync(join(ROOT, 'binding.gyp')) || !existsSync(join(ROOT, 'native', 'ipsecov2_native.c'))) fail('sources not in the package');
  const gyp = nodeGyp();
  if (!gyp) fail('node-gyp not found');

  const args = [...gyp.args, 'rebuild'];
  if (!process.env.npm_config_nodedir) {
    const prefix = resolve(dirname(process.execPath), '..');
    const inc = join(prefix, 'include', 'node');
    if (existsSync(join(inc, 'node_api.h')) && existsSync(join(inc, 'openssl', 'evp.h')) && existsSync(join(inc, 'common.gypi'))) {
      args.push(`--nodedir=${prefix}`);
    }
  }
  const r = spawnSync(gyp.cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 5 * 60 * 1000,
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
    shell: process.platform === 'win32' && gyp.args.length === 0,
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  try {
    mkdirSync(dirname(LOG), { recursive: true });
    writeFileSync(LOG, `$ ${gyp.cmd} ${args.join(' ')}\n${out}${r.error ? `\n${r.error.message}\n` : ''}`);
  } catch {
    /* the log is best effort */
  }
  if (verbose) process.stdout.write(out);
  if (r.error) fail(r.error.code === 'ETIMEDOUT' ? 'node-gyp timed out' : `node-gyp did not run: ${r.error.message}`);
  if (r.status !== 0) fail(`${firstError(out)}; see build/native-build.log`);
  if (!existsSync(ADDON)) fail('node-gyp produced no build/Release/ipsecov2_native.node');

  const t = spawnSync(process.execPath, ['-e', SELF_TEST, ADDON], { encoding: 'utf8', timeout: 60 * 1000 });
  if (t.status !== 0) {
    const msg = `${t.stderr ?? ''}`.split(/\r?\n/).find((l) => /Error/.test(l)) ?? (t.error ? t.error.message : `exit ${t.status ?? t.signal}`);
    fail(`built, but its self-test failed: ${msg.trim().slice(0, 140)}`);
  }
  console.log('ipsecov2: native crypto addon built (build/Release/ipsecov2_native.node)');
  process.exit(0);
} catch (e) {
  fail(`unexpected: ${e && e.message ? e.message : String(e)}`);
}
