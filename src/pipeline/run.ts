/**
 * The capture pipeline: read → prepare (main thread) → crypto (inline or worker pool) →
 * process (main thread, input order) → write capture + OOB. Every input frame gives exactly one
 * OOB line and, unless --drop-failed drops it, one output frame, in input order.
 */
import { openCapture, type CaptureReader } from '../capture/reader.js';
import { createCaptureWriter, FifoWaitAborted, type CaptureWriter } from '../capture/writer.js';
import { tsToIso, tsToNs } from '../capture/timestamp.js';
import type { CaptureFrame, CaptureInterface } from '../capture/types.js';
import type { SaDocument } from '../sa/model.js';
import { RxBatch, RxEngine, type RxCtx, type RxEnv } from '../offload/rx.js';
import { TxBatch, TxEngine, type TxCtx } from '../offload/tx.js';
import { oobComment, type OobRecord } from '../offload/oob.js';
import { RxOobEncoder } from '../offload/oob-encode.js';
import { createNativeEmit, type NativeEmit } from '../crypto/native.js';
import { RxEmitter } from './rx-emit.js';
import { envFlag } from '../env.js';
import { RunStats } from '../offload/stats.js';
import { SaTimeline } from './timeline.js';
import { createCryptoRunner, type CryptoRunner, type Rebuild } from './pool.js';
import { OutputFile } from './output.js';
import { Progress } from './progress.js';
import { HelperScheduling } from './priority.js';
import { applyHeapTuning } from './heap.js';

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
  /** Frames per read batch, fixed (the output never depends on it); by default by the frames' size (SMALL_FRAME_BATCH). */
  batchFrames?: number;
  /** Max frame length accepted by the reader. */
  maxFrameLen?: number;
  /** Called with each OOB record (tests, live status). */
  onRecord?: (r: OobRecord) => void;
  /**
   * rx: let the addon write common frames' pcapng blocks and OOB lines (default true when it is
   * loaded; IPSECOV2_NO_NATIVE_EMIT=1 also turns it off). False: the JS writers only. Tests may
   * pass the NativeEmit to use.
   */
  nativeEmit?: boolean | NativeEmit;
  /**
   * rx with the addon's writer (nativeEmit) and a pcapng file its write thread writes: build the
   * frames' blocks around their decrypted payloads in the job data and write them from there
   * (pwritev), not copied into the writer's buffer (rx-emit.ts). Default true;
   * IPSECOV2_NO_WRITEV=1 also turns it off. The bytes are the same either way.
   */
  scatteredWrites?: boolean;
  /**
   * Make the process's other threads SCHED_BATCH so their wake-ups do not preempt the main
   * thread (priority.ts; Linux with the addon). For the CLI, which owns its process; a program
   * embedding runCapture keeps its threads as they are unless it asks.
   */
  helperScheduling?: boolean;
  /**
   * Tune glibc's heap for this process before the run's buffers are made (heap.ts: freed memory
   * kept, transparent huge pages; Linux with the addon). For the CLI, like helperScheduling.
   */
  heapTuning?: boolean;
}

/** Set `stopped` (and call `wake`) to end a run early: frames in flight are finished, outputs closed. */
export interface StopSignal {
  stopped: boolean;
  /** Installed by the pipeline: wakes a read that is waiting for input. */
  wake?: () => void;
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
  /**
   * The reader of standard output closed it (EPIPE) while the run went on to finish its file
   * output: the capture (or the OOB lines) written there stopped early.
   */
  outputClosedByPeer: boolean;
  oobClosedByPeer: boolean;
}

/**
 * Frames per read batch, and so at most per crypto batch, when neither RunOptions.batchFrames nor
 * IPSECOV2_BATCH_FRAMES fixes it (thirteenth session; always 1024 before): by the size of the
 * frames just read. Batches of frames under SMALL_FRAME_BYTES on average hold SMALL_FRAME_BATCH
 * frames, others LARGE_FRAME_BATCH; the first read takes SMALL_FRAME_BATCH.
 *
 * Measured (interleaved runs, medians): small frames gain from short batches. 64 B AES-GCM
 * frames, 200k: 256 against 1024 frames a batch 0.358 against 0.401 s inline, 0.376 against
 * 0.408 s at 2 workers (9 runs each; fewer frames held per batch in flight, and V8's young
 * generation grew less: 15 against 26 MB committed). 1400 B frames: no difference beyond the
 * noise (0.522 s both on 200k at 2 workers, 15 runs; 2 GB pass-through inline 1.93/1.92 s at 1024
 * against 1.97/1.89 s at 256, 6 runs each in two orders), so they keep the 1024 they had.
 * The output never depends on the batch size (test/batch-frames.test.ts).
 */
