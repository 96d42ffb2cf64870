#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js) and the crypto worker (dist/src/pipeline/worker.js)
// into one file each under dist/src/bundle/, then records a V8 code cache for the CLI bundle.
//
// Why: Node 20 has no module compile cache. Resolving, reading and compiling ~70 ES modules plus
// yaml's and commander's CommonJS files took ~0.08 s of every run's ~0.23 s start-up; the bundle
// removes that. Compiling the one big file, and then each function the first time it runs (yaml,
// commander, the rx path), still took ~0.03-0.08 s of a small run. The code cache removes most of
// that: V8 deserializes the bytecode instead (bundle 0.33 -> 0.25 s on the demo capture, medians
// of 11 interleaved runs).
//
// - cli.cjs: CommonJS, so bin/ipsecov2 can compile it with vm.Script and hand V8 the cache (Node 20
//   takes no cache for ES modules). import.meta.url is replaced by the file's own URL. The file
//   holds the module inside its wrapper function, in ASCII (below).
// - worker.js: an ES module (new Worker() loads it by URL).
// - cli.cjs.<size>-<mtime>.cache: V8's code cache of cli.cjs after an rx run on the demo capture
//   (so it holds the functions that run compiled too), under the V8 flags bin/ipsecov2's shell
//   line passes; cli.cjs.<size>-<mtime>.direct.cache: the same under no flags, for
//   `node bin/ipsecov2`. The name ties it to this exact bundle file; V8 also rejects a cache from
//   another V8 version or other flags, and bin then compiles normally.
//
// The bundle sits at the same depth as dist/src/<dir>/ so the paths the code derives from
// import.meta.url (package root, addon, worker file ./worker.js) stay right.
// bin/ipsecov2 uses the bundle when it is at least as new as every compiled module under
// dist/src/, and the modules otherwise (or with IPSECOV2_NO_BUNDLE=1).
// Without esbuild (a dev dependency) this prints a note and leaves the modules in use.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/src/bundle');
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  rmSync(out, { recursive: true, force: true });
  console.error('bundle: esbuild not installed; bin/ipsecov2 runs the unbundled modules');
  process.exit(0);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// Node built-ins that a run seldom needs, loaded when first used instead of at start-up:
// child_process (commander requires it at its top for executable subcommands, which ipsecov2 has
// none of; tmpfiles.ts for the detached `rm` of a replaced output) and crypto (the fallback
// path: the addon does a run's crypto). Requiring them took ~3 ms (child_process and its
// dgram/socket_list) and ~4 ms (crypto) of every start. Each import of one gets a stand-in
// module with the built-in's export names as getters that require it on first access;
// esbuild's interop copies exports as getters, so nothing is loaded until a name is used.
const LAZY_BUILTINS = ['node:child_process', 'node:crypto'];
const require = createRequire(import.meta.url);
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(${LAZY_BUILTINS.map((m) => m.replace(/[/]/g, '\\/')).join('|')})$`);
    b.onResolve({ filter }, (a) => (a.namespace === 'lazy-builtin' ? { path: a.path, external: true } : { path: a.path, namespace: 'lazy-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => ({
      loader: 'js',
      contents: `let m;\nfor (const k of ${JSON.stringify(Object.keys(require(a.path)))}) Object.defineProperty(exports, k, { enumerable: true, get: () => (m ??= require(${JSON.stringify(a.path)}))[k] });\n`,
    }));
  },
};
const common = {
  bundle: true,
  plugins: [lazyBuiltins],
  platform: 'node',
  target: 'node20',
  // cap is optional and native: loaded at run time (live capture) by name, never bundled.
  external: ['cap'],
  logLevel: 'warning',
  legalComments: 'none',
};
const built = await esbuild.build({
  ...common,
  entryPoints: { cli: join(root, 'dist/src/cli/main.js') },
  outdir: out,
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  define: { 'import.meta.url': '__ipsecov2Url' },
  // strict like the ES modules it is made of
  banner: { js: "'use strict'; const __ipsecov2Url = require('node:url').pathToFileURL(__filename).href;" },
  write: false,
});
// cli.cjs is written as the function Node's CommonJS loader would wrap it in, all on the first
// line (so line numbers in stack traces stay the bundle's), and in ASCII: bin/ipsecov2 hands the
// file's text to vm.Script as it is, and V8 keeps an ASCII source as one byte a character (a
// single non-ASCII character, which esbuild leaves in comments, doubles it to ~1.6 MB; reading
// it took ~3.5 ms longer). Non-ASCII characters become \u escapes, which mean the same in a
// string, a regular expression or an identifier, and are only text in a comment.
const code = built.outputFiles[0].text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
writeFileSync(join(out, 'cli.cjs'), `(function (exports, require, module, __filename, __dirname) {${code}\n})`);
await esbuild.build({
  ...common,
  entryPoints: { worker: join(root, 'dist/src/pipeline/worker.js') },
  outdir: out,
  outExtension: { '.js': '.js' },
  format: 'esm',
  // CommonJS dependencies call require() for Node built-ins.
  banner: { js: "import { createRequire as __ipsecov2Require } from 'node:module'; const require = __ipsecov2Require(import.meta.url);" },
});

// The code caches: bin/ipsecov2 writes one after a run when IPSECOV2_CODE_CACHE_OUT is set. The
// V8 flags its shell line passes (`exec node <flags> "$0" "$@"`) are read from that line.
const cli = join(out, 'cli.cjs');
const st = statSync(cli);
const base = `${cli}.${st.size}-${Math.trunc(st.mtimeMs)}`;
const binFile = join(root, 'bin/ipsecov2');
const launchFlags = (/^':' \/\/;.*\bexec node (.*?)\s*"\$0" "\$@"$/m.exec(readFileSync(binFile, 'utf8'))?.[1] ?? '').split(/\s+/).filter(Boolean);
const demo = join(root, 'fixtures/demo');
const tmp = mkdtempSync(join(tmpdir(), 'ipsecov2-cache-'));
try {
  for (const [flags, cache] of [[launchFlags, `${base}.cache`], [[], `${base}.direct.cache`]]) {
    const r = spawnSync(process.execPath, [
      ...flags, binFile, 'rx', '--sa', join(demo, 'demo-sas.yaml'), join(demo, 'demo.pcapng'),
      '-w', join(tmp, 'o.pcapng'), '--oob', join(tmp, 'o.jsonl'), '--workers', '0', '--quiet',
    ], { encoding: 'utf8', env: { ...process.env, IPSECOV2_CODE_CACHE_OUT: cache, NO_COLOR: '1' } });
    const made = readdirSync(out).some((f) => join(out, f) === cache);
    if (!made) console.error(`bundle: no code cache written for ${flags.length > 0 ? flags.join(' ') : 'node bin/ipsecov2'} (the CLI starts ~0.03 s slower): ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
