#!/usr/bin/env node
// Bundles the compiled CLI (dist/src/cli/main.js) and the crypto worker (dist/src/pipeline/worker.js)
// into one file each under dist/src/bundle/. Why: Node 20 has no module compile cache, and
// resolving, reading and compiling ~70 ES modules plus yaml's and commander's CommonJS files took
// ~0.08 s of every run's ~0.23 s start-up. bin/ipsecov2 uses the bundle when it is at least as new
// as every compiled module under dist/src/, and the modules otherwise (or with IPSECOV2_NO_BUNDLE=1).
//
// The bundle sits at the same depth as dist/src/<dir>/ so the paths the code derives from
// import.meta.url (package root, addon, worker file ./worker.js) stay right.
// Without esbuild (a dev dependency) this prints a note and leaves the modules in use.
import { mkdirSync, rmSync } from 'node:fs';
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
mkdirSync(out, { recursive: true });
await esbuild.build({
  entryPoints: { cli: join(root, 'dist/src/cli/main.js'), worker: join(root, 'dist/src/pipeline/worker.js') },
  outdir: out,
  outExtension: { '.js': '.js' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // cap is optional and native: loaded at run time (live capture) by name, never bundled.
  external: ['cap'],
  // CommonJS dependencies (commander, yaml) call require() for Node built-ins.
  banner: { js: "import { createRequire as __ipsecov2Require } from 'node:module'; const require = __ipsecov2Require(import.meta.url);" },
  logLevel: 'warning',
  legalComments: 'none',
});