export const SMALL_FRAME_BATCH = 256;
export const LARGE_FRAME_BATCH = 1024;
export const SMALL_FRAME_BYTES = 512;

/** IPSECOV2_BATCH_FRAMES (1..65536) as a fixed batch size, else 0 (by frame size). */
function envBatchFrames(): number {
  const v = process.env.IPSECOV2_BATCH_FRAMES;
  const n = v !== undefined && /^\d+$/.test(v) ? Number(v) : 0;
  return n >= 1 && n <= 65536 ? n : 0;
}

/** Process a whole capture. Throws CaptureFormatError / CaptureWriteError for file-level faults. */
export async function runCapture(opts: RunOptions, stop?: StopSignal): Promise<RunResult> {
  applyHeapTuning(opts.heapTuning === true);
  const open = opts.maxFrameLen ? { maxFrameLen: opts.maxFrameLen } : {};
  if (!stop) return runReader(await openCapture(opts.input, open), opts);
  // A stop before the capture's first bytes (a pipe or FIFO nobody writes yet) ends the wait:
  // there is nothing to write, not even the outputs' headers.
  const ac = new AbortController();
  stop.wake = () => ac.abort();
  let reader: CaptureReader;
  try {
    if (stop.stopped) ac.abort();
    reader = await openCapture(opts.input, { ...open, signal: ac.signal });
  } catch (e) {
    if (stop.stopped) throw new StoppedBeforeCapture(opts.input);
    throw e;
  } finally {
    stop.wake = undefined;
  }
  return runReader(reader, opts, stop);
}

/** A stop (Ctrl-C, SIGTERM) came before the input began a capture: nothing was read or written. */
export class StoppedBeforeCapture extends Error {
  constructor(readonly input: string, message?: string) {
    super(message ?? `stopped before ${input === '-' ? 'standard input' : input} began a capture: no frames read, no outputs written`);
    this.name = 'StoppedBeforeCapture';
  }
}

