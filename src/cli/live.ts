/**
 * `ipsecov2 live`: the receive (or --tx send) path on frames as they arrive from a network
 * interface (libpcap through the optional `cap` package, see capture/live.ts).
 *
 * Output goes out as it is made: the pipeline runs with crypto on the main thread and small
 * batches, the capture writer is flushed after every batch (so `-w - | tshark -r -` shows
 * packets live), and OOB lines are written one per frame as the records are made.
 * Ctrl-C / SIGTERM stops the capture, finishes the frames already received, closes the output
 * as a valid capture, prints the summary and exits 0 (a second signal drops the frames not yet
 * processed; a third exits at once with 130).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { Socket } from 'node:net';
import { openFifoForWriting } from '../capture/writer.js';
import { unlink } from 'node:fs/promises';
import { extname } from 'node:path';
import { loadSaFile } from '../sa/load.js';
import { runReader, type RunOptions, type RunResult } from '../pipeline/run.js';
import { oobJson, CRYPTO_STATUS_NAMES, type OobRecord } from '../offload/oob.js';
import {
  CapUnavailableError,
  LiveCaptureError,
  listInterfaces,
  loadCap,
  openLiveCapture,
  type LiveCaptureReader,
} from '../capture/live.js';
import { linkTypeName } from '../capture/linktypes.js';
import { formatSummary } from './summary.js';
import { style } from './style.js';
import { outputPlace, sameOutputFile } from '../capture/tmpfiles.js';

type Opts = Record<string, string | boolean | undefined>;

/** Frames per pipeline batch in live mode: small, so every frame is written promptly. */
export const LIVE_BATCH_FRAMES = 32;

function fail(msg: string, code: number): number {
  process.stderr.write(style.err(`ipsecov2 live: ${msg}`) + '\n');
  return code;
}

