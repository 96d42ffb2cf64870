/**
 * `npm run bench`: end-to-end figures on this machine, A/B in the same run, medians of several
 * runs. Captures are generated once (cached in bench/data/) with the project's own tx path.
 *
 *   BENCH_FRAMES   frames per ESP capture (default 200000)
 *   BENCH_MIX      frames of the mixed GCM capture, 1400 B payloads alternating with 20-44 B
 *                  ones as in a TCP transfer's two directions (default 1000000; 0 skips it)
 *   BENCH_LONG     frames of the long GCM 64 B capture (default 1600000; 0 skips it): the
 *                  per-frame rate once start-up and V8's warm-up are a small share
 *   BENCH_REPS     runs per figure (default 3; the median is printed)
 *   BENCH_GB       size of the large captures in GB (default 2; 0 skips them): AES-GCM and
 *                  AES-CBC + HMAC-SHA1 rx at 0, 1 and N workers (and tshark on each file: for GCM
 *                  before and after our runs),
 *                  and pass-through
 *   BENCH_ONLY     comma list of figures to run: esp,large,passthrough,adversarial,tshark,bounds
 *                  (bounds: the fixed costs of the BENCH_FRAMES rows, two processes against one,
 *                  the output writers, the floor as one process and as two on two halves beside
 *                  ipsecov2's start-up, RAM copy rate)
 *
 * Each timed run starts with its output files removed (untimed): replacing a 300 MB output costs
 * the unlink of the old one (0.15-0.2 s here), which is the file system's work, not ours.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readSync, writeSync, closeSync, statSync, writeFileSync, chmodSync, renameSync, rmSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { byRole, cpuBudget } from './cpu-budget.js';
import { cutPcap, fixedCosts } from './fixed-costs.js';
import { CBC_KEY, GCM_KEY, pcapHeader, SA_YAML, SHA1_KEY, writeMixed, writePlain } from './captures.js';
import { buildFloor, firstDifference, floorArgs, runFloor, type FloorRun } from './floor.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DATA = join(ROOT, 'bench', 'data');
// ipsecov2 is run as users run it: the launcher as a program (its shell line starts `node`
// without NODE_EXTRA_CA_CERTS), with this bench's Node first on PATH.
const BIN = join(ROOT, 'bin', 'ipsecov2');
process.env.PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
const FRAMES = Number(process.env.BENCH_FRAMES ?? 200000);
const LONG = Number(process.env.BENCH_LONG ?? 1600000);
const MIX = Number(process.env.BENCH_MIX ?? 1000000);
/** The payload "size" of the mixed capture (writeMixed): full-size and ACK-sized frames alternating. */
const MIXED = -1;
/** Its mean payload, for Gbit/s. */
const MIXED_MEAN = (1400 + 32) / 2;
const REPS = Number(process.env.BENCH_REPS ?? 3);
const GB = Number(process.env.BENCH_GB ?? 2);
const ONLY = (process.env.BENCH_ONLY ?? 'esp,large,passthrough,adversarial,tshark,bounds').split(',');
const NCPU = availableParallelism();

const NOMATCH_YAML = `version: 1
sas:
  - name: nothing
    mode: transport
    esp: { spi: 0x00000999, encryption: aes-gcm-128, encryptionKey: "${GCM_KEY}" }
`;

