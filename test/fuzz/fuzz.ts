/**
 * `npm run fuzz -- [--seed N] [--iterations N] [--files N]`: long fuzzing runs.
 * Frame level by default 100000 iterations; file level 1000 captures. Prints figures at the end;
 * exits 1 on the first property violation (the message names seed and iteration: rerun with
 * that seed to reproduce, then turn the input into a named regression fixture).
 */
import { fuzzFiles, fuzzFrames } from './lib.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) { process.stderr.write(`--${name}: expected a number\n`); process.exit(2); }
  return v;
}

const seed = arg('seed', Date.now() % 1e9);
const iterations = arg('iterations', 100000);
const files = arg('files', 1000);
const tty = process.stderr.isTTY;
const t0 = performance.now();
try {
  process.stderr.write(`fuzz: seed ${seed}, ${iterations} frame iterations, ${files} capture files\n`);
  const fr = fuzzFrames(seed, iterations, (d) => { if (tty && d % 10240 === 0) process.stderr.write(`\rframes ${d}/${iterations}`); });
  if (tty) process.stderr.write('\n');
  const t1 = performance.now();
  console.log(`frames: ${fr.iterations} mutated frames × 2 engines, 0 escapes, ${((t1 - t0) / 1000).toFixed(1)} s, worst batch ${fr.maxFrameMs.toFixed(3)} ms/frame`);
  console.log(`  outcomes: ${JSON.stringify(fr.statuses)}`);
  const fi = await fuzzFiles(seed, files, (d) => { if (tty && d % 100 === 0) process.stderr.write(`\rfiles ${d}/${files}`); });
  if (tty) process.stderr.write('\n');
  console.log(`files: ${fi.files} mutated captures (${fi.rejected} not recognised as captures), ${fi.frames} frames, 0 escapes, 0 hangs, slowest ${fi.maxFileMs.toFixed(0)} ms, ${((performance.now() - t1) / 1000).toFixed(1)} s`);
} catch (e) {
  process.stderr.write(`fuzz FAILED: ${(e as Error).message}\n`);
  process.exit(1);
}