function str(v: string | boolean | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function intOpt(v: string | boolean | undefined, name: string, min: number, max: number): number | undefined | Error {
  if (v === undefined || v === false) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return new Error(`${name}: expected a whole number, got '${String(v)}'`);
  const n = Number(v);
  if (n < min || n > max) return new Error(`${name}: ${n} is out of range (${min}..${max})`);
  return n;
}

async function listCommand(json: boolean): Promise<number> {
  const ifs = await listInterfaces();
  if (json) {
    process.stdout.write(JSON.stringify(ifs) + '\n');
    return 0;
  }
  if (ifs.length === 0) {
    process.stderr.write('ipsecov2 live: libpcap found no capture interfaces (not root? see --help)\n');
    return 0;
  }
  const w = Math.max(...ifs.map((i) => i.name.length));
  ifs.forEach((i, n) => {
    const extra = [i.description, i.addresses.join(' ')].filter((s) => s).join('  ');
    process.stdout.write(`${String(n + 1).padStart(2)}. ${extra ? i.name.padEnd(w) + '  ' + extra : i.name}\n`);
  });
  return 0;
}

/** Per-status counters and the status line on a TTY. */
class LiveStatus {
  readonly counts = new Map<string, number>();
  frames = 0;
  bytes = 0;
  private readonly t0 = Date.now();
  private lastT = Date.now();
  private lastFrames = 0;
  private lastBytes = 0;
  private fps = 0;
  private bps = 0;
  private timer: NodeJS.Timeout | null = null;
  private shown = false;

  constructor(private readonly reader: LiveCaptureReader, private readonly tty: boolean) {}

  record(r: OobRecord): void {
    const k = r.path === 'rx' ? (r.cryptoDone ? CRYPTO_STATUS_NAMES[r.cryptoStatus]! : 'not-processed') : r.txStatus;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  start(): void {
    if (!this.tty) return;
    this.timer = setInterval(() => this.draw(), 250);
  }

  line(): string {
    const now = Date.now();
    const dt = (now - this.lastT) / 1000;
    if (dt >= 0.25) {
      const f = this.reader.frameCount;
      const b = this.reader.bytesRead;
      // exponential smoothing over about a second
      const a = Math.min(1, dt);
      this.fps = this.fps * (1 - a) + ((f - this.lastFrames) / dt) * a;
      this.bps = this.bps * (1 - a) + (((b - this.lastBytes) * 8) / dt) * a;
      this.lastT = now;
      this.lastFrames = f;
      this.lastBytes = b;
    }
    const secs = Math.floor((now - this.t0) / 1000);
    const counts = [...this.counts.entries()].sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v}`).join(', ');
    const drops = this.reader.queueDrops ? `, ${this.reader.queueDrops} dropped (queue full)` : '';
    return `${this.reader.frameCount} frames, ${this.fps.toFixed(0)} fr/s, ${(this.bps / 1e6).toFixed(2)} Mbit/s, ${secs} s${drops}${counts ? ' | ' + counts : ''}`;
  }

  private draw(): void {
    const cols = process.stderr.columns || 120;
    let l = this.line();
    if (l.length > cols - 1) l = l.slice(0, cols - 2) + '…';
    process.stderr.write(`\r\x1b[K${l}`);
    this.shown = true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

/** OOB JSON Lines written one line per frame as records are made (exported for tests). */
export class LiveOob {
  private readonly stream: WriteStream | NodeJS.WriteStream | Socket;
  private error: Error | null = null;

  private constructor(readonly target: string, stream: WriteStream | NodeJS.WriteStream | Socket) {
    this.stream = stream;
    (stream as NodeJS.WritableStream).on('error', (e: Error) => { this.error = e; });
  }

  static async open(target: string): Promise<LiveOob> {
    if (target === '-') return new LiveOob(target, process.stdout);
    if (outputPlace(target).fifo) {
      // as rx's outputs (capture/writer.ts): opened once a program reads it, without a thread
      // blocked in open(), and written from the event loop, so a reader that stops reading holds
      // no thread and the third Ctrl-C still exits at once
      const fd = await openFifoForWriting(target);
      return new LiveOob(target, new Socket({ fd, readable: false, writable: true }));
    }
    const s = createWriteStream(target, { flags: 'w', mode: 0o644 });
    await new Promise<void>((res, rej) => { s.once('open', () => res()); s.once('error', rej); });
    return new LiveOob(target, s);
  }

  write(line: string): void {
    if (this.error) throw this.error;
    this.stream.write(line);
  }

  async close(): Promise<void> {
    if (this.target === '-') return;
    await new Promise<void>((res, rej) => (this.stream as WriteStream).end((e?: Error | null) => (e ? rej(e) : res())));
    if (this.error) throw this.error;
  }

  async abort(): Promise<void> {
    if (this.target === '-') return;
    (this.stream as WriteStream).destroy();
    // a device or a FIFO given as the target (/dev/null) is not ours to remove
    if (!outputPlace(this.target).direct) await unlink(this.target).catch(() => undefined);
  }
}

/**
 * The `live` command. Returns the exit status (0 done, 1 capture/SA/output failure, 2 usage).
 */
export async function liveCommand(o: Opts, g: Record<string, unknown>): Promise<number> {
  const quiet = !!(g.quiet || o.quiet);
  const json = !!(g.json || o.json);

  // Is live capture possible at all? (cap is an optional dependency.)
  try {
    await loadCap();
  } catch (e) {
    if (e instanceof CapUnavailableError) return fail(e.message, 1);
    throw e;
  }

  try {
    if (o.list) return await listCommand(json);
  } catch (e) {
    if (e instanceof LiveCaptureError) return fail(e.message, 1);
    throw e;
  }

  const iface = str(o.interface);
  if (!iface) return fail("no interface: give -i IFACE (see 'ipsecov2 live --list')", 2);
  const saFile = str(o.sa);
  if (!saFile) return fail('no SA file: give --sa SA_FILE', 2);
  const count = intOpt(o.count, '--count', 1, Number.MAX_SAFE_INTEGER);
  if (count instanceof Error) return fail(count.message, 2);
  const workers = intOpt(o.workers, '--workers', 0, 256);
  if (workers instanceof Error) return fail(workers.message, 2);
  const write = str(o.write);
  const oob = str(o.oob);
  if (write === '-' && oob === '-') return fail('--oob - and -w - cannot both write to standard output', 2);
  if (write !== undefined && oob !== undefined && sameOutputFile(oob, write)) return fail(`${oob}: --oob names the same file as the capture output (-w ${write}); choose another`, 2);
  const filter = str(o.filter) ?? '';
  const path: 'rx' | 'tx' = o.tx ? 'tx' : 'rx';
  const format: 'pcap' | 'pcapng' = write !== undefined && extname(write).toLowerCase() === '.pcap' ? 'pcap' : 'pcapng';

  // SA file problems are thrown as SaFileError and reported by main (exit 1).
  const sa = loadSaFile(saFile);
  if (!quiet) for (const w of sa.warnings) process.stderr.write(style.warn(`warning: ${w.file}${w.line !== null ? `:${w.line}` : ''}: ${w.path ? w.path + ': ' : ''}${w.message}`) + '\n');

  let reader: LiveCaptureReader;
  try {
    reader = await openLiveCapture({ device: iface, filter, ...(count !== undefined ? { count } : {}) });
  } catch (e) {
    if (e instanceof LiveCaptureError) return fail(e.message, e.kind === 'filter' ? 2 : 1);
    if (e instanceof CapUnavailableError) return fail(e.message, 1);
    throw e;
  }

  let oobOut: LiveOob | null = null;
  try {
    if (oob !== undefined) oobOut = await LiveOob.open(oob);
  } catch (e) {
    await reader.close();
    throw e;
  }

  const status = new LiveStatus(reader, !quiet && !!process.stderr.isTTY);
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      reader.stop();
    } else if (signals === 2) {
      if (!quiet) process.stderr.write(`\nipsecov2 live: ${sig} again: dropping ${reader.queued} frames not yet processed (once more to exit at once)\n`);
      reader.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const opts: RunOptions = {
    path,
    input: reader.label,
    output: write ?? null,
    oob: null, // written per frame by onRecord below
    format,
    sa,
    inPlace: !!o.inPlace,
    dropFailed: false,
    anyDirection: !!o.anyDirection,
    esn: 'infer',
    replayWindow: null,
    workers: workers ?? 0,
    ivSeed: null,
    mtu: 1500,
    progress: false,
    batchFrames: LIVE_BATCH_FRAMES,
    onRecord: (r: OobRecord) => {
      status.record(r);
      if (oobOut) oobOut.write(oobJson(r) + '\n');
    },
  };

  if (!quiet) {
    const parts = [`listening on ${iface}`, `link type ${linkTypeName(reader.interfaces[0]!.linkType)}`, `${path} path`];
    if (filter) parts.push(`filter '${filter}'`);
    if (count !== undefined) parts.push(`stopping after ${count} frames`);
    process.stderr.write(`ipsecov2 live: ${parts.join(', ')}; Ctrl-C to stop\n`);
  }
  status.start();

  const t0 = process.hrtime.bigint();
  let res: RunResult;
  try {
    res = await runReader(reader, opts);
    if (oobOut) await oobOut.close();
  } catch (e) {
    status.stop();
    if (oobOut) await oobOut.abort();
    throw e;
  } finally {
    status.stop();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await reader.close();
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;

  const warnings = [...res.warnings];
  if (reader.queueDrops) warnings.push(`${reader.queueDrops} frames dropped: the pipeline fell behind the capture (queue full)`);
  if (reader.cutShort) warnings.push(`${reader.cutShort} frames longer than the capture buffer were cut short`);
  if (signals >= 2) warnings.push('stopped by a second signal: frames received but not yet processed were dropped');
  if (!quiet) for (const w of warnings) process.stderr.write(style.warn(`warning: ${w}`) + '\n');
  if (json) {
    process.stderr.write(JSON.stringify({
      path, input: reader.label, interface: iface, filter: filter || null, output: opts.output, oob: oob ?? null, seconds: secs,
      received: reader.received, queueDrops: reader.queueDrops, warnings, ...res.stats.toJSON(),
    }) + '\n');
  } else if (!quiet) {
    process.stderr.write(formatSummary(path, reader.label, opts.output ?? '(no -w)', oob ?? null, res, secs, null) + '\n');
  }
  return 0;
}