/** The run of median time (the upper middle one of an even count, as median()). */
function medianRun<T extends { secs: number }>(runs: T[]): T {
  return [...runs].sort((a, b) => a.secs - b.secs)[Math.floor(runs.length / 2)]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface RunFig {
  seconds: number;
  /** Crypto workers the pool started (--workers is a maximum). */
  workersStarted: number;
  /** Frames whose pcapng block and OOB line the addon wrote (src/pipeline/rx-emit.ts). */
  nativeOutputFrames: number;
  /** Of those: written from the job data, their payloads not copied. */
  scatteredOutputFrames: number;
  /** Share of the batches with crypto that ran on the main thread (pool.ts: the first batch, and those while the first worker starts). */
  inlineShare: number;
  /** Share of the frames whose crypto the main thread ran in batches on a crypto thread (cryptoJobsHelped). */
  helpedShare: number;
  frames: number;
  bytesIn: number;
  maxRssMB: number;
  outcomes: Record<string, number>;
}

/** Output files of a run, removed before each timed run (replacing a large file costs its unlink). */
const outputs: string[] = [];
/** A run that replaced large outputs left their old copies to a detached `rm`: let it finish before the next run. */
function waitForOldCopies(): void {
  const until = Date.now() + 30000;
  while (Date.now() < until && readdirSync(DATA).some((f) => f.endsWith('.old'))) spawnSync('sleep', ['0.1']);
}

function clearOutputs(): void {
  for (const f of outputs) rmSync(f, { force: true });
}

/**
 * Read a capture once, untimed, so the timed runs find it in the page cache. On the bench VM the
 * kernel drops cached pages of the inputs even with most of memory free (after a full bench run,
 * half of the 2 GB AES-GCM capture was no longer cached, with 14 GB free), and a timed run that
 * reads from the disk measures the disk.
 */
function warmInput(file: string): void {
  const fd = openSync(file, 'r');
  const buf = Buffer.allocUnsafe(8 << 20);
  try {
    for (let o = 0, n = 1; n > 0; o += n) n = readSync(fd, buf, 0, buf.length, o);
  } finally {
    closeSync(fd);
  }
}

/**
 * `stdinFrom`: the input comes through a pipe from `cat` of this file (args name '-' as input).
 * `overwrite`: the previous run's outputs are left in place, as a re-run to the same names finds them.
 */
function runCli(args: string[], env?: NodeJS.ProcessEnv, stdinFrom?: string, overwrite = false): RunFig {
  if (!overwrite) clearOutputs();
  const t0 = process.hrtime.bigint();
  const opts = { encoding: 'utf8' as const, maxBuffer: 64 << 20, env: env ? { ...process.env, ...env } : process.env };
  const r = stdinFrom === undefined
    ? spawnSync(BIN, [...args, '--json'], opts)
    : spawnSync('sh', ['-c', 'cat "$0" | "$@"', stdinFrom, BIN, ...args, '--json'], opts);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`ipsecov2 ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  const line = r.stderr.trim().split('\n').pop()!;
  const j = JSON.parse(line) as { framesIn: number; bytesIn: number; maxRssMB: number; outcomes: Record<string, number>; workersStarted: number; nativeOutputFrames: number; scatteredOutputFrames: number; cryptoBatchesInline: number; cryptoBatchesOnWorkers: number; cryptoJobsHelped: number };
  const batches = j.cryptoBatchesInline + j.cryptoBatchesOnWorkers;
  return {
    seconds: secs, frames: j.framesIn, bytesIn: j.bytesIn, maxRssMB: j.maxRssMB, outcomes: j.outcomes, workersStarted: j.workersStarted, nativeOutputFrames: j.nativeOutputFrames, scatteredOutputFrames: j.scatteredOutputFrames,
    inlineShare: batches > 0 ? j.cryptoBatchesInline / batches : 0,
    helpedShare: j.framesIn > 0 ? j.cryptoJobsHelped / j.framesIn : 0,
  };
}

/** A configuration each rx capture runs in: workers, environment, and how the tables name it. */
interface Variant {
  w: number;
  env?: NodeJS.ProcessEnv;
  note: string;
  label: string;
}
const ESP_VARIANTS: Variant[] = [
  { w: 0, note: '', label: '' },
  { w: 1, note: '', label: '' },
  { w: NCPU, note: '', label: '' },
  { w: NCPU, env: { IPSECOV2_NO_HEAP_TUNING: '1' }, note: ', heap not tuned (IPSECOV2_NO_HEAP_TUNING=1)', label: ', heap not tuned' },
  { w: NCPU, env: { IPSECOV2_JS_WORKERS: '1' }, note: ', worker_threads (IPSECOV2_JS_WORKERS=1)', label: ', worker_threads' },
  { w: NCPU, env: { IPSECOV2_NO_WRITE_THREAD: '1' }, note: ', capture written through libuv (IPSECOV2_NO_WRITE_THREAD=1)', label: ', libuv writes' },
  { w: NCPU, env: { IPSECOV2_NO_WRITEV: '1' }, note: ', payloads copied into the writer\'s buffer (IPSECOV2_NO_WRITEV=1)', label: ', payloads copied' },
  { w: NCPU, env: { IPSECOV2_HANDOFF_MS: '0' }, note: ', every batch but the first handed over, however cheap (IPSECOV2_HANDOFF_MS=0)', label: ', every batch handed over' },
  { w: NCPU, env: { IPSECOV2_NO_HELP: '1' }, note: ', the main thread waiting for the crypto thread instead of taking part (IPSECOV2_NO_HELP=1)', label: ', main thread not helping' },
];
const HELPERS_OTHER: Variant = { w: NCPU, env: { IPSECOV2_NO_HELPER_BATCH: '1' }, note: ', helper threads not SCHED_BATCH (IPSECOV2_NO_HELPER_BATCH=1)', label: ', helpers SCHED_OTHER' };
/**
 * The path without the addon, at a worker count above any the pool starts (3: it grows there,
 * node:crypto's per-packet setup making the workers the slower side): the memory target holds
 * whatever N, on either path. Three worker isolates are its largest footprint.
 */
const FALLBACK: Variant = { w: 8, env: { IPSECOV2_NO_NATIVE: '1' }, note: ', the node:crypto fallback on worker_threads (IPSECOV2_NO_NATIVE=1)', label: ', node:crypto fallback' };

/**
 * Rows 0..n-1 of repetition `rep`, starting at row `rep % n`: the first run of a repetition can
 * pay for what the one before left (its outputs being written back, a cold cache), and a row that
 * always came first measured up to 1.6x slower (pass-through, thirteenth session).
 */
function rotated(n: number, rep: number, run: (k: number) => void): void {
  for (let j = 0; j < n; j++) run((rep + j) % n);
}

/** Frames the addon wrote, and how many of them from the job data. */
function addonWrote(r: RunFig): string {
  return `${r.nativeOutputFrames} (${r.scatteredOutputFrames})`;
}

/** "x" or "x–y" of a share's percentages over runs. */
function pctRange(shares: number[]): string {
  const pct = shares.map((v) => Math.round(100 * v));
  const lo = Math.min(...pct);
  const hi = Math.max(...pct);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
}

/**
 * "N started, x % of batches inline, y % of frames' crypto helped" for a worker count's runs:
 * helped, the main thread's part of batches on the crypto threads (pool.ts NativeRunner.help).
 */
function poolNote(runs: RunFig[]): string {
  const helped = runs.some((r) => r.helpedShare > 0) ? `, ${pctRange(runs.map((r) => r.helpedShare))} % helped` : '';
  return `${Math.max(...runs.map((r) => r.workersStarted))} started, ${pctRange(runs.map((r) => r.inlineShare))} % inline${helped}`;
}

let startup = 0;
/** tshark's frames/s on the AES-GCM 1400 B capture of FRAMES frames, when timed (the fixed-cost table's 17× line). */
let tsharkGcmRate = 0;

/** The speed issue's targets, as measured in this run (printed at the end). */
const targets: { what: string; got: string; met: boolean; floor: string }[] = [];
/** `atFloor`: the floor program's figure for the same target in the same runs, when it ran. */
function target(what: string, value: number, goal: number, fmt: (v: number) => string, atMost = false, atFloor: number | null = null): void {
  targets.push({ what, got: fmt(value), met: atMost ? value < goal : value >= goal, floor: atFloor === null ? '–' : fmt(atFloor) });
}

/**
 * The floor program (bench/floor.ts), compiled once per bench run: its path, or null when it
 * cannot be built here (the reason printed once).
 */
let floorBin: string | null | undefined;
function floor(): string | null {
  if (floorBin !== undefined) return floorBin;
  const bin = join(DATA, 'floor');
  const why = buildFloor(bin);
  if (why !== null) console.log(`\n(the floor program, bench/floor.c, not built: ${why}; it needs a C compiler and libssl-dev)`);
  floorBin = why === null ? bin : null;
  return floorBin;
}

/** The floor on one of the bench's AES-GCM captures (the `gcm` SA of SA_YAML). */
function floorGcm(bin: string, file: string, out: string, oob: string): FloorRun {
  return runFloor(bin, file, out, oob, GCM_KEY, 0xc001, 'gcm');
}

/**
 * One repetition of a table's rows on `file`, their order rotated by `rep`: each variant's rx
 * run into byCount, and the floor's run (when `floorBin` is set) into floorRuns, in the rotation.
 */
function runRows(file: string, variants: Variant[], rep: number, byCount: RunFig[][], floorBin: string | null, floorRuns: FloorRun[], out: string, oob: string): void {
  rotated(variants.length + (floorBin !== null ? 1 : 0), rep, (k) => {
    if (k === variants.length) {
      clearOutputs();
      floorRuns.push(floorGcm(floorBin!, file, out, oob));
      return;
    }
    const v = variants[k]!;
    byCount[k]!.push(runCli(['rx', '--sa', join(DATA, 'bench-sas.yaml'), '--any-direction', file, '-w', out, '--oob', oob, '--workers', String(v.w)], v.env));
  });
}

/**
 * One untimed check that the floor wrote what ipsecov2 writes for this capture (else its time
 * would not be of the same work): both run, the outputs compared byte for byte.
 */
function checkFloor(bin: string, file: string, out: string, oob: string): void {
  const fOut = out + '.floor';
  const fOob = oob + '.floor';
  runCli(['rx', '--sa', join(DATA, 'bench-sas.yaml'), '--any-direction', file, '-w', out, '--oob', oob, '--workers', String(NCPU)]);
  floorGcm(bin, file, fOut, fOob);
  try {
    for (const [a, b] of [[out, fOut], [oob, fOob]] as const) {
      const at = firstDifference(a, b);
      if (at >= 0) throw new Error(`the floor's ${b} differs from ipsecov2's ${a} at byte ${at}: bench/floor.c no longer writes what the tool writes`);
    }
  } finally {
    rmSync(fOut, { force: true });
    rmSync(fOob, { force: true });
  }
}

/** "| floor … |" figures of a set of floor runs: median s, frames/s, peak RSS, CPU. */
function floorFigures(runs: FloorRun[]): { secs: number; cpu: string; rss: string } {
  const secs = median(runs.map((r) => r.secs));
  const user = median(runs.map((r) => r.userS));
  const sys = median(runs.map((r) => r.sysS));
  // its CPU time spread evenly over every core (the floor's own work split perfectly, not a bound
  // on other ways of doing it)
  const cpu = `CPU ${user.toFixed(2)} s user + ${sys.toFixed(2)} s system, ${((user + sys) / NCPU).toFixed(2)} s over ${NCPU} cores`;
  return { secs, cpu, rss: Math.max(...runs.map((r) => r.maxRssMB)).toFixed(0) };
}
const kfps = (v: number): string => `${(v / 1000).toFixed(0)}k frames/s`;

function fmtRate(frames: number, secs: number, start = startup): string {
  const net = start > 0 && secs - start > 0 ? ` (${(frames / (secs - start) / 1000).toFixed(0)}k without start-up)` : '';
  return `${(frames / secs / 1000).toFixed(1)}k frames/s${net}`;
}

function gbit(bytes: number, secs: number): string {
  return `${((bytes * 8) / secs / 1e9).toFixed(2)} Gbit/s`;
}

/** Frames in a capture of this transform (3DES + SHA-512 is ~10x slower: a quarter of the frames). */
function framesOf(algo: Algo): number {
  return algo === 'heavy' ? Math.max(1, Math.floor(FRAMES / 4)) : FRAMES;
}

type Algo = 'gcm' | 'cbc' | 'heavy';

function ensureEsp(algo: Algo, payload: number, frames = framesOf(algo)): string {
  const size = payload === MIXED ? 'mixed' : String(payload);
  const esp = join(DATA, `esp-${algo}-${size}-${frames}.pcap`);
  if (existsSync(esp)) return esp;
  const plain = join(DATA, `plain-${algo}-${size}-${frames}.pcap`);
  process.stderr.write(`generating ${esp} (${frames} frames, tx path)…\n`);
  const net = algo === 'gcm' ? 0 : algo === 'cbc' ? 1 : 2;
  if (payload === MIXED) writeMixed(plain, frames, net);
  else writePlain(plain, frames, payload, net);
  const r = spawnSync(BIN, ['tx', '--sa', join(DATA, 'bench-sas.yaml'), plain, '-w', esp + '.tmp.pcap', '--iv-seed', '00112233', '--quiet', '--workers', String(NCPU)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tx failed: ${r.stderr}`);
  renameSync(esp + '.tmp.pcap', esp);
  return esp;
}