/** Process frames from an open reader (files, stdin, live capture). */
export async function runReader(reader: CaptureReader, opts: RunOptions, stop?: StopSignal): Promise<RunResult> {
  const stats = new RunStats();
  stats.hugeHeapBytes = Math.max(0, applyHeapTuning(opts.heapTuning === true) ?? 0);
  const warnings: string[] = [];
  let writer: CaptureWriter | null = null;
  let oobOut: OutputFile | null = null;
  const runner: CryptoRunner = createCryptoRunner(opts.workers);
  const sched = new HelperScheduling(opts.helperScheduling === true);
  const progress = opts.progress ? new Progress(reader) : null;
  try {
    // a stop while an output FIFO waits for its reader ends the wait (nothing written yet)
    const opening = new AbortController();
    if (stop) {
      if (stop.stopped) opening.abort();
      stop.wake = () => opening.abort();
    }
    try {
      if (opts.output !== null) {
        writer = await createCaptureWriter(opts.output, { format: opts.format, signal: opening.signal });
        stats.outputWriter = writer.sinkKind;
      }
      if (opts.oob !== null) oobOut = await OutputFile.open(opts.oob, opening.signal);
    } catch (e) {
      if (e instanceof FifoWaitAborted) throw new StoppedBeforeCapture(opts.input, `stopped while waiting for a program to read the FIFO ${e.path}: no frames written`);
      throw e;
    } finally {
      if (stop) stop.wake = undefined;
    }
    const timeline = new SaTimeline(opts.sa, opts.replayWindow, warnings);
    // The OOB line's time is written from the frame by the encoder; the record's text form is
    // only made for onRecord consumers.
    const wantTs = !!opts.onRecord;
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
    const comments = opts.format === 'pcapng';
    const needEnc = oobOut !== null || (writer !== null && comments);
    // rx with pcapng and/or OOB output: common frames are written in runs by the addon
    const native = opts.path === 'rx' && needEnc && (writer === null || comments) && opts.nativeEmit !== false && !envFlag('IPSECOV2_NO_NATIVE_EMIT') ? (typeof opts.nativeEmit === 'object' ? opts.nativeEmit : createNativeEmit()) : null;
    const enc = new RxOobEncoder(native);
    /** Frames whose output the rx engine builds straight into the writer's buffer. */
    let rxEngine: RxEngine | null = null;
    let rxEmit: RxEmitter | null = null;
    /**
     * The JS writers, with the record loaded in `e`: its OOB line; a frame's block (output `out`,
     * or built by the rx engine).
     */
    const writeLineJs = (e: RxOobEncoder): void => {
      const o = oobOut!.reserve(e.lineBound());
      oobOut!.commit(e.writeLine(oobOut!.buffer, o));
    };
    const writeBlockJs = (f: CaptureFrame, ifId: number, out: Uint8Array | null, n: number, rxc: RxCtx | null, e: RxOobEncoder): void => {
      const extra = f.origLen - f.data.length;
      const o = writer!.reserveFrame(ifId, f.tsHi, f.tsLo, n, extra > 0 ? n + extra : n, comments ? e : null);
      if (o < 0) return;
      if (out !== null) writer!.frameBuf.set(out, o);
      else rxEngine!.writeOutput(rxc!, writer!.frameBuf, o);
    };
    const emitRecord = (r: OobRecord, f: CaptureFrame, out: Uint8Array | null, outLen: number, raw: boolean, drop: boolean, rxc: RxCtx | null): void => {
      stats.record(r);
      if (opts.onRecord) opts.onRecord(r);
      if (needEnc) enc.load(r, ifaces[f.ifId]!, f.tsHi, f.tsLo);
      if (rxEmit !== null) {
        // planned: the interface must be declared already (a new one's IDB goes before the run)
        const ifId = writer === null ? 0 : (raw ? outRawIf : outIf)[f.ifId];
        if (out === null && !drop && ifId !== undefined) {
          const extra = f.origLen - f.data.length;
          if (rxEmit.add(rxc!, ifId, outLen, extra > 0 ? outLen + extra : outLen)) {
            stats.framesOut++;
            stats.bytesOut += outLen;
            return;
          }
        }
        rxEmit.flush();
      }
      if (oobOut) writeLineJs(enc);
      if (drop) { stats.dropped++; return; }
      stats.framesOut++;
      stats.bytesOut += outLen;
      if (writer) writeBlockJs(f, mapIface(f, raw), out, outLen, rxc, enc);
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
    /** Count a read batch in; returns its bytes (pump sizes the next read by them). */
    const countIn = (frames: CaptureFrame[]): number => {
      stats.readBatches++;
      // link types counted per run of frames from one interface (one Map update per batch)
      let runIf = -1;
      let run = 0;
      let bytes = 0;
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i]!;
        bytes += f.data.length;
        if (f.ifId !== runIf) {
          if (run > 0) stats.linkTypes.add(String(linkTypes[runIf] ?? -1), run);
          runIf = f.ifId;
          run = 0;
        }
        run++;
      }
      if (run > 0) stats.linkTypes.add(String(linkTypes[runIf] ?? -1), run);
      stats.framesIn += frames.length;
      stats.bytesIn += bytes;
      return bytes;
    };
    // 0: by the size of the frames (SMALL_FRAME_BATCH / LARGE_FRAME_BATCH)
    const batchFrames = opts.batchFrames ?? envBatchFrames();
    stats.batchFrames = batchFrames;
    if (opts.path === 'rx') {
      const engine = new RxEngine(opts.sa.nic, { inPlace: opts.inPlace, anyDirection: opts.anyDirection, esn: opts.esn, replayWindow: opts.replayWindow, natPorts: timeline.natPorts }, env);
      engine.linkTypes = linkTypes;
      engine.deferOutput = true;
      rxEngine = engine;
      if (native !== null) {
        const scattered = writer !== null && writer.scatteredWrites && opts.scatteredWrites !== false && !envFlag('IPSECOV2_NO_WRITEV');
        engine.emitRoom = scattered;
        // a run the addon refuses goes through the JS writers
        rxEmit = new RxEmitter(native, enc, engine, writer, oobOut, ifaces, (c, ifId, outLen, e) => {
          if (oobOut) writeLineJs(e);
          if (writer) writeBlockJs(c.frame, ifId, null, outLen, c, e);
        }, scattered);
      }
      const rxe = rxEmit;
      const emit = (c: RxCtx): void => emitRecord(c.oob, c.frame, c.out, c.out !== null ? c.out.length : c.outLen, c.outRaw, opts.dropFailed && c.failed, c);
      await pump(reader, runner, batchFrames, stop, syncLinkTypes, countIn, progress,
        () => new RxBatch(),
        (frames, i, b) => engine.prepare(frames, i, b as RxBatch),
        (b) => {
          if (rxe === null) { engine.process(b as RxBatch, emit); return; }
          const jobs = (b as RxBatch).jobs;
          rxe.batchData = jobs.data;
          engine.process(b as RxBatch, emit);
          rxe.flush();
          // its job data written from where it is: the batch takes another buffer
          const next = rxe.retire(jobs.data);
          if (next !== null) jobs.data = next;
        },
        engine.slotDefs, writer, oobOut, sched,
        (b) => (data, meta) => engine.rebuildJobs(b as RxBatch, data, meta));
      if (rxe) {
        stats.nativeOutputFrames = rxe.nativeFrames;
        stats.refusedOutputFrames = rxe.refusedFrames;
        stats.scatteredOutputFrames = rxe.scatteredFrames;
      }
    } else {
      const engine = new TxEngine(opts.sa, { ivSeed: opts.ivSeed, mtu: opts.mtu }, env, timeline);
      engine.linkTypes = linkTypes;
      const emit = (c: TxCtx): void => {
        const drop = opts.dropFailed && c.failed;
        emitRecord(c.oob, c.frame, c.out!, c.out!.length, c.outRaw, drop, null);
        // LSO: segments 2..n of the same input frame, same timestamp and interface, no OOB line.
        if (!drop) for (let i = 0; i < c.extra.length; i++) writeExtra(c.oob, c.frame, c.extra[i]!, c.outRaw);
      };
      await pump(reader, runner, batchFrames, stop, syncLinkTypes, countIn, progress,
        () => new TxBatch(),
        (frames, i, b) => engine.prepare(frames, i, b as TxBatch),
        (b) => engine.process(b as TxBatch, emit),
        engine.slotDefs, writer, oobOut, sched);
    }
    stats.workerFaults = runner.faults;
    stats.helperThreadsBatch = sched.batched;
    stats.workersStarted = runner.started;
    stats.workerKind = runner.kind;
    stats.cryptoBatchesInline = runner.batchesInline;
    stats.cryptoBatchesOnWorkers = runner.batchesOnWorkers;
    stats.cryptoBatchesHelped = runner.batchesHelped;
    stats.cryptoJobsHelped = runner.jobsHelped;
    for (const w of reader.warnings) warnings.push(`${opts.input === '-' ? 'stdin' : opts.input}: ${w.message}${w.message.includes('byte offset') ? '' : ` (byte offset ${w.offset})`}`);
    if (writer) await writer.close();
    if (oobOut) await oobOut.close();
    return {
      stats, warnings, truncated: reader.truncated, format: reader.format, interrupted: !!stop?.stopped, skippedRecords: reader.skippedRecords,
      outputClosedByPeer: writer !== null && writer.closedByPeer, oobClosedByPeer: oobOut !== null && oobOut.closedByPeer,
    };
  } catch (e) {
    if (writer) await writer.abort().catch(() => undefined);
    if (oobOut) await oobOut.abort().catch(() => undefined);
    throw e;
  } finally {
    progress?.done();
    await runner.close();
    // After a stop the source may be a pipe that never ends: do not wait for it to close.
    if (stop?.stopped) void reader.close().catch(() => undefined);
    else await reader.close().catch(() => undefined);
  }
}

