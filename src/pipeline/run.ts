/**
 * The capture pipeline: read → prepare (main thread) → crypto (inline or worker pool) →
 * process (main thread, input order) → write capture + OOB. Every input frame gives exactly one
 * OOB line and, unless --drop-failed drops it, one output frame, in input order.
 */
import { openCapture, type CaptureReader } from '../capture/reader.js';
import { createCaptureWriter, type CaptureWriter } from '../capture/writer.js';
import { tsToIso, tsToNs } from '../capture/timestamp.js';
import type { CaptureFrame, CaptureInterface } from '../capture/types.js';
import type { SaDocument } from '../sa/model.js';
import { RxBatch, RxEngine, type RxCtx, type RxEnv } from '../offload/rx.js';
import { TxBatch, TxEngine, type TxCtx } from '../offload/tx.js';
import { oobComment, oobJson, type OobRecord } from '../offload/oob.js';
import { RunStats } from '../offload/stats.js';
import { SaTimeline } from './timeline.js';
import { createCryptoRunner, type CryptoRunner } from './pool.js';
import { OutputFile } from './output.js';
import { Progress } from './progress.js';

export interface RunOptions {
  path: 'rx' | 'tx';
  input: string;
  /** Capture output path or '-'; null = no capture output. */
  output: string | null;
  oob: string | null;
  format: 'pcap' | 'pcapng';
  sa: SaDocument;
  inPlace: boolean;
  dropFailed: boolean;
  anyDirection: boolean;
  esn: 'infer' | 'pushed';
  replayWindow: number | null;
  /** 0 = crypto inline on the main thread. */
  workers: number;
  /** tx: hex seed for deterministic IVs, null = random. */
  ivSeed: string | null;
  /** tx: path MTU for LSO. */
  mtu: number;
  progress: boolean;
  /** Frames per batch (fixed, so output never depends on the worker count). */
  batchFrames?: number;
  /** Max frame length accepted by the reader. */
  maxFrameLen?: number;
  /** Called with each OOB record (tests, live status). */
  onRecord?: (r: OobRecord) => void;
}

export interface RunResult {
  stats: RunStats;
  warnings: string[];
  /** Input ended mid-record (exit 1 after writing every complete frame). */
  truncated: boolean;
  /** Stopped early on request (SIGINT/SIGTERM): the outputs hold the frames read so far. */
  interrupted: boolean;
  /** Input records the reader could not deliver (oversize, malformed); each has a warning. */
  skippedRecords: number;
  format: string;
}

/** Process a whole capture. Throws CaptureFormatError / CaptureWriteError for file-level faults. */
export async function runCapture(opts: RunOptions, stop?: { stopped: boolean }): Promise<RunResult> {
  const reader = await openCapture(opts.input, opts.maxFrameLen ? { maxFrameLen: opts.maxFrameLen } : undefined);
  return runReader(reader, opts, stop);
}