function tsharkTime(file: string, algo: Algo): { secs: number; frames: number } | null {
  if (algo === 'heavy') return null;
  if (spawnSync('tshark', ['-v'], { encoding: 'utf8' }).status !== 0) return null;
  const uat = algo === 'gcm'
    ? `"IPv4","192.0.2.2","192.0.2.1","0x0000c001","AES-GCM with 16 octet ICV [RFC4106]","0x${GCM_KEY}","NULL",""`
    : `"IPv4","192.0.2.2","192.0.2.1","0x0000c002","AES-CBC [RFC3602]","0x${CBC_KEY}","HMAC-SHA-1-96 [RFC2404]","0x${SHA1_KEY}"`;
  const t0 = process.hrtime.bigint();
  const r = spawnSync('tshark', ['-r', file, '-o', 'esp.enable_encryption_decode:TRUE', '-o', 'esp.enable_authentication_check:TRUE', '-o', `uat:esp_sa:${uat}`, '-T', 'fields', '-e', 'esp.icv_good'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) return null;
  const good = r.stdout.split('\n').filter((l) => l.trim() === '1' || l.trim() === 'True').length;
  return { secs, frames: good };
}

/**
 * Split a pcap (from writePlain/tx: little-endian header) into its first and second half of
 * records, once (cached beside it).
 */
function ensureHalves(file: string): [string, string] {
  const halves: [string, string] = [file.replace(/\.pcap$/, '.half1.pcap'), file.replace(/\.pcap$/, '.half2.pcap')];
  if (existsSync(halves[0]) && existsSync(halves[1])) return halves;
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  const all = Buffer.allocUnsafe(size);
  for (let o = 0; o < size;) o += readSync(fd, all, o, size - o, o);
  closeSync(fd);
  const starts: number[] = [];
  for (let o = 24; o + 16 <= size; o += 16 + all.readUInt32LE(o + 8)) starts.push(o);
  const mid = starts[starts.length >> 1]!;
  const parts: [number, number][] = [[24, mid], [mid, size]];
  for (let h = 0; h < 2; h++) {
    const out = openSync(halves[h] + '.tmp', 'w');
    writeSync(out, all, 0, 24);
    writeSync(out, all, parts[h]![0], parts[h]![1] - parts[h]![0]);
    closeSync(out);
    renameSync(halves[h] + '.tmp', halves[h]);
  }
  return halves;
}

/** Wall seconds for these runs of `program` (ipsecov2 unless named) started together (each: its args), all checked for exit 0. */
async function together(runs: string[][], program = BIN): Promise<number> {
  clearOutputs();
  const t0 = process.hrtime.bigint();
  await Promise.all(runs.map((args) => new Promise<void>((res, rej) => {
    const c = spawn(program, [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('error', rej);
    c.on('close', (code) => (code === 0 ? res() : rej(new Error(`${program} ${args.join(' ')} failed (${code}): ${err}`))));
  })));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** GB/s of Buffer.copy in 1500-byte pieces over 256 MB buffers (RAM, not cache), on `threads` threads at once. */
async function copyRate(threads: number): Promise<number> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    const N = 256 << 20, a = Buffer.alloc(N, 1), b = Buffer.alloc(N);
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < 3; r++) for (let o = 0; o + 1500 <= N; o += 1500) a.copy(b, o, o, o + 1500);
    parentPort.postMessage(3 * N / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e9);`;
  const { Worker } = await import('node:worker_threads');
  const rates = await Promise.all(Array.from({ length: threads }, () => new Promise<number>((res, rej) => {
    const w = new Worker(code, { eval: true });
    w.once('message', (m: number) => { res(m); void w.terminate(); });
    w.once('error', rej);
  })));
  return rates.reduce((x, y) => x + y, 0);
}

/**
 * What bounds the frames/s here, measured in the same run: the rx figures above are one process
 * with one main thread; if two cores could do twice the work, two inline processes each given half
 * of the frames would finish in about half the time. Each process pays start-up and V8's warm-up
 * (~0.3 s together), so on 200k frames the pair pays them twice for a third of the work: the
 * long capture (BENCH_LONG) shows the split of the per-frame work itself. The copy rate says how
 * fast this machine moves payload bytes through RAM (each frame's payload is copied several
 * times: read, decrypt, output, write).
 */
async function bounds(out: string, oob: string): Promise<void> {
  console.log('\n## what bounds it: two inline processes on two halves at once vs one on all frames');
  console.log('| capture | one process, all frames: median s | two processes at once, half each: median s | speed-up | frames/s both together |');
  console.log('| --- | --- | --- | --- | --- |');
  const sa = join(DATA, 'bench-sas.yaml');
  const out2 = join(DATA, 'out2.pcapng');
  const oob2 = join(DATA, 'out2.jsonl');
  outputs.push(out2, oob2);
  const sets: [number, number][] = [[1400, FRAMES], [64, FRAMES]];
  if (LONG > 0) sets.push([64, LONG]);
  for (const [payload, frames] of sets) {
    const file = ensureEsp('gcm', payload, frames);
    const [h1, h2] = ensureHalves(file);
    const rx = (f: string, o: string, j: string): string[] => ['rx', '--sa', sa, '--any-direction', f, '-w', o, '--oob', j, '--workers', '0', '--quiet'];
    const one: number[] = [];
    const two: number[] = [];
    for (let i = 0; i < Math.max(REPS, 5); i++) {
      one.push(await together([rx(file, out, oob)]));
      two.push(await together([rx(h1, out, oob), rx(h2, out2, oob2)]));
    }
    const a = median(one);
    const b = median(two);
    console.log(`| gcm ${payload} B, ${frames} frames | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(a / b).toFixed(2)}× | ${fmtRate(frames, b, 0)} |`);
  }
  // the output writer: the addon (default) against the JS writers, inline, same captures
  console.log('\n## rx output writer: the addon (runs of frames per call) vs the JS writers (IPSECOV2_NO_NATIVE_EMIT=1), inline');
  console.log('| capture | addon: median s | frames/s | frames the addon wrote | JS writers: median s | frames/s | speed-up |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const [payload, frames] of sets) {
    const file = ensureEsp('gcm', payload, frames);
    const args = ['rx', '--sa', sa, '--any-direction', file, '-w', out, '--oob', oob, '--workers', '0'];
    const nat: RunFig[] = [];
    const js: RunFig[] = [];
    for (let i = 0; i < Math.max(REPS, 5); i++) {
      nat.push(runCli(args));
      js.push(runCli(args, { IPSECOV2_NO_NATIVE_EMIT: '1' }));
    }
    const a = median(nat.map((r) => r.seconds));
    const b = median(js.map((r) => r.seconds));
    console.log(`| gcm ${payload} B, ${frames} frames | ${a.toFixed(2)} | ${fmtRate(frames, a)} | ${nat[0]!.nativeOutputFrames} | ${b.toFixed(2)} | ${fmtRate(frames, b)} | ${(b / a).toFixed(2)}× |`);
  }
  fixedCostTable(sa, out, oob);
  await floorSplit(sa, out, oob, out2, oob2);
  const c1 = await copyRate(1);
  const c2 = await copyRate(2);
  console.log(`\nRAM copy rate (Buffer.copy, 1500 B pieces, 256 MB buffers): 1 thread ${c1.toFixed(1)} GB/s; 2 threads at once ${c2.toFixed(1)} GB/s together`);
}

/**
 * The floor (bench/floor.ts) on each 200k-frame AES-GCM capture as one process, and as two at once
 * on its two halves (both cores, nothing shared: an ideal split of the floor's own work), beside
 * ipsecov2's run on the capture's first frame alone (its start-up): what an rx path wholly in C,
 * split over the cores that well, would take inside this Node CLI, against what the targets allow.
 */
async function floorSplit(sa: string, out: string, oob: string, out2: string, oob2: string): Promise<void> {
  const bin = floor();
  if (bin === null) return;
  console.log(`\n## the floor (bench/floor.c) as one process and as two at once on two halves, and ipsecov2's start-up, ${FRAMES}-frame AES-GCM captures`);
  console.log('| capture | the floor, one process: median s | two at once, half each: median s | ipsecov2 on the first frame alone (start-up), 2 workers: median s | the two halves + start-up | the target means |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  const args = (f: string, o: string, j: string): string[] => floorArgs(f, o, j, GCM_KEY, 0xc001, 'gcm');
  for (const payload of [1400, 64]) {
    const file = ensureEsp('gcm', payload, FRAMES);
    const [h1, h2] = ensureHalves(file);
    const first = file.replace(/\.pcap$/, '.first1.pcap');
    if (!existsSync(first)) cutPcap(file, 1, first);
    const one: number[] = [];
    const two: number[] = [];
    const start: number[] = [];
    for (let i = 0; i < Math.max(REPS * 3, 9); i++) {
      // the three interleaved, their order rotated between repetitions (as rotated() does)
      for (let j = 0; j < 3; j++) {
        const k = (i + j) % 3;
        if (k === 0) one.push(await together([args(file, out, oob)], bin));
        else if (k === 1) two.push(await together([args(h1, out, oob), args(h2, out2, oob2)], bin));
        else {
          const r = runCli(['rx', '--sa', sa, '--any-direction', first, '-w', out, '--oob', oob, '--workers', String(NCPU)]);
          if (r.frames !== 1 || r.outcomes.CRYPTO_SUCCESS !== 1) throw new Error(`${first}: ${r.frames} frames read, expected 1 decrypted: ${JSON.stringify(r.outcomes)}`);
          start.push(r.seconds);
        }
      }
    }
    const [a, b, c] = [median(one), median(two), median(start)];
    const goal = payload === 64 ? ['500k frames/s', FRAMES / 500000] as const : tsharkGcmRate > 0 ? [`17× tshark (${kfps(tsharkGcmRate)})`, FRAMES / (17 * tsharkGcmRate)] as const : null;
    console.log(`| gcm ${payload} B | ${a.toFixed(3)} | ${b.toFixed(3)} | ${c.toFixed(3)} | ${(b + c).toFixed(3)} | ${goal ? `${goal[0]}: ${goal[1].toFixed(3)} s` : '–'} |`);
  }
}

/**
 * What bounds the 200k-frame rows (bench/fixed-costs.ts): each AES-GCM capture of FRAMES frames
 * and its first 1, 1000, 20k and 50k frames (cut once, cached beside it) at NCPU workers,
 * interleaved and rotated; the µs a frame between the rows, and the run split into its frames at
 * the last rows' rate and the rest (start-up and V8's warm-up), against what the targets allow.
 */
function fixedCostTable(sa: string, out: string, oob: string): void {
  const counts = [1, 1000, 20000, 50000].filter((n) => n < FRAMES);
  if (counts.length === 0) return;
  console.log(`\n## what bounds the ${FRAMES}-frame rows: the same capture cut to its first N frames, ${NCPU} workers`);
  console.log('| capture | frames | median s | µs a frame since the row before |');
  console.log('| --- | --- | --- | --- |');
  const notes: string[] = [];
  for (const payload of [64, 1400]) {
    const file = ensureEsp('gcm', payload, FRAMES);
    const files = counts.map((n) => {
      const cut = file.replace(/\.pcap$/, `.first${n}.pcap`);
      if (!existsSync(cut)) cutPcap(file, n, cut);
      return cut;
    });
    files.push(file);
    const frames = [...counts, FRAMES];
    const secs: number[][] = files.map(() => []);
    for (let i = 0; i < Math.max(REPS * 3, 9); i++) {
      rotated(files.length, i, (k) => {
        const r = runCli(['rx', '--sa', sa, '--any-direction', files[k]!, '-w', out, '--oob', oob, '--workers', String(NCPU)]);
        // a cut short of its frames, or frames not decrypted, would time something else
        if (r.frames !== frames[k] || (r.outcomes.CRYPTO_SUCCESS ?? 0) !== r.frames) throw new Error(`${files[k]}: ${r.frames} frames read, expected ${frames[k]}: ${JSON.stringify(r.outcomes)}`);
        secs[k]!.push(r.seconds);
      });
    }
    const rows = frames.map((n, k) => ({ frames: n, secs: median(secs[k]!) }));
    const f = fixedCosts(rows);
    rows.forEach((r, k) => console.log(`| gcm ${payload} B | ${r.frames} | ${r.secs.toFixed(3)} | ${f.perFrameUs[k] === null ? '–' : f.perFrameUs[k]!.toFixed(2)} |`));
    const last = rows[rows.length - 1]!;
    const goal = payload === 64
      ? `the 500k frames/s target means ${(FRAMES / 500000).toFixed(2)} s for all of them`
      : tsharkGcmRate > 0 ? `17× tshark (${kfps(tsharkGcmRate)} in this run) means ${(FRAMES / (17 * tsharkGcmRate)).toFixed(2)} s for all of them` : '';
    notes.push(Number.isNaN(f.steadyUs)
      ? `gcm ${payload} B: the last two rows are within the noise of each other: no steady rate this run.`
      : `gcm ${payload} B: at the last rows' rate (${f.steadyUs.toFixed(2)} µs a frame) the ${FRAMES} frames take ${f.steadySecs.toFixed(2)} s; start-up and warm-up the other ${f.fixedSecs.toFixed(2)} s (${Math.round((100 * f.fixedSecs) / last.secs)} % of the run)${goal ? `; ${goal}` : ''}.`);
  }
  console.log('');
  for (const n of notes) console.log(n);
}

/**
 * What bounds the 2 GB AES-GCM figure: one more run at NCPU workers, its threads' CPU time read
 * from /proc while it runs (cpu-budget.ts). The cores' time is the budget: what each thread used,
 * how long the main thread waited runnable for a core, and what the machine left idle.
 */
async function printCpuBudget(file: string, size: number, ts: { secs: number; frames: number } | null, out: string, oob: string): Promise<void> {
  clearOutputs();
  const b = await cpuBudget(BIN, ['rx', '--sa', join(DATA, 'bench-sas.yaml'), '--any-direction', file, '-w', out, '--oob', oob, '--workers', String(NCPU), '--json']);
  if (b.exitCode !== 0) throw new Error(`the CPU budget run failed (${b.exitCode}): ${b.stderr}`);
  const j = JSON.parse(b.stderr.trim().split('\n').pop()!) as { framesIn: number; cryptoJobsHelped: number };
  const cores = NCPU * b.wallS;
  const pct = (s: number): string => `${((100 * s) / cores).toFixed(0)} %`;
  const ratio = ts ? `, ${((j.framesIn / b.wallS) / (ts.frames / ts.secs)).toFixed(1)}× tshark` : '';
  console.log(`\n## where the CPU time goes: one more ${(size / 1e9).toFixed(2)} GB AES-GCM run at ${NCPU} workers, ${b.wallS.toFixed(2)} s (${fmtRate(j.framesIn, b.wallS)}${ratio}), ${NCPU} cores × ${b.wallS.toFixed(2)} s = ${cores.toFixed(2)} core-seconds`);
  console.log('| threads | on a CPU, s | share of the core-seconds | waiting runnable for a CPU, s |');
  console.log('| --- | --- | --- | --- |');
  const names: Record<string, string> = {
    main: `main (reading, SA state, output order; it ran ${((100 * j.cryptoJobsHelped) / j.framesIn).toFixed(0)} % of the frames' crypto while waiting for it)`,
    crypto: "the addon's crypto",
    write: "the addon's writers (pcapng, OOB): the kernel's copy into the page cache",
    other: "Node's others: libuv's I/O pool (the input's reads), V8's compiler and GC helpers",
  };
  let all = 0;
  for (const r of byRole(b)) {
    all += r.runS;
    console.log(`| ${names[r.role]} (${r.count}) | ${r.runS.toFixed(2)} | ${pct(r.runS)} | ${r.waitS.toFixed(2)} |`);
  }
  console.log(`| all of ipsecov2 | ${all.toFixed(2)} | ${pct(all)} | – |`);
  console.log(`| the machine idle (/proc/stat, all CPUs) | ${b.machineIdleS.toFixed(2)} | ${pct(b.machineIdleS)} | – |`);
  console.log(`| the machine busy otherwise (this bench sampling: ${b.samplerS.toFixed(2)} s; other processes; threads' last ≤ 25 ms unsampled) | ${Math.max(0, b.machineBusyS - all).toFixed(2)} | ${pct(Math.max(0, b.machineBusyS - all))} | – |`);
}

async function main(): Promise<void> {
  mkdirSync(DATA, { recursive: true });
  writeFileSync(join(DATA, 'bench-sas.yaml'), SA_YAML);
  chmodSync(join(DATA, 'bench-sas.yaml'), 0o600);
  writeFileSync(join(DATA, 'nomatch-sas.yaml'), NOMATCH_YAML);
  chmodSync(join(DATA, 'nomatch-sas.yaml'), 0o600);
  const ver = spawnSync(BIN, ['--version'], { encoding: 'utf8' }).stdout.trim();
  // Start-up (node, modules, SA file): measured so the figures can be read without it.
  const starts: number[] = [];
  const viaNode: number[] = [];
  for (let i = 0; i < 5; i++) {
    let t0 = process.hrtime.bigint();
    spawnSync(BIN, ['--version']);
    starts.push(Number(process.hrtime.bigint() - t0) / 1e9);
    t0 = process.hrtime.bigint();
    spawnSync(process.execPath, [BIN, '--version']);
    viaNode.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  startup = median(starts);
  // Node's own start-up, for reading the figure above: with the environment as is, and without
  // NODE_EXTRA_CA_CERTS (when set, Node parses those certificates before any of our code runs).
  const nodeStart = (env: NodeJS.ProcessEnv): number => {
    const t: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      spawnSync(process.execPath, ['-e', '0'], { env });
      t.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return median(t);
  };
  const bare = nodeStart(process.env);
  let nodeNote = `node bin/ipsecov2: ${median(viaNode).toFixed(2)} s; node -e 0: ${bare.toFixed(2)} s`;
  if (process.env.NODE_EXTRA_CA_CERTS) {
    const { NODE_EXTRA_CA_CERTS: _unused, ...env } = process.env;
    nodeNote += `, ${nodeStart(env).toFixed(2)} s without NODE_EXTRA_CA_CERTS (set here)`;
  }
  console.log(`# ipsecov2 bench — ${ver}; ${NCPU} CPUs; ${FRAMES} frames per ESP capture; median of ${REPS}; start-up ${startup.toFixed(2)} s (${nodeNote})`);
  const out = join(DATA, 'out.pcapng');
  const oob = join(DATA, 'out.jsonl');
  outputs.push(out, oob);
  if (ONLY.includes('esp')) {
    console.log('\n## rx end to end (file → pcapng + OOB), tunnel mode');
    console.log('| capture | workers | median s | frames/s | payload Gbit/s | peak RSS MB | vs tshark |');
    console.log('| --- | --- | --- | --- | --- | --- | --- |');
    // heavy: 3DES + HMAC-SHA-512-256, where the workers (not the main thread) are the slower side,
    // so the pool grows to --workers
    const cases: [Algo, number, number][] = [['gcm', 1400, FRAMES], ['gcm', 64, FRAMES], ['cbc', 1400, FRAMES], ['heavy', 1400, framesOf('heavy')]];
    if (LONG > 0) cases.push(['gcm', 64, LONG]);
    // where frames written from the job data and copied ones share runs (rx-emit.ts)
    if (MIX > 0) cases.push(['gcm', MIXED, MIX]);
    for (const [algo, payload, nFrames] of cases) {
      const file = ensureEsp(algo, payload, nFrames);
      // tshark once per repetition, before its rows (on these files a run takes 6-9 s): the
      // ratio is against the median, timed in the same minutes as ours (one run before all the
      // rows measured 25.2k-38.1k frames/s between sessions)
      const withTshark = ONLY.includes('tshark') && payload === 1400 && algo !== 'heavy';
      warmInput(file);
      const tsRuns: { secs: number; frames: number }[] = [];
      // worker counts interleaved run by run: the machine's speed drifts between minutes; and
      // NCPU workers with glibc's heap as it is (src/pipeline/heap.ts), on worker_threads
      // instead of the addon's threads (pool.ts), and with the capture written through libuv
      // instead of the addon's write thread (capture/writer.ts), interleaved too
      const variants = ESP_VARIANTS;
      const byCount: RunFig[][] = variants.map(() => []);
      // the floor (bench/floor.ts) on the AES-GCM captures, in the same rotation
      const fb = algo === 'gcm' ? floor() : null;
      const floorRuns: FloorRun[] = [];
      for (let i = 0; i < REPS; i++) {
        const t = withTshark ? tsharkTime(file, algo) : null;
        if (t !== null) tsRuns.push(t);
        runRows(file, variants, i, byCount, fb, floorRuns, out, oob);
      }
      if (fb !== null) checkFloor(fb, file, out, oob);
      const fl = floorRuns.length > 0 ? floorFigures(floorRuns) : null;
      const ts = tsRuns.length > 0 ? medianRun(tsRuns) : null;
      for (let k = 0; k < variants.length; k++) {
        const w = variants[k]!.w;
        const runs = byCount[k]!;
        const secs = median(runs.map((r) => r.seconds));
        const r0 = runs[0]!;
        if ((r0.outcomes.CRYPTO_SUCCESS ?? 0) !== r0.frames) throw new Error(`not every frame decrypted: ${JSON.stringify(r0.outcomes)}`);
        const ratio = ts ? `${((r0.frames / secs) / (ts.frames / ts.secs)).toFixed(1)}×` : '–';
        if (w === NCPU && variants[k]!.env === undefined && algo !== 'heavy' && payload !== MIXED) {
          const label = `rx ${algo === 'gcm' ? 'AES-128-GCM' : 'AES-128-CBC + HMAC-SHA1-96'} ${payload} B, ${r0.frames} frames, ${w} workers`;
          target(`${label} ≥ ${algo === 'cbc' ? 200 : payload === 64 ? 500 : 300}k frames/s`, r0.frames / secs, algo === 'cbc' ? 200000 : payload === 64 ? 500000 : 300000, kfps, false, fl ? r0.frames / fl.secs : null);
          if (ts && algo === 'gcm') target(`${label}: ≥ 17× tshark`, (r0.frames / secs) / (ts.frames / ts.secs), 17, (v) => `${v.toFixed(2)}×`, false, fl ? (r0.frames / fl.secs) / (ts.frames / ts.secs) : null);
        }
        console.log(`| ${algo === 'heavy' ? '3des+sha512' : algo} ${payload === MIXED ? '1400 B and 20–44 B alternating' : `${payload} B`}${nFrames !== FRAMES ? `, ${r0.frames} frames` : ''} | ${w}${w > 0 ? ` (${poolNote(runs)})` : ''}${variants[k]!.note} | ${secs.toFixed(2)} | ${fmtRate(r0.frames, secs)} | ${gbit(r0.frames * (payload === MIXED ? MIXED_MEAN : payload), secs)} | ${Math.max(...runs.map((r) => r.maxRssMB)).toFixed(0)} | ${ratio} |`);
      }
      if (fl) {
        const n = floorRuns[0]!.frames;
        const ratio = ts ? `${((n / fl.secs) / (ts.frames / ts.secs)).toFixed(1)}×` : '–';
        console.log(`| floor: bench/floor.c, the same output bytes (${fl.cpu}) | – | ${fl.secs.toFixed(2)} (${floorRuns.map((r) => r.secs.toFixed(2)).join(', ')}) | ${fmtRate(n, fl.secs, 0)} | ${gbit(n * (payload === MIXED ? MIXED_MEAN : payload), fl.secs)} | ${fl.rss} | ${ratio} |`);
      }
      if (ts) console.log(`| tshark 4 ${algo} ${payload} B | – | ${ts.secs.toFixed(2)}${tsRuns.length > 1 ? ` (${tsRuns.map((t) => t.secs.toFixed(2)).join(', ')}, one before each repetition)` : ''} | ${fmtRate(ts.frames, ts.secs, 0)} (${ts.frames} good ICVs) | ${gbit(ts.frames * payload, ts.secs)} | – | 1× |`);
      if (ts && algo === 'gcm' && payload === 1400 && nFrames === FRAMES) tsharkGcmRate = ts.frames / ts.secs;
    }
  }
  if (ONLY.includes('large') && GB > 0) {
    // what users decrypt: a multi-gigabyte capture, where start-up and V8's warm-up are noise
    const frames = Math.ceil((GB * 1e9) / (16 + 14 + 28 + 1400));
    for (const algo of ['gcm', 'cbc'] as const) {
      const name = algo === 'gcm' ? 'AES-128-GCM' : 'AES-128-CBC + HMAC-SHA1-96';
      const file = ensureEsp(algo, 1400, frames);
      const size = statSync(file).size;
      console.log(`\n## rx of a ${(size / 1e9).toFixed(2)} GB capture (${name}, 1400 B payloads, ${frames} frames), file → pcapng + OOB`);
      console.log('| workers | median s | frames/s | payload Gbit/s | peak RSS MB | frames the addon wrote (from the job data) | vs tshark |');
      console.log('| --- | --- | --- | --- | --- | --- | --- |');
      // AES-GCM (the 17× target): tshark before and after our runs, the ratio against the mean of
      // the two, so a drift of the machine's speed during the section weighs on both sides. The
      // input read once first, for tshark's first run as for ours: it was read after that run, and
      // in one bench run tshark took 87.9 s before our rows against 41.1 s after them.
      warmInput(file);
      const tsBefore = ONLY.includes('tshark') ? tsharkTime(file, algo) : null;
      // also at NCPU workers with glibc's heap as it is (src/pipeline/heap.ts), on worker_threads
      // (pool.ts), written through libuv (capture/writer.ts), and for AES-GCM with the helper
      // threads left SCHED_OTHER (src/pipeline/priority.ts) and on the node:crypto fallback,
      // interleaved
      const variants = algo === 'gcm' ? [...ESP_VARIANTS, HELPERS_OTHER, FALLBACK] : ESP_VARIANTS;
      const byCount: RunFig[][] = variants.map(() => []);
      const fb = algo === 'gcm' ? floor() : null;
      const floorRuns: FloorRun[] = [];
      for (let i = 0; i < Math.min(REPS, 3); i++) {
        runRows(file, variants, i, byCount, fb, floorRuns, out, oob);
      }
      const tsAfter = tsBefore !== null && algo === 'gcm' ? tsharkTime(file, algo) : null;
      const ts = tsBefore !== null && tsAfter !== null ? { secs: (tsBefore.secs + tsAfter.secs) / 2, frames: tsBefore.frames } : tsBefore;
      if (fb !== null) checkFloor(fb, file, out, oob);
      const fl = floorRuns.length > 0 ? floorFigures(floorRuns) : null;
      for (let k = 0; k < variants.length; k++) {
        const runs = byCount[k]!;
        const secs = median(runs.map((r) => r.seconds));
        const r0 = runs[0]!;
        if ((r0.outcomes.CRYPTO_SUCCESS ?? 0) !== r0.frames) throw new Error(`not every frame decrypted: ${JSON.stringify(r0.outcomes)}`);
        const w = variants[k]!.w;
        const ratio = ts ? `${((r0.frames / secs) / (ts.frames / ts.secs)).toFixed(1)}×` : '–';
        const label = `rx ${name} 1400 B, ${(size / 1e9).toFixed(2)} GB, ${w} workers${variants[k]!.label}`;
        if (w === NCPU && variants[k]!.env === undefined) {
          target(`${label} ≥ ${algo === 'gcm' ? 300 : 200}k frames/s`, r0.frames / secs, algo === 'gcm' ? 300000 : 200000, kfps, false, fl ? r0.frames / fl.secs : null);
          if (ts && algo === 'gcm') target(`${label}: ≥ 17× tshark`, (r0.frames / secs) / (ts.frames / ts.secs), 17, (v) => `${v.toFixed(2)}×`, false, fl ? (r0.frames / fl.secs) / (ts.frames / ts.secs) : null);
        }
        target(`${label}: peak RSS < 150 MB`, Math.max(...runs.map((r) => r.maxRssMB)), 150, (v) => `${v.toFixed(0)} MB`, true);
        console.log(`| ${w}${w > 0 ? ` (${poolNote(runs)})` : ''}${variants[k]!.note} | ${secs.toFixed(2)} (${runs.map((r) => r.seconds.toFixed(2)).join(', ')}) | ${fmtRate(r0.frames, secs)} | ${gbit(r0.frames * 1400, secs)} | ${Math.max(...runs.map((r) => r.maxRssMB)).toFixed(0)} | ${addonWrote(r0)} | ${ratio} |`);
      }
      if (fl) {
        const n = floorRuns[0]!.frames;
        console.log(`| floor: bench/floor.c, the same output bytes (${fl.cpu}) | ${fl.secs.toFixed(2)} (${floorRuns.map((r) => r.secs.toFixed(2)).join(', ')}) | ${fmtRate(n, fl.secs, 0)} | ${gbit(n * 1400, fl.secs)} | ${fl.rss} | – | ${ts ? `${((n / fl.secs) / (ts.frames / ts.secs)).toFixed(1)}×` : '–'} |`);
      }
      if (ts) {
        const runs = tsAfter !== null ? `mean of the runs before and after ours: ${tsBefore!.secs.toFixed(2)}, ${tsAfter.secs.toFixed(2)} s` : 'one run';
        console.log(`| tshark 4 (${runs}) | ${ts.secs.toFixed(2)} | ${fmtRate(ts.frames, ts.secs, 0)} (${ts.frames} good ICVs) | ${gbit(ts.frames * 1400, ts.secs)} | – | – | 1× |`);
      }
      if (algo === 'gcm') {
        // the same capture through a pipe (standard input: no read-ahead, chunks as they come)
        const piped = runCli(['rx', '--sa', join(DATA, 'bench-sas.yaml'), '--any-direction', '-', '-w', out, '--oob', oob, '--workers', String(NCPU)], undefined, file);
        if ((piped.outcomes.CRYPTO_SUCCESS ?? 0) !== piped.frames) throw new Error(`not every frame decrypted from stdin: ${JSON.stringify(piped.outcomes)}`);
        target(`rx ${name} 1400 B, ${(size / 1e9).toFixed(2)} GB from standard input, ${NCPU} workers: peak RSS < 150 MB`, piped.maxRssMB, 150, (v) => `${v.toFixed(0)} MB`, true);
        console.log(`| ${NCPU}, from standard input (one run) | ${piped.seconds.toFixed(2)} | ${fmtRate(piped.frames, piped.seconds)} | ${gbit(piped.frames * 1400, piped.seconds)} | ${piped.maxRssMB.toFixed(0)} | ${addonWrote(piped)} | – |`);
        // a re-run onto the outputs of the run before (tmpfiles.ts: replaceFile), once those are on
        // disk (untimed sync), as when a user re-runs later: with the 2.6 GB of them still dirty in
        // the page cache, the new run's 2.6 GB went over the kernel's dirty limit (20 % of memory
        // here) and its writes waited for the disk (17.7 s in one bench run, 3.95 s fresh)
        // The old outputs are overwritten in place (tmpfiles.ts reuseOldOutput), against replaced
        // at the end (IPSECOV2_NO_REUSE=1), interleaved, each after its own sync.
        const reruns: [string, NodeJS.ProcessEnv | undefined][] = [['', undefined], [', not reused (IPSECOV2_NO_REUSE=1)', { IPSECOV2_NO_REUSE: '1' }]];
        const byRerun: RunFig[][] = reruns.map(() => []);
        for (let i = 0; i < Math.min(REPS, 3); i++) {
          rotated(reruns.length, i, (k) => {
            spawnSync('sync');
            byRerun[k]!.push(runCli(['rx', '--sa', join(DATA, 'bench-sas.yaml'), '--any-direction', file, '-w', out, '--oob', oob, '--workers', String(NCPU)], reruns[k]![1], undefined, true));
            waitForOldCopies();
          });
        }
        for (let k = 0; k < reruns.length; k++) {
          const runs = byRerun[k]!;
          const secs = median(runs.map((r) => r.seconds));
          const r0 = runs[0]!;
          const ratio = ts ? `${((r0.frames / secs) / (ts.frames / ts.secs)).toFixed(1)}×` : '–';
          console.log(`| ${NCPU}, onto the outputs of the run before${reruns[k]![0]} | ${secs.toFixed(2)} (${runs.map((r) => r.seconds.toFixed(2)).join(', ')}) | ${fmtRate(r0.frames, secs)} | ${gbit(r0.frames * 1400, secs)} | ${Math.max(...runs.map((r) => r.maxRssMB)).toFixed(0)} | ${addonWrote(r0)} | ${ratio} |`);
        }
        // after the table's rows: what bounds the figure
        if (process.platform === 'linux') await printCpuBudget(file, size, ts, out, oob);
      }
    }
  }
  if (ONLY.includes('passthrough') && GB > 0) {
    const frames = Math.ceil((GB * 1e9) / (16 + 14 + 28 + 1400));
    const big = join(DATA, `plain-${GB}GB.pcap`);
    if (!existsSync(big)) {
      process.stderr.write(`generating ${big} (${frames} frames)…\n`);
      writePlain(big, frames, 1400, 9);
    }
    const size = statSync(big).size;
    console.log(`\n## pass-through rx (SA file matching nothing), ${(size / 1e9).toFixed(2)} GB, ${frames} frames`);
    console.log('| workers | median s | frames/s | MB/s | peak RSS MB |');
    console.log('| --- | --- | --- | --- | --- |');
    const pass: [number, NodeJS.ProcessEnv | undefined, string][] = [[0, undefined, ''], [0, { IPSECOV2_BATCH_FRAMES: '256' }, ', read batches of 256 frames'], [NCPU, undefined, '']];
    const byRow: RunFig[][] = pass.map(() => []);
    // the section before left 2.6 GB of outputs to write back: on disk before the first timed run.
    // Three repetitions, rotated, so each row runs once in each place. With two, the inline row
    // measured 2.6-3.6 s against 1.2-2.6 s for the others in five bench runs, while interleaved
    // runs with a `sync` before each measured the two inline rows alike (1.64 and 1.65 s, medians
    // of 7); with three the rows agreed (1.76, 1.77 and 1.69 s).
    spawnSync('sync');
    warmInput(big);
    for (let i = 0; i < Math.min(REPS, 3); i++) rotated(pass.length, i, (k) => { const [w, env] = pass[k]!; byRow[k]!.push(runCli(['rx', '--sa', join(DATA, 'nomatch-sas.yaml'), big, '-w', out, '--oob', oob, '--workers', String(w)], env)); });
    pass.forEach(([w, , note], k) => {
      const runs = byRow[k]!;
      const secs = median(runs.map((r) => r.seconds));
      console.log(`| ${w}${note} | ${secs.toFixed(2)} (${runs.map((r) => r.seconds.toFixed(2)).join(', ')}) | ${fmtRate(runs[0]!.frames, secs)} | ${(size / 1e6 / secs).toFixed(0)} | ${Math.max(...runs.map((r) => r.maxRssMB)).toFixed(0)} |`);
    });
  }
  if (ONLY.includes('adversarial')) {
    // A capture whose records claim huge lengths, and one of garbage after a valid header:
    // memory must stay flat (no allocation of the claimed size).
    const adv = join(DATA, 'adversarial.pcap');
    const fd = openSync(adv, 'w');
    writeSync(fd, pcapHeader(0xffffffff));
    const rec = Buffer.alloc(16 + 64);
    for (let i = 0; i < 100000; i++) {
      rec.writeUInt32LE(i, 0);
      rec.writeUInt32LE(64, 8);
      rec.writeUInt32LE(0x7fffffff, 12);
      writeSync(fd, rec);
    }
    const lie = Buffer.alloc(16);
    lie.writeUInt32LE(0x7ffffff0, 8);
    lie.writeUInt32LE(0x7ffffff0, 12);
    writeSync(fd, lie);
    closeSync(fd);
    clearOutputs();
    const t0 = process.hrtime.bigint();
    const r = spawnSync(BIN, ['rx', '--sa', join(DATA, 'nomatch-sas.yaml'), adv, '-w', out, '--json'], { encoding: 'utf8' });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const j = JSON.parse(r.stderr.trim().split('\n').pop()!) as { framesIn: number; maxRssMB: number; warnings: string[] };
    console.log(`\n## adversarial input (100k frames claiming 2 GB originals, then a 2 GB record length)`);
    console.log(`exit ${r.status}, ${j.framesIn} frames in ${secs.toFixed(2)} s, peak RSS ${j.maxRssMB.toFixed(0)} MB, warnings: ${j.warnings.length}`);
  }
  if (ONLY.includes('bounds')) await bounds(out, oob);
  if (targets.length > 0) {
    console.log('\n## the speed issue\'s targets in this run (medians above)');
    console.log('| target | measured | met | the floor in the same runs (bench/floor.c) |');
    console.log('| --- | --- | --- | --- |');
    for (const t of targets) console.log(`| ${t.what} | ${t.got} | ${t.met ? 'yes' : 'no'} | ${t.floor} |`);
  }
}

await main();
