/**
 * The single-file build (scripts/bundle.mjs): bin/ipsecov2 runs it when it is current, and it
 * behaves exactly like the separate modules, including the worker it starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ipsecov2');
const DEMO = join(ROOT, 'fixtures', 'demo');

function run(args: string[], env: NodeJS.ProcessEnv = {}, bin = BIN): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, with bin run as a program (its shell line starts `node`: this test's Node, first on PATH). */
function runProgram(args: string[], env: NodeJS.ProcessEnv = {}, bin = BIN): { status: number | null; stdout: string; stderr: string } {
  const path = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
  const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, PATH: path, NO_COLOR: '1', ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A bundle's text as scripts/bundle.mjs writes it: the module inside its CommonJS wrapper. */
function wrapped(code: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${code}\n})`;
}

test('bundle: npm test built it and bin/ipsecov2 runs it; IPSECOV2_NO_BUNDLE=1 runs the modules', () => {
  const b = run(['--version']);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /code: bundle, V8 code cache\)/, 'the bundle or its code cache is missing, or older than dist/src: npm test runs `node scripts/bundle.mjs` after tsc');
  // run as a program, under the V8 flags of its shell line: the other cache
  const p = runProgram(['--version']);
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stdout, /code: bundle, V8 code cache\)/, 'no code cache made under the flags bin/ipsecov2 passes');
  // the pool finds its worker beside itself: the bundled one (import.meta.url is the bundle's own URL)
  const cli = readFileSync(join(ROOT, 'dist/src/bundle/cli.cjs'), 'utf8');
  assert.match(cli, /new URL\("\.\/worker\.js", __ipsecov2Url\)/);
  // the module inside its wrapper function, the wrapper and the banner on line 1, and all ASCII
  // (V8 then keeps the source one byte a character); the comments' non-ASCII became \u escapes
  assert.match(cli, /^\(function \(exports, require, module, __filename, __dirname\) \{'use strict'; const __ipsecov2Url = require\('node:url'\)\.pathToFileURL\(__filename\)\.href;\n/);
  assert.match(cli, /\n\}\)$/);
  assert.doesNotMatch(cli, /[^\x00-\x7f]/);
  assert.match(cli, /\\u00a7/);
  assert.match(readFileSync(join(ROOT, 'dist/src/bundle/worker.js'), 'utf8'), /parentPort/);
  const m = run(['--version'], { IPSECOV2_NO_BUNDLE: '1' });
  assert.equal(m.status, 0, m.stderr);
  assert.match(m.stdout, /code: modules\)/);
});

test('bundle: rx output is byte-identical to the modules at 0 and 2 workers (the bundled worker)', () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-bundle-'));
  const sa = join(d, 'sas.yaml');
  copyFileSync(join(DEMO, 'demo-sas.yaml'), sa);
  chmodSync(sa, 0o600);
  for (const w of ['0', '2']) {
    const outs: Buffer[][] = [];
    // the pool takes the demo's only batch (by default it would run inline)
    for (const env of [{ IPSECOV2_POOL_EVERY_BATCH: '1' }, { IPSECOV2_NO_BUNDLE: '1', IPSECOV2_POOL_EVERY_BATCH: '1' }]) {
      const tag = `${w}-${outs.length}`;
      const r = run(['rx', '--sa', sa, join(DEMO, 'demo.pcapng'), '-w', join(d, `${tag}.pcapng`), '--oob', join(d, `${tag}.jsonl`), '--workers', w, '--quiet'], env);
      assert.equal(r.status, 0, r.stderr);
      outs.push([readFileSync(join(d, `${tag}.pcapng`)), readFileSync(join(d, `${tag}.jsonl`))]);
    }
    assert.ok(outs[0]![0]!.length > 1000);
    assert.ok(outs[0]![0]!.equals(outs[1]![0]!), `pcapng differs at --workers ${w}`);
    assert.ok(outs[0]![1]!.equals(outs[1]![1]!), `OOB differs at --workers ${w}`);
  }
});

test('bundle: a bundle older than any compiled module (a later tsc) is not used', () => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-bundle-'));
  mkdirSync(join(d, 'bin'));
  mkdirSync(join(d, 'dist/src/cli'), { recursive: true });
  mkdirSync(join(d, 'dist/src/bundle'), { recursive: true });
  const bin = join(d, 'bin', 'ipsecov2');
  copyFileSync(BIN, bin);
  writeFileSync(join(d, 'package.json'), '{"type":"module"}');
  const fake = (what: string): string => `export async function main() { console.log('${what}'); return 0; }\n`;
  const mod = join(d, 'dist/src/cli/main.js');
  const bun = join(d, 'dist/src/bundle/cli.cjs');
  writeFileSync(mod, fake('modules'));
  writeFileSync(bun, wrapped(`exports.main = async function () { console.log('bundle'); return 0; };`));
  const t = Date.now() / 1000;
  utimesSync(mod, t - 100, t - 100);
  utimesSync(bun, t - 50, t - 50);
  assert.equal(run([], {}, bin).stdout.trim(), 'bundle');
  utimesSync(mod, t, t);
  assert.equal(run([], {}, bin).stdout.trim(), 'modules');
  utimesSync(bun, t, t);
  assert.equal(run([], {}, bin).stdout.trim(), 'bundle');
  // any other module rewritten later (tsc --watch) also makes it stale
  mkdirSync(join(d, 'dist/src/offload'));
  const other = join(d, 'dist/src/offload/rx.js');
  writeFileSync(other, '');
  utimesSync(other, t + 10, t + 10);
  assert.equal(run([], {}, bin).stdout.trim(), 'modules');
  utimesSync(bun, t + 20, t + 20);
  assert.equal(run([], {}, bin).stdout.trim(), 'bundle');
  assert.equal(run([], { IPSECOV2_NO_BUNDLE: '1' }, bin).stdout.trim(), 'modules');
});

/**
 * A copy of bin/ipsecov2 in a temporary package whose bundle is `main` (a module's text), dated 10
 * s ago: older than anything a test writes after it.
 */
function fakeBundle(main: string): { bin: string; bun: string; t: number } {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-bundle-'));
  mkdirSync(join(d, 'bin'));
  mkdirSync(join(d, 'dist/src/bundle'), { recursive: true });
  const bin = join(d, 'bin', 'ipsecov2');
  copyFileSync(BIN, bin);
  writeFileSync(join(d, 'package.json'), '{"type":"module"}');
  const bun = join(d, 'dist/src/bundle/cli.cjs');
  writeFileSync(bun, wrapped(main));
  const t = Math.floor(Date.now() / 1000) - 10;
  utimesSync(bun, t, t);
  return { bin, bun, t };
}

test('bundle: the code cache is tied to its bundle; a missing, foreign or corrupt cache only costs time', () => {
  const main = "/*A*/ exports.main = async function () { console.log(String(globalThis[Symbol.for('ipsecov2.codeCache')])); return 0; };";
  const { bin, bun, t } = fakeBundle(main);
  const cacheOf = (): string => { const st = statSync(bun); return `${bun}.${st.size}-${Math.trunc(st.mtimeMs)}.direct.cache`; };
  assert.equal(run([], {}, bin).stdout.trim(), 'none');
  // what scripts/bundle.mjs does: a run that writes the cache, then runs that use it
  const w = run([], { IPSECOV2_CODE_CACHE_OUT: cacheOf() }, bin);
  assert.equal(w.status, 0, w.stderr);
  assert.ok(statSync(cacheOf()).size > 0);
  assert.equal(run([], {}, bin).stdout.trim(), 'used');
  // corrupt: V8 rejects it, the bundle still runs
  writeFileSync(cacheOf(), Buffer.alloc(600, 7));
  const r = run([], {}, bin);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'rejected');
  // a rebuilt bundle (new mtime) never meets the old cache, even one of the same length
  run([], { IPSECOV2_CODE_CACHE_OUT: cacheOf() }, bin);
  writeFileSync(bun, wrapped(main.replace('/*A*/', '/*B*/')));
  utimesSync(bun, t + 5, t + 5);
  assert.equal(run([], {}, bin).stdout.trim(), 'none');
});

test('bundle: run as a program, bin/ipsecov2 caps V8\'s young generation, and each way of starting it has its own code cache', { skip: process.platform === 'win32' ? 'needs a POSIX shell' : false }, () => {
  const { bin, bun } = fakeBundle("exports.main = async function () { console.log(String(globalThis[Symbol.for('ipsecov2.codeCache')]), JSON.stringify(process.execArgv)); return 0; };");
  const st = statSync(bun);
  const base = `${bun}.${st.size}-${Math.trunc(st.mtimeMs)}`;
  const FLAGS = '["--max-semi-space-size=4"]';
  assert.equal(runProgram([], {}, bin).stdout.trim(), `none ${FLAGS}`);
  assert.equal(run([], {}, bin).stdout.trim(), 'none []');
  // a cache made under no flags, where the program looks: V8 sees the program's flag and rejects it
  const w = run([], { IPSECOV2_CODE_CACHE_OUT: `${base}.cache` }, bin);
  assert.equal(w.status, 0, w.stderr);
  assert.ok(statSync(`${base}.cache`).size > 0);
  assert.equal(runProgram([], {}, bin).stdout.trim(), `rejected ${FLAGS}`);
  // what scripts/bundle.mjs does: one made under the program's flags, and one under none
  const wf = spawnSync(process.execPath, ['--max-semi-space-size=4', bin], { encoding: 'utf8', env: { ...process.env, IPSECOV2_CODE_CACHE_OUT: `${base}.cache` } });
  assert.equal(wf.status, 0, wf.stderr);
  assert.equal(runProgram([], {}, bin).stdout.trim(), `used ${FLAGS}`);
  assert.equal(run([], {}, bin).stdout.trim(), 'none []');
  run([], { IPSECOV2_CODE_CACHE_OUT: `${base}.direct.cache` }, bin);
  assert.equal(run([], {}, bin).stdout.trim(), 'used []');
  assert.equal(runProgram([], {}, bin).stdout.trim(), `used ${FLAGS}`);
});

test('bundle: node:crypto and node:child_process load only when used (lazy stand-ins), and work when they are', (t) => {
  const d = mkdtempSync(join(tmpdir(), 'ipsecov2-lazy-'));
  const list = join(d, 'modules.txt');
  // records the built-ins loaded by the end of the run
  const preload = join(d, 'preload.cjs');
  writeFileSync(preload, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')));\n`);
  const loaded = (): string[] => readFileSync(list, 'utf8').split('\n').filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  const rx = (out: string, env: NodeJS.ProcessEnv = {}): void => {
    const r = spawnSync(process.execPath, ['--require', preload, BIN, 'rx', '--sa', join(DEMO, 'demo-sas.yaml'), join(DEMO, 'demo.pcapng'), '-w', out, '--oob', join(d, 'o.jsonl'), '--quiet', '--json'],
      { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...env } });
    assert.equal(r.status, 0, r.stderr);
  };
  const native = /crypto: native addon/.test(run(['--version']).stdout);
  rx(join(d, 'a.pcapng'));
  const first = loaded();
  assert.ok(first.includes('fs'), 'the preload saw the run');
  assert.ok(!first.includes('child_process'), 'child_process loaded by a run that starts no process');
  if (native) assert.ok(!first.includes('crypto'), 'node:crypto loaded by a run whose crypto is all on the addon');
  else t.diagnostic('no addon: node:crypto does the crypto, so it loads');
  // a large existing target is replaced and its old copy removed by a detached `rm`
  // (tmpfiles.ts): spawn through the stand-in; a sparse 40 MB file is large enough (not
  // overwritten in place: IPSECOV2_NO_REUSE)
  const big = join(d, 'b.pcapng');
  writeFileSync(big, '');
  spawnSync('truncate', ['-s', '40M', big]);
  rx(big, { IPSECOV2_NO_REUSE: '1' });
  assert.ok(loaded().includes('child_process'), 'the replace did not start rm through child_process');
  assert.deepEqual(readFileSync(big), readFileSync(join(d, 'a.pcapng')), 'the new output is in place');
  // --version probes DES through node:crypto: the stand-in loads it on first use
  const v = spawnSync(process.execPath, ['--require', preload, BIN, '--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /DES: (pure JS|OpenSSL)/);
  assert.ok(loaded().includes('crypto'));
});