/** Process frames from an open reader (files, stdin, live capture). */
export async function runReader(reader: CaptureReader, opts: RunOptions, stop?: { stopped: boolean }): Promise<RunResult> {
  const stats = new RunStats();
  const warnings: string[] = [];
  let writer: CaptureWriter | null = null;
  let oobOut: OutputFile | null = null;
  const runner: CryptoRunner = createCryptoRunner(opts.workers);
  const progress = opts.progress ? new Progress(reader) : null;
  try {
    if (opts.output !== null) writer = await createCaptureWriter(opts.output, { format: opts.format });
    if (opts.oob !== null) oobOut = await OutputFile.open(opts.oob);
    const timeline = new SaTimeline(opts.sa, opts.replayWindow, warnings);
    const wantTs = oobOut !== null || !!opts.onRecord;
    const ifaces = reader.interfaces;
    const env: RxEnv = {
      applyEvents: (f: CaptureFrame) => timeline.apply(f.index, timeline.hasTimeEvents ? tsToNs(ifaces[f.ifId]!, f.tsHi, f.tsLo) : 0n),
      states: () => timeline.states(),
      tsIso: wantTs ? (f: CaptureFrame) => tsToIso(ifaces[f.ifId]!, f.tsHi, f.tsLo) : () => '',
    };
    const outIf: number[] = [];
    const outRawIf: number[] = [];
    const mapIface = (f: CaptureFrame, raw: boolean): number => {
      const map = raw ? outRawIf : outIf;
      let id = map[f.ifId];
      if (id === undefined) {
        const src = ifaces[f.ifId]!;
        const iface: CaptureInterface = raw ? { ...src, linkType: 101 } : src;
        id = writer!.addInterface(iface);
        map[f.ifId] = id;
      }
      return id;
    };
    const emitRecord = (r: OobRecord, f: CaptureFrame, out: Uint8Array, raw: boolean, drop: boolean): void => {
      stats.record(r);
      if (opts.onRecord) opts.onRecord(r);
      if (oobOut) oobOut.write(oobJson(r) + '\n');
      if (drop) { stats.dropped++; return; }
      stats.framesOut++;
      stats.bytesOut += out.length;
      if (writer) writer.writeFrame(mapIface(f, raw), f.tsHi, f.tsLo, out, out.length + Math.max(0, f.origLen - f.data.length), opts.format === 'pcapng' ? oobComment(r) : null);
    };
    const writeExtra = (r: OobRecord, f: CaptureFrame, out: Uint8Array, raw: boolean): void => {
      stats.framesOut++;
      stats.bytesOut += out.length;
      if (writer) writer.writeFrame(mapIface(f, raw), f.tsHi, f.tsLo, out, out.length, opts.format === 'pcapng' ? oobComment(r) : null);
    };
    const linkTypes: number[] = [];
    const syncLinkTypes = (): void => {
      for (let i = linkTypes.length; i < ifaces.length; i++) linkTypes.push(ifaces[i]!.linkType);
    };
    const countIn = (frames: CaptureFrame[]): void => {
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        stats.framesIn++;
        stats.bytesIn += f.data.length;
        stats.linkTypes.add(String(linkTypes[f.ifId] ?? -1));
      }
    };
    const batchFrames = opts.batchFrames ?? 512;
    if (opts.path === 'rx') {
      const engine = new RxEngine(opts.sa.nic, { inPlace: opts.inPlace, anyDirection: opts.anyDirection, esn: opts.esn, replayWindow: opts.replayWindow, natPorts: timeline.natPorts }, env);
      engine.linkTypes = linkTypes;
      const emit = (c: RxCtx): void => emitRecord(c.oob, c.frame, c.out!, c.outRaw, opts.dropFailed && c.failed);
      await pump(reader, runner, batchFrames, stop, syncLinkTypes, countIn, progress,
        () => new RxBatch(),
        (frames, i, b) => engine.prepare(frames, i, b as RxBatch),
        (b) => engine.process(b as RxBatch, emit),
        engine.slotDefs, writer, oobOut);
    } else {
      const engine = new TxEngine(opts.sa, { ivSeed: opts.ivSeed, mtu: opts.mtu }, env, timeline);
      engine.linkTypes = linkTypes;
      const emit = (c: TxCtx): void => {
        const drop = opts.dropFailed && c.failed;
        emitRecord(c.oob, c.frame, c.out!, c.outRaw, drop);
        // LSO: segments 2..n of the same input frame, same timestamp and interface, no OOB line.
        if (!drop) for (let i = 0; i < c.extra.length; i++) writeExtra(c.oob, c.frame, c.extra[i]!, c.outRaw);
      };
      await pump(reader, runner, batchFrames, stop, syncLinkTypes, countIn, progress,
        () => new TxBatch(),
        (frames, i, b) => engine.prepare(frames, i, b as TxBatch),
        (b) => engine.process(b as TxBatch, emit),
        engine.slotDefs, writer, oobOut);
    }
    stats.workerFaults = runner.faults;
    for (const w of reader.warnings) warnings.push(`${opts.input === '-' ? 'stdin' : opts.input}: ${w.message} (byte offset ${w.offset})`);
    if (writer) await writer.close();
    if (oobOut) await oobOut.close();
    return { stats, warnings, truncated: reader.truncated, format: reader.format, interrupted: !!stop?.stopped, skippedRecords: reader.skippedRecords };
  } catch (e) {
    if (writer) await writer.abort().catch(() => undefined);
    if (oobOut) await oobOut.abort().catch(() => undefined);
    throw e;
  } finally {
    progress?.done();
    await runner.close();
    await reader.close().catch(() => undefined);
  }
}

interface AnyBatch {
  jobs: import('../offload/jobs.js').JobBatch;
  n: number;
}

/**
 * The read → prepare → crypto → process loop with a bounded number of batches in flight
 * (back-pressure: a slow writer or slow crypto stops the reading).
 */
async function pump(
  reader: CaptureReader,
  runner: CryptoRunner,
  batchFrames: number,
  stop: { stopped: boolean } | undefined,
  syncLinkTypes: () => void,
  countIn: (f: CaptureFrame[]) => void,
  progress: Progress | null,
  newBatch: () => AnyBatch,
  prepare: (frames: CaptureFrame[], i: number, b: AnyBatch) => number,
  process: (b: AnyBatch) => void,
  slotDefs: ReadonlyMap<number, import('../offload/jobs.js').SlotDef>,
  writer: CaptureWriter | null,
  oobOut: OutputFile | null,
): Promise<void> {
  const free: AnyBatch[] = [];
  const inflight: { batch: AnyBatch; done: Promise<void> }[] = [];
  const depth = runner.depth;
  let seen = 0;
  const framesIn = (): number => seen;
  const finishHead = async (): Promise<void> => {
    const h = inflight.shift()!;
    await h.done;
    process(h.batch);
    free.push(h.batch);
    if (writer) await writer.flush();
    if (oobOut) await oobOut.flush();
  };
  for (;;) {
    if (stop?.stopped) break;
    const frames = await reader.nextBatch(batchFrames);
    if (frames === null) break;
    // A live source with nothing new: finish what is in flight so it reaches the output now.
    if (frames.length === 0) { while (inflight.length) await finishHead(); continue; }
    syncLinkTypes();
    countIn(frames);
    seen += frames.length;
    let i = 0;
    while (i < frames.length) {
      const b = free.pop() ?? newBatch();
      i += prepare(frames, i, b);
      inflight.push({ batch: b, done: runner.run(b.jobs, slotDefs) });
      if (inflight.length >= depth) await finishHead();
    }
    progress?.tick(framesIn());
  }
  while (inflight.length) await finishHead();
}
