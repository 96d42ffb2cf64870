/**
 * The command line (spec/cli.md). `main(argv)` returns the exit status: 0 done, 1 the input or
 * the SA file was bad, 2 usage error. User mistakes get one clear message, never a stack trace.
 */
import { Command, CommanderError, Option } from 'commander';
import { chmodSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { loadSaFile, SaFileError } from '../sa/load.js';
import type { SaDocument } from '../sa/model.js';
import { runCapture, StoppedBeforeCapture, type RunOptions, type RunResult, type StopSignal } from '../pipeline/run.js';
import { CaptureFormatError } from '../capture/reader.js';
import { CaptureWriteError } from '../capture/writer.js';
import { stdinReadDirectly } from '../capture/input.js';
import { sameOutputFile } from '../capture/tmpfiles.js';
import { formatSummary } from './summary.js';
import { caps, saCheck, saExport, saImport } from './sa-commands.js';
import * as cryptoIndex from '../crypto/index.js';
import { liveCommand } from './live.js';
import { defaultThreads } from '../pipeline/pool.js';
import { style } from './style.js';

export const PKG_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** A user-facing error: printed as one line, exit status `code`. */
export class UserError extends Error {
  readonly code: number;
  constructor(message: string, code = 1) {
    super(message);
    this.code = code;
  }
}

interface GlobalOpts {
  quiet?: boolean;
  json?: boolean;
}

interface PathOpts extends GlobalOpts {
  sa: string;
  write?: string;
  read?: string;
  oob?: string;
  format?: 'pcap' | 'pcapng';
  workers?: string;
  inPlace?: boolean;
  dropFailed?: boolean;
  anyDirection?: boolean;
  esn?: 'infer' | 'pushed';
  replayWindow?: string;
  ivSeed?: string;
  mtu?: string;
  nic?: string;
  maxFrame?: string;
}

/** Running from dist/src/bundle/cli.cjs (scripts/bundle.mjs) rather than the separate modules. */
const BUNDLED = /[\\/]dist[\\/]src[\\/]bundle[\\/]/.test(fileURLToPath(import.meta.url));

/** For --version: which code runs, and whether bin/ipsecov2 gave V8 the bundle's code cache. */
function codeInfo(): string {
  if (!BUNDLED) return 'modules';
  const cache = (globalThis as Record<symbol, unknown>)[Symbol.for('ipsecov2.codeCache')];
  return cache === 'used' ? 'bundle, V8 code cache' : cache === 'rejected' ? 'bundle, V8 code cache rejected' : 'bundle';
}

/** Which crypto paths are active (for --version). */
function cryptoBackendInfo(): string {
  const ci = cryptoIndex as unknown as { CRYPTO_BACKEND?: string; desBackend?: () => string; cryptoBackendInfo?: () => string };
  if (ci.cryptoBackendInfo) return ci.cryptoBackendInfo();
  return `crypto: ${ci.CRYPTO_BACKEND ?? 'node:crypto'}; DES: ${ci.desBackend ? ci.desBackend() : 'n/a'}; OpenSSL ${process.versions.openssl}`;
}

/** For --version: what runs the crypto with --workers above 0 (src/pipeline/pool.ts). */
function threadsInfo(): string {
  return defaultThreads() === 'native' ? 'workers: native threads' : 'workers: worker_threads';
}

function version(): string {
  // package.json sits at the package root (dist/src/cli → ../../..).
  try {
    return (JSON.parse(readText(join(PKG_ROOT, 'package.json'))) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

import { readFileSync } from 'node:fs';
function readText(p: string): string {
  return readFileSync(p, 'utf8');
}

function intArg(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UserError(`${name}: expected a whole number, got '${v}'`, 2);
  const n = Number(v);
  if (n < min || n > max) throw new UserError(`${name}: ${n} is out of range (${min}..${max})`, 2);
  return n;
}

/** Decide the output capture path and format (spec/cli.md). */
export function resolveOutput(input: string, write: string | undefined, format: string | undefined, path: 'rx' | 'tx'): { output: string; format: 'pcap' | 'pcapng' } {
  let fmt: 'pcap' | 'pcapng' = format === 'pcap' ? 'pcap' : 'pcapng';
  let out: string;
  if (write !== undefined) {
    out = write;
    if (format === undefined && extname(write).toLowerCase() === '.pcap') fmt = 'pcap';
  } else if (input === '-') {
    if (process.stdout.isTTY) throw new UserError('reading standard input: give -w OUT (or -w - to write a capture to standard output)', 2);
    out = '-';
  } else {
    const ext = extname(input);
    const stem = ext ? basename(input, ext) : basename(input);
    out = join(dirname(input), `${stem}.${path}.${fmt}`);
  }
  if (out !== '-' && input !== '-') {
    let same = false;
    try { same = realpathSync(out) === realpathSync(input); } catch { same = false; }
    if (same) throw new UserError(`${out}: refusing to overwrite the input capture; choose another -w`, 2);
  }
  return { output: out, format: fmt };
}

function loadSa(file: string, nic: string | undefined, quiet: boolean): SaDocument {
  const doc = loadSaFile(file, nic !== undefined ? { nicOverride: nic } : undefined);
  if (!quiet) {
    for (const w of doc.warnings) process.stderr.write(style.warn(`warning: ${formatDiag(w)}`) + '\n');
  }
  return doc;
}

function formatDiag(d: { file: string; line: number | null; col: number | null; path: string; message: string }): string {
  const where = d.line !== null ? `${d.file}:${d.line}:${d.col ?? 1}` : d.file;
  return `${where}: ${d.path ? d.path + ': ' : ''}${d.message}`;
}

async function runPath(path: 'rx' | 'tx', inArg: string | undefined, o: PathOpts, g: GlobalOpts): Promise<number> {
  // Default: the number of CPUs (cli.md). A maximum: the pool starts one worker and grows only while the crypto is the slower side
  // (pipeline/pool.ts), so the CPU count (cli.md) costs nothing where one worker is enough.
  const workers = intArg(o.workers, '--workers', 0, 256) ?? availableParallelism();
  const replayWindow = intArg(o.replayWindow, '--replay-window', 0, 4096) ?? null;
  if (replayWindow !== null && replayWindow !== 0 && replayWindow < 32) throw new UserError('--replay-window: 0 (off) or 32..4096', 2);
  const mtu = intArg(o.mtu, '--mtu', 576, 65535) ?? 1500;
  const maxFrameLen = intArg(o.maxFrame, '--max-frame', 64, 16 << 20);
  if (o.ivSeed !== undefined && !/^(0x)?[0-9a-fA-F]+$/.test(o.ivSeed)) throw new UserError(`--iv-seed: expected hex, got '${o.ivSeed}'`, 2);
  let input = o.read ?? inArg;
  if (input === undefined) {
    if (process.stdin.isTTY) throw new UserError(`${path}: no input capture (give IN, -r IN, or pipe one into standard input)`, 2);
    input = '-';
  }
  if (input !== '-') {
    let st;
    try { st = statSync(input); } catch { throw new UserError(`${input}: no such file`, 1); }
    if (st.isDirectory()) throw new UserError(`${input}: is a directory, not a capture`, 1);
  }
  const { output, format } = resolveOutput(input, o.write, o.format, path);
  if (o.oob !== undefined && o.oob === output && output === '-') throw new UserError('--oob - and -w - cannot both write to standard output', 2);
  if (o.oob !== undefined && sameOutputFile(o.oob, input)) throw new UserError(`${o.oob}: refusing to overwrite the input capture with the OOB records; choose another --oob`, 2);
  if (o.oob !== undefined && sameOutputFile(o.oob, output)) throw new UserError(`${o.oob}: --oob names the same file as the capture output (-w ${output}); choose another`, 2);
  const quiet = !!(g.quiet || o.quiet);
  const json = !!(g.json || o.json);
  const sa = loadSa(o.sa, o.nic, quiet);
  const opts: RunOptions = {
    path,
    input,
    output,
    oob: o.oob ?? null,
    format,
    sa,
    inPlace: !!o.inPlace,
    dropFailed: !!o.dropFailed,
    anyDirection: !!o.anyDirection,
    esn: o.esn ?? 'infer',
    replayWindow,
    workers,
    ivSeed: o.ivSeed ?? null,
    mtu,
    progress: !quiet && !!process.stderr.isTTY,
    ...(maxFrameLen !== undefined ? { maxFrameLen } : {}),
    // this process is ours: its helper threads may stop preempting the main thread
    helperScheduling: true,
    // and its heap: fewer page faults (pipeline/heap.ts)
    heapTuning: true,
  };
  // One output on standard output and one in a file: when the reader of standard output goes
  // away, stop writing there and finish the file (frames and summary counted as usual).
  finishOnEpipe = (output === '-' && opts.oob !== null && opts.oob !== '-') || (opts.oob === '-' && output !== '-');
  const t0 = process.hrtime.bigint();
  // Ctrl-C / SIGTERM: stop reading, finish the frames in flight, close the outputs as valid
  // files (renamed into place), print the summary, exit 130. A second signal exits at once
  // (the temporary files are removed on exit).
  const stop: StopSignal = { stopped: false };
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stop.stopped) process.exit(sig === 'SIGINT' ? 130 : 143);
    stop.stopped = true;
    stop.wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let res: RunResult;
  try {
    res = await runCapture(opts, stop);
  } catch (e) {
    if (!(e instanceof StoppedBeforeCapture)) throw e;
    if (input === '-' && !stdinReadDirectly()) process.stdin.destroy();
    if (!quiet) process.stderr.write(style.warn(`interrupted: ${e.message}`) + '\n');
    return 130;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    finishOnEpipe = false;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const w of res.warnings) process.stderr.write(style.warn(`warning: ${w}`) + '\n');
  if (json) {
    const usage = process.resourceUsage();
    process.stderr.write(JSON.stringify({ path, input, output, oob: opts.oob, seconds: secs, maxRssMB: usage.maxRSS / 1024, minorPageFaults: usage.minorPageFault, truncated: res.truncated, interrupted: res.interrupted, outputClosedByPeer: res.outputClosedByPeer, oobClosedByPeer: res.oobClosedByPeer, skippedRecords: res.skippedRecords, warnings: res.warnings, ...res.stats.toJSON() }) + '\n');
  } else if (!quiet) process.stderr.write(formatSummary(path, input, output, opts.oob, res, secs, replayWindow) + '\n');
  if (res.interrupted) {
    if (input === '-' && !stdinReadDirectly()) process.stdin.destroy();
    if (!quiet) process.stderr.write(style.warn(`interrupted: the outputs hold the first ${res.stats.framesIn} frames`) + '\n');
    return 130;
  }
  return res.truncated || res.skippedRecords > 0 ? 1 : 0;
}

const EXAMPLES_RX = `
Examples:
  $ ipsecov2 rx --sa sas.yaml capture.pcapng                 # writes capture.rx.pcapng
  $ ipsecov2 rx --sa sas.yaml in.pcap -w out.pcapng --oob out.jsonl
  $ tcpdump -U -w - | ipsecov2 rx --sa sas.yaml - -w - | tshark -r -
  $ ipsecov2 rx --sa sas.yaml --in-place --replay-window 32 in.pcap -w nic.pcapng`;

const EXAMPLES_TX = `
Examples:
  $ ipsecov2 tx --sa sas.yaml plain.pcapng -w esp.pcapng --oob esp.jsonl
  $ ipsecov2 tx --sa sas.yaml --iv-seed 00112233 plain.pcap -w golden.pcap   # reproducible IVs (tests only)`;

function addPathOptions(c: Command, path: 'rx' | 'tx'): Command {
  c.requiredOption('--sa <file>', 'SA file (YAML or JSON, see spec/sa-file.md)')
    .option('-r, --read <file>', 'input capture (pcap or pcapng; - = standard input)')
    .option('-w, --write <file>', `output capture (- = standard output; default <IN-stem>.${path}.pcapng beside the input)`)
    .option('--oob <file>', 'write the per-frame OOB record as JSON Lines (- = standard output)')
    .addOption(new Option('--format <fmt>', 'output format (default pcapng; pcap when -w ends in .pcap)').choices(['pcap', 'pcapng']))
    .option('--workers <n>', 'crypto worker threads, at most (0 = all crypto on the main thread; default: the number of CPUs); one starts, more only while the crypto is the slower side, never more than 3')
    .option('--drop-failed', 'drop frames that fail checks (default: keep them unchanged, annotated)')
    .option('--nic <profile>', 'override the SA file\'s NIC profile (full | ndis)')
    .option('--max-frame <bytes>', 'largest frame accepted from the input (default 262144)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'end-of-run summary as one JSON object on stderr');
  if (path === 'rx') {
    c.option('--in-place', 'keep ESP/AH headers and trailers, decrypt in place (the NIC\'s indication form)')
      .option('--any-direction', 'also use SAs marked outbound (captures taken on the wire)')
      .addOption(new Option('--esn <mode>', 'ESN high bits: infer (RFC 4303 App. A) or pushed (only the SA file and its update events)').choices(['infer', 'pushed']).default('infer'))
      .option('--replay-window <n>', 'override every SA\'s anti-replay window (what-if; 0 = off)');
  } else {
    c.option('--iv-seed <hex>', 'derive every IV from this seed, the SA and the sequence number (reproducible golden files; never use on real traffic: IVs become predictable)')
      .option('--mtu <bytes>', 'path MTU for large-send segmentation (default 1500)');
  }
  return c;
}

/**
 * The --version line, made only when it is printed: commander takes the text up front, and making
 * it on every run loaded node:crypto (which a run with the addon never needs) to probe for DES and
 * read package.json. Commander only interpolates it (`${str}`), which calls toString().
 */
const VERSION_LINE = { toString: () => `ipsecov2 ${version()} (${cryptoBackendInfo()}; ${threadsInfo()}; code: ${codeInfo()})` } as unknown as string;

/** Build the commander program (exported for tests). */
export function buildProgram(result: { code: number }): Command {
  const program = new Command();
  program
    .name('ipsecov2')
    .description('Emulates a Windows NDIS IPsec Offload Version 2 NIC over packet captures: verifies and decrypts\nESP/AH (rx) or encrypts (tx) every frame and reports, per frame, what the NIC would indicate.')
    .version(VERSION_LINE, '-V, --version')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--json', 'machine-readable summaries')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (s, write) => write(style.err(s)) });

  const rx = addPathOptions(program.command('rx').alias('decrypt').argument('[IN]', 'input capture (- = standard input)').description('receive path: verify and decrypt ESP/AH, write the decrypted capture and OOB records'), 'rx');
  rx.addHelpText('after', EXAMPLES_RX).action(async (inArg: string | undefined, o: PathOpts) => { result.code = await runPath('rx', inArg, o, program.opts()); });

  const tx = addPathOptions(program.command('tx').alias('encrypt').argument('[IN]', 'input capture of plain traffic (- = standard input)').description('send path: protect outbound traffic with the SA file\'s outbound bundles'), 'tx');
  tx.addHelpText('after', EXAMPLES_TX).action(async (inArg: string | undefined, o: PathOpts) => { result.code = await runPath('tx', inArg, o, program.opts()); });

  program.command('live')
    .description('live capture through the receive (or --tx send) path')
    .option('-i, --interface <name>', 'interface to capture on')
    .option('--list', 'list capture interfaces and exit')
    .option('--sa <file>', 'SA file')
    .option('-w, --write <file>', 'output capture (- = standard output)')
    .option('--oob <file>', 'OOB JSON Lines output')
    .option('-c, --count <n>', 'stop after n frames')
    .option('-f, --filter <bpf>', 'capture filter (BPF)')
    .option('--tx', 'run the send path instead of the receive path')
    .option('--workers <n>', 'crypto worker threads (default 0 for live: lowest latency)')
    .option('--in-place', 'rx: keep headers, decrypt in place')
    .option('--any-direction', 'rx: also use outbound SAs')
    .option('-q, --quiet', 'print nothing but errors')
    .addHelpText('after', '\nExamples:\n  $ sudo ipsecov2 live --list\n  $ sudo ipsecov2 live -i eth0 --sa sas.yaml -f "esp or udp port 4500" -w - | tshark -r -')
    .action(async (o: Record<string, string | boolean | undefined>) => { result.code = await liveCommand(o, program.opts()); });

  program.command('caps')
    .description('the NIC\'s NDIS_IPSEC_OFFLOAD_V2 capability report')
    .option('--sa <file>', 'SA file whose nic section to report')
    .option('--nic <profile>', 'a built-in profile (full | ndis)')
    .option('--json', 'as JSON')
    .addHelpText('after', '\nExamples:\n  $ ipsecov2 caps --nic ndis\n  $ ipsecov2 caps --sa sas.yaml --json')
    .action(async (o: { sa?: string; nic?: string; json?: boolean }) => { result.code = await caps({ ...o, json: !!(o.json || program.opts().json) }); });

  const sa = program.command('sa').description('SA file tools: check, import, export');
  sa.command('check').argument('<SA_FILE>').description('validate an SA file; list bundles, handles, what is offloaded')
    .addHelpText('after', '\nExample:\n  $ ipsecov2 sa check sas.yaml')
    .action(async (file: string) => { result.code = await saCheck(file, {}); });
  sa.command('import').argument('<FILE>')
    .description('write an SA file from ip xfrm state output, a Wireshark esp_sa file, or strongSwan save-keys output')
    .addOption(new Option('--from <kind>', 'input kind').choices(['xfrm', 'wireshark', 'strongswan']).makeOptionMandatory())
    .option('-w, --write <file>', 'output SA file (default: standard output)')
    .addHelpText('after', '\nExamples:\n  $ ip -s xfrm state | ipsecov2 sa import --from xfrm - -w sas.yaml\n  $ ipsecov2 sa import --from wireshark ~/.config/wireshark/esp_sa')
    .action(async (file: string, o: { from: 'xfrm' | 'wireshark' | 'strongswan'; write?: string }) => { result.code = await saImport(o.from, file, o.write); });
  sa.command('export').argument('<SA_FILE>')
    .description('write the SAs in another tool\'s format (Wireshark esp_sa)')
    .addOption(new Option('--to <kind>', 'output kind').choices(['wireshark']).default('wireshark'))
    .option('-w, --write <file>', 'output file (default: standard output)')
    .addHelpText('after', '\nExample:\n  $ ipsecov2 sa export --to wireshark sas.yaml -w ~/.config/wireshark/esp_sa')
    .action(async (file: string, o: { to: 'wireshark'; write?: string }) => { result.code = await saExport(file, o.to, o.write); });

  program.command('demo')
    .description('rx on the bundled example capture (mixed ESP/AH/UDP-encap traffic, tampered and replayed frames)')
    .option('-w, --write <file>', 'where to write the decrypted capture', 'demo.rx.pcapng')
    .option('--oob <file>', 'OOB output', 'demo.rx.jsonl')
    .action(async (o: { write: string; oob: string }) => {
      const dir = join(PKG_ROOT, 'fixtures', 'demo');
      // git does not keep 0600: restore it on our own example so the demo shows no permission
      // warning (a read-only install just keeps the warning).
      try { chmodSync(join(dir, 'demo-sas.yaml'), 0o600); } catch { /* read-only install */ }
      process.stderr.write(`ipsecov2 demo: rx on ${join('fixtures', 'demo', 'demo.pcapng')} with ${join('fixtures', 'demo', 'demo-sas.yaml')}\n`);
      result.code = await runPath('rx', join(dir, 'demo.pcapng'), { sa: join(dir, 'demo-sas.yaml'), write: o.write, oob: o.oob }, program.opts());
      if (result.code === 0) process.stderr.write(`wrote ${o.write} and ${o.oob}; open with: tshark -r ${o.write} -T fields -e frame.number -e frame.comment\n`);
    });
  return program;
}

/** Run the CLI. Returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  installPipeHandlers();
  const result = { code: 0 };
  const program = buildProgram(result);
  program.exitOverride();
  for (const c of program.commands) { c.exitOverride(); for (const s of c.commands) s.exitOverride(); }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (e) {
    return handleError(e);
  }
}

function handleError(e: unknown): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof UserError) { process.stderr.write(style.err(`ipsecov2: ${e.message}`) + '\n'); return e.code; }
  if (e instanceof SaFileError) { process.stderr.write(style.err(e.message) + '\n'); return 1; }
  if (e instanceof CaptureFormatError || e instanceof CaptureWriteError) { process.stderr.write(style.err(`ipsecov2: ${e.message}`) + '\n'); return 1; }
  const err = e as NodeJS.ErrnoException;
  if (err && err.code === 'EPIPE') return 0;
  if (err && typeof err.code === 'string' && /^E[A-Z]+$/.test(err.code)) {
    // File-system errors: one line, naming the path.
    const what = err.code === 'ENOSPC' ? 'no space left on device' : err.code === 'EACCES' ? 'permission denied' : err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EISDIR' ? 'is a directory' : err.code === 'ENOTDIR' ? 'a part of the path is not a directory' : err.message;
    process.stderr.write(style.err(`ipsecov2: ${err.path ?? ''}${err.path ? ': ' : ''}${what}`) + '\n');
    return 1;
  }
  process.stderr.write(style.err(`ipsecov2: internal error: ${(e as Error)?.stack ?? String(e)}`) + '\n');
  return 70;
}

/**
 * A closed pipe on stdout (`| head`) ends the run quietly, unless the run also writes a file
 * (finishOnEpipe): then only the stdout output stops and the file is finished. Temporary files of
 * outputs not finished are removed on exit (capture/tmpfiles.ts).
 */
let finishOnEpipe = false;
function installPipeHandlers(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' && !finishOnEpipe) process.exit(0);
  });
}