interface AnyBatch {
  jobs: import('../offload/jobs.js').JobBatch;
  n: number;
}

/** pump: the read is waiting for input (a quiet pipe). */
const STALLED: unique symbol = Symbol('stalled');

/**
 * The read → prepare → crypto → process loop with a bounded number of batches in flight
 * (back-pressure: a slow writer or slow crypto stops the reading).
 */
async function pump(
  reader: CaptureReader,
  runner: CryptoRunner,
  batchFrames: number,
  stop: StopSignal | undefined,
  syncLinkTypes: () => void,
  countIn: (f: CaptureFrame[]) => number,
  progress: Progress | null,
  newBatch: () => AnyBatch,
  prepare: (frames: CaptureFrame[], i: number, b: AnyBatch) => number,
  process: (b: AnyBatch) => void,
  slotDefs: ReadonlyMap<number, import('../offload/jobs.js').SlotDef>,
  writer: CaptureWriter | null,
  oobOut: OutputFile | null,
  sched: HelperScheduling,
  /** How to rewrite a batch's job data for a retry (rx); without it the pool keeps a copy. */
  rebuildOf?: (b: AnyBatch) => Rebuild,
): Promise<void> {
  const free: AnyBatch[] = [];
  /** Batches in flight, with the first frame of each (input memory before it can be reused). */
  const inflight: { batch: AnyBatch; done: PromiseLike<void>; first: CaptureFrame }[] = [];
  /** The frames read and not yet prepared: cur[curAt..]. */
  let cur: CaptureFrame[] = [];
  let curAt = 0;
  // Wake-up for a read waiting on input when a stop is requested. Not Promise.race against one
  // long-lived promise: every race would leave a reaction on it holding that batch's frames (and
  // their input chunks) until the end of the run, so memory would grow with the input.
  let wakeRead: ((v: null) => void) | null = null;
  if (stop) stop.wake = () => { const w = wakeRead; wakeRead = null; w?.(null); };
  // batchFrames 0: by the size of the frames last read (SMALL_FRAME_BATCH)
  let want = batchFrames > 0 ? batchFrames : SMALL_FRAME_BATCH;
  const readBatch = (): Promise<CaptureFrame[] | null> => {
    if (!stop) return reader.nextBatch(want);
    return new Promise<CaptureFrame[] | null>((res, rej) => {
      wakeRead = res;
      reader.nextBatch(want).then(res, rej);
    });
  };
  let seen = 0;
  let lastTake = performance.now();
  let batchesDone = 0;
  const framesIn = (): number => seen;
  const finishHead = async (): Promise<void> => {
    const h = inflight.shift()!;
    // A result already queued arrives at this await in well under a millisecond (the port's
    // message is handled here). Waiting longer than 2 ms, and longer than half the main thread's
    // own work since the last batch, means the crypto is the slower side (pool.ts took).
    const t0 = performance.now();
    await h.done;
    const t1 = performance.now();
    const own = t0 - lastTake;
    runner.took(t1 - t0 > Math.max(2, own / 2), own);
    lastTake = t1;
    // helper threads appear as the run starts (the I/O pool, a second crypto worker): batches 1, 2, 4 .. 64
    if (++batchesDone <= 64 && (batchesDone & (batchesDone - 1)) === 0) sched.apply();
    process(h.batch);
    free.push(h.batch);
    // Every frame before the oldest one still held has been written out: its input chunk can
    // take later input (no fresh pages, no garbage).
    reader.recycleBefore?.(inflight.length > 0 ? inflight[0]!.first : curAt < cur.length ? cur[curAt]! : null);
    if (writer) await writer.flush();
    if (oobOut) await oobOut.flush();
  };
  // Input that may be long in coming (a quiet pipe): the frames in flight are finished while the
  // read waits, so that a live pipe's packets reach the output now, not when the next ones come.
  const canStall = reader.canStall === true;
  let pendingRead: Promise<CaptureFrame[] | null> | null = null;
  let stalled = false;
  let onStalled: (() => void) | null = null;
  if (canStall) reader.onStall = () => { stalled = true; const f = onStalled; onStalled = null; f?.(); };
  for (;;) {
    if (stop?.stopped) break;
    // A stop request must not wait for input that may never come (a quiet pipe).
    if (pendingRead === null) {
      stalled = false;
      pendingRead = readBatch();
    }
    let frames: CaptureFrame[] | null;
    if (canStall && inflight.length > 0) {
      const r = stalled ? STALLED : await Promise.race([pendingRead, new Promise<typeof STALLED>((res) => { onStalled = () => res(STALLED); })]);
      onStalled = null;
      if (r === STALLED) {
        while (inflight.length) await finishHead();
        continue; // the same read, still waiting
      }
      frames = r;
    } else {
      frames = await pendingRead;
    }
    pendingRead = null;
    wakeRead = null;
    if (stop?.stopped) break;
    if (frames === null) break;
    // A live source with nothing new: finish what is in flight so it reaches the output now.
    if (frames.length === 0) { while (inflight.length) await finishHead(); continue; }
    syncLinkTypes();
    const bytes = countIn(frames);
    seen += frames.length;
    if (batchFrames === 0) want = bytes < SMALL_FRAME_BYTES * frames.length ? SMALL_FRAME_BATCH : LARGE_FRAME_BATCH;
    let i = 0;
    cur = frames;
    while (i < frames.length) {
      const b = free.pop() ?? newBatch();
      const first = frames[i]!;
      i += prepare(frames, i, b);
      curAt = i;
      inflight.push({ batch: b, done: runner.run(b.jobs, slotDefs, rebuildOf?.(b)), first });
      // depth 1 after a batch whose crypto ran inline: take it (and any before it) now
      while (inflight.length >= runner.depth) await finishHead();
    }
    progress?.tick(framesIn());
  }
  while (inflight.length) await finishHead();
}
