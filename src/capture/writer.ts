/**
 * Capture writers: pcapng (one little-endian section, shb_userappl "ipsecov2") or classic pcap
 * (little-endian, micro- or nanosecond magic).
 *
 * Frames are encoded straight into a large output buffer (1 MiB); a full buffer is handed to the
 * sink as it is and a fresh one started (the sink may still be writing the old one), so
 * `writeFrame` is synchronous and allocation-free per frame. `flush()`, once per batch, hands
 * over the partial buffer and waits for the sink: that is the back-pressure point.
 * File targets are written to a temporary name beside the target and renamed on `close()`, so
 * a failed run never leaves a file that looks complete; with the addon, by a thread of its own
 * (ThreadFileSink), else through libuv's pool (FileSink).
 */
import { constants as fsConstants, openSync } from 'node:fs';
import { open as fsOpen, unlink, type FileHandle } from 'node:fs/promises';
import { Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { NativeWriteThread } from '../crypto/native.js';
import { envFlag } from '../env.js';
import { linkTypeName } from './linktypes.js';
import { growPipe } from './pipe.js';
import { outputPlace, replaceFile, reuseOldOutput, trackTmp, untrackTmp } from './tmpfiles.js';
import { encodePcapHeader, encodePcapRecord, encodePcapRecordHeader, PCAP_HEADER_LEN, PCAP_RECORD_HEADER_LEN } from './pcap.js';
import { type CommentEncoder, encodeEpb, encodeEpbReserved, encodeIdb, encodeShb, epbSize } from './pcapng.js';
import { SEC_FRAC, tsToSecFrac } from './timestamp.js';
import type { CaptureInterface } from './types.js';

/** Options of {@link createCaptureWriter} / {@link createCaptureWriterStream}. */
/** Output writes a batch flush may leave in flight (each up to the buffer size). */
const FLUSH_KEEP_INFLIGHT = 4;

export interface WriterOptions {
  format: 'pcap' | 'pcapng';
  /** Streams only: end the sink on close (default true; never for process.stdout/stderr). */
  end?: boolean;
  /** Output buffer size in bytes (default 1 MiB). */
  bufferSize?: number;
  /** shb_userappl of pcapng output (default "ipsecov2"). */
  userAppl?: string;
  /** Ends the wait for a reader of a FIFO target (see {@link openFileSink}). */
  signal?: AbortSignal;
}

/** Writing the output failed (I/O error, misuse, or a pcap limitation). */
export class CaptureWriteError extends Error {
  readonly code = 'ERR_CAPTURE_WRITE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CaptureWriteError';
  }
}

/** A capture being written. */
export interface CaptureWriter {
  /**
   * Declare an output interface (copies link type, snaplen, name, description, tsresol,
   * tsoffset) and return its id. pcap output holds one link type and one timestamp resolution:
   * a second interface that differs throws CaptureWriteError ("use pcapng").
   * @throws CaptureWriteError
   */
  addInterface(iface: CaptureInterface): number;
  /**
   * Buffered, synchronous append. `tsHi`/`tsLo` are in the interface's units (as read).
   * `comment` becomes a pcapng opt_comment (ignored for pcap); `epbFlags` an epb_flags option.
   * A no-op once `closedByPeer`.
   * @throws CaptureWriteError for an undeclared interface id or after close.
   */
  writeFrame(ifId: number, tsHi: number, tsLo: number, data: Uint8Array, origLen: number, comment: string | null, epbFlags?: number | null): void;
  /**
   * Append a frame whose `capLen` bytes of data the caller writes itself, straight into the
   * output buffer: at `frameBuf[ret .. ret + capLen)`, before any other call on the writer.
   * The comment (pcapng only) is encoded in place. Returns -1 (write nothing) once
   * `closedByPeer`.
   * @throws CaptureWriteError for an undeclared interface id or after close.
   */
  reserveFrame(ifId: number, tsHi: number, tsLo: number, capLen: number, origLen: number, comment: CommentEncoder | null, epbFlags?: number | null): number;
  /** The buffer {@link reserveFrame}'s offset points into (valid until the next writer call). */
  readonly frameBuf: Buffer;
  /**
   * Room for up to `size` bytes of whole pcapng blocks (EPBs of declared interfaces) that the
   * caller writes itself at `frameBuf[ret ..]`, then {@link commitBlocks}, before any other call
   * on the writer. -1 (write nothing) once `closedByPeer`.
   * @throws CaptureWriteError for pcap output or after close.
   */
  reserveBlocks(size: number): number;
  /** Take the bytes written after reserveBlocks, up to `end` (at most the size reserved). */
  commitBlocks(end: number): void;
  /**
   * {@link commitScattered} can be used: pcapng output to a file written by the addon's write
   * thread.
   */
  readonly scatteredWrites: boolean;
  /**
   * After {@link reserveBlocks}: whole pcapng blocks (EPBs of declared interfaces) the caller
   * built partly in `bytes` and partly in `frameBuf` from the reserved offset up to `end`,
   * written from where they are (no copy into one buffer) after everything before, in the order
   * of the n pieces of `iov`: `(offset, length)` pairs, in `bytes`, or at `frameBuf[k]` for an
   * offset -(k + 1); `total` bytes in all. `iov` is read now; `bytes` must stay alive and
   * untouched until `done` runs (written, or dropped after a failure). Only when
   * {@link scatteredWrites}.
   * @throws CaptureWriteError after close, outside the reservation, or when not scatteredWrites.
   */
  commitScattered(end: number, bytes: Uint8Array, iov: Int32Array, n: number, total: number, done: () => void): void;
  /** Hand buffered bytes to the sink and wait for it (back-pressure). Call once per batch. */
  flush(): Promise<void>;
  /** Finish: flush, close, and (file targets) rename the temporary file onto the target. */
  close(): Promise<void>;
  /** Give up: remove the temporary file (file targets); streams just stop being written. */
  abort(): Promise<void>;
  /** Bytes of capture produced so far (including bytes still buffered). */
  readonly bytesWritten: number;
  /** The reader of stdout/the pipe went away (EPIPE); further frames are dropped quietly. */
  readonly closedByPeer: boolean;
  /** What writes the bytes: a thread of the addon's own, libuv's pool (a file), or a stream (`--json` outputWriter). */
  readonly sinkKind: SinkKind;
}

/** See {@link CaptureWriter.sinkKind}. */
export type SinkKind = 'thread' | 'file' | 'stream';

/** Where a writer's bytes go: a file (see {@link openFileSink}) or a stream. */
export interface Sink {
  readonly kind: SinkKind;
  /**
   * Nobody reads the output before it is complete (a file, renamed into place at the end): a
   * batch's flush may leave a part-filled buffer for later instead of writing it now.
   */
  readonly whole?: boolean;
  readonly closedByPeer: boolean;
  readonly error: Error | null;
  /** Write `chunk`; `done` runs once the sink no longer needs its bytes (written, or dropped). */
  write(chunk: Buffer, done: () => void): void;
  /** Write the n pieces of `bytes` (or `aux`) iov gives (`total` bytes), as write() would their concatenation (ThreadFileSink only; see NativeWriteThread.writev). */
  writev?(bytes: Uint8Array, iov: Int32Array, n: number, total: number, aux: Uint8Array | null, done: () => void): void;
  wait(keep?: number): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

async function writeAll(fh: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * A file target's sink: writes go to the temporary file `tmp` (open as `fh`), renamed onto
 * `target` by finish() or removed by abort(), once every write is done.
 */
abstract class TmpFileSink implements Sink {
  abstract readonly kind: SinkKind;
  readonly whole = true;
  readonly closedByPeer = false;
  error: Error | null = null;
  protected position = 0;

  /** `reused`: `fh` is an old output taken over (tmpfiles.ts reuseOldOutput), cut to size at the end. */
  constructor(
    protected readonly fh: FileHandle,
    protected readonly tmp: string,
    protected readonly target: string,
    protected readonly reused = false,
  ) {}

  abstract write(chunk: Buffer, done: () => void): void;
  abstract wait(keep?: number): Promise<void>;
  /** Every write is done: release what writes them. */
  protected stop(): void {}

  async finish(): Promise<void> {
    await this.wait();
    this.stop();
    if (this.error !== null) return;
    if (this.reused) await this.fh.truncate(this.position);
    await this.fh.close();
    await replaceFile(this.tmp, this.target);
    untrackTmp(this.tmp);
  }

  async abort(): Promise<void> {
    await this.wait();
    this.stop();
    await this.fh.close().catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
    untrackTmp(this.tmp);
  }
}

/** A file written through libuv's pool: without the addon's write threads, or with IPSECOV2_NO_WRITE_THREAD=1. */
class FileSink extends TmpFileSink {
  readonly kind = 'file';
  private inflight: Promise<void>[] = [];

  write(chunk: Buffer, done: () => void): void {
    if (this.error !== null) { done(); return; }
    // Explicit positions: concurrent writes land in order whatever order they complete in.
    // Concurrent on purpose: one write at a time (each queued after the one before) stalls,
    // since the next write starts only when the main thread, busy with a batch, sees the last
    // one finish; the backlog then reaches the flush limit and the main thread waits (~0.35 s
    // idle of a 2 GB AES-GCM run against ~0.01 s). Writes taking the whole queue at once (one
    // writev) did worse. Measured (2 GB AES-GCM, 2 workers, 3 interleaved runs each): 3.77-4.13 s
    // concurrent, 4.10-4.40 s one at a time, 4.55-5.22 s whole queue, although the concurrent
    // writes spin on the file's lock in the kernel (~0.1 s of CPU).
    const p = writeAll(this.fh, chunk, this.position).then(done, (e: NodeJS.ErrnoException) => {
      e.path ??= this.target; // the user's file, not the temporary one
      this.error ??= e;
      done();
    });
    this.position += chunk.length;
    this.inflight.push(p);
  }

  /**
   * Back-pressure: wait until at most `keep` writes are still in flight (0 = all done). The
   * pipeline's per-batch flush keeps a few in flight so writing overlaps with processing.
   */
  async wait(keep = 0): Promise<void> {
    while (this.inflight.length > keep) {
      const n = this.inflight.length - keep;
      const list = this.inflight.slice(0, n);
      this.inflight = this.inflight.slice(n);
      await Promise.all(list);
    }
  }
}

/** A write queued on a {@link ThreadFileSink}'s thread: its id, its bytes (kept alive) and its callback. */
interface QueuedWrite {
  id: number;
  chunk: Uint8Array;
  done: () => void;
}

/**
 * A file written by a thread of the addon's own (NativeWriteThread): the writes go out one at a
 * time in the order queued, each pwrite() starting as soon as the one before ends, with no turn
 * of the main thread's event loop between them. FileSink's concurrent writes through libuv's
 * pool contend for the file's lock in the kernel, which the waiting threads spin on
 * (`rwsem_spin_on_owner`: ~10 % of those threads' CPU in a 2 GB run at 2 workers), and one write
 * at a time through libuv stalls (see FileSink). Completed writes are collected when the main
 * thread next writes or waits.
 */
class ThreadFileSink extends TmpFileSink {
  readonly kind = 'thread';
  private nextId = 1;
  /** Writes not yet collected, oldest first (a few: flush() waits when more than a handful are queued). */
  private readonly queue: QueuedWrite[] = [];
  private wake: (() => void) | null = null;

  constructor(
    private readonly thread: NativeWriteThread,
    fh: FileHandle,
    tmp: string,
    target: string,
    reused: boolean,
  ) {
    super(fh, tmp, target, reused);
  }

  /** Make a sink for `fh`, or null without the addon's write threads. */
  static create(fh: FileHandle, tmp: string, target: string, reused: boolean): ThreadFileSink | null {
    let sink: ThreadFileSink | null = null;
    const thread = NativeWriteThread.start(() => sink?.onDone());
    if (thread === null) return null;
    sink = new ThreadFileSink(thread, fh, tmp, target, reused);
    return sink;
  }

  private onDone(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  write(chunk: Buffer, done: () => void): void {
    if (this.error !== null) { done(); return; }
    const id = this.nextId++;
    this.thread.write(id, this.fh.fd, chunk, this.position);
    this.position += chunk.length;
    this.queue.push({ id, chunk, done });
    this.collect();
  }

  writev(bytes: Uint8Array, iov: Int32Array, n: number, total: number, aux: Uint8Array | null, done: () => void): void {
    if (this.error !== null) { done(); return; }
    const id = this.nextId++;
    this.thread.writev(id, this.fh.fd, bytes, iov, n, this.position, aux);
    this.position += total;
    this.queue.push({ id, chunk: bytes, done });
    this.collect();
  }

  /** Hand back the buffers of writes done, in order; note the first failure. */
  private collect(): void {
    const q = this.queue;
    while (q.length > 0 && this.thread.isDone(q[0]!.id)) q.shift()!.done();
    if (this.error === null) {
      const errno = this.thread.firstErrno();
      if (errno !== 0) this.error = writeError(errno, this.target);
    }
  }

  async wait(keep = 0): Promise<void> {
    this.collect();
    while (this.queue.length > keep) {
      const id = this.queue[this.queue.length - 1 - keep]!.id;
      await new Promise<void>((resolve) => {
        if (this.thread.waitFor(id)) resolve();
        else this.wake = resolve;
      });
      this.collect();
    }
  }

  protected override stop(): void {
    this.thread.close();
  }
}

/** A failed write's errno as Node reports a system error (`code`, `errno`, `syscall`), with the target's `path` (not the temporary file's). */
function writeError(errno: number, path: string): Error {
  const [code, text] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, 'write failed'];
  return Object.assign(new Error(`${code}: ${text}, write`), { code, errno: -errno, syscall: 'write', path });
}

class StreamSink implements Sink {
  readonly kind = 'stream';
  closedByPeer = false;
  error: Error | null = null;
  private needDrain = false;
  private wake: (() => void) | null = null;

  /**
   * `path`: the target a stream of our own writes (a device or a FIFO given by name), named in its
   * errors; such a stream is closed by finish() and abort().
   */
  constructor(
    private readonly s: NodeJS.WritableStream,
    private readonly endOnClose: boolean,
    private readonly path: string | null = null,
  ) {
    s.on('error', this.onError);
  }

  private readonly onError = (e: NodeJS.ErrnoException): void => {
    // the reader of a pipe went away (`... | head`): stop quietly, it is not our failure
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') this.closedByPeer = true;
    else {
      if (this.path !== null) e.path ??= this.path;
      this.error ??= e;
    }
    this.wake?.();
  };

  write(chunk: Buffer, done: () => void): void {
    if (this.closedByPeer || this.error !== null) { done(); return; }
    try {
      // the callback runs once the stream is done with the chunk (written or failed), with the
      // error first: the 'error' event comes a tick later, and a finish() in between saw only a
      // destroyed stream (ERR_STREAM_DESTROYED from end(), taken for a reader gone): a full
      // device's ENOSPC was missed now and then, and the run ended with status 0
      if (!this.s.write(chunk, (e?: Error | null) => { if (e) this.onError(e as NodeJS.ErrnoException); done(); })) this.needDrain = true;
    } catch (e) {
      this.onError(e as NodeJS.ErrnoException);
    }
  }

  wait(_keep = 0): Promise<void> {
    // A drain that came before this call (a fast device such as /dev/null) does not come again:
    // ask the stream whether it still needs one (Node's streams say so), not only our flag.
    const still = (this.s as { writableNeedDrain?: boolean }).writableNeedDrain;
    if (still === false) this.needDrain = false;
    if (!this.needDrain || this.closedByPeer || this.error !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const s = this.s;
      const done = (): void => {
        s.removeListener('drain', done);
        s.removeListener('close', done);
        this.wake = null;
        this.needDrain = false;
        resolve();
      };
      this.wake = done;
      s.on('drain', done);
      s.on('close', done);
    });
  }

  async finish(): Promise<void> {
    await this.wait();
    if (this.closedByPeer || this.error !== null) return this.detach();
    const s = this.s;
    await new Promise<void>((resolve) => {
      // the callback of an empty write / of end() runs once everything before it is written
      // with the error, if a write failed (its 'error' event comes only on the next tick)
      const done = (e?: Error | null): void => {
        if (e) this.onError(e as NodeJS.ErrnoException);
        resolve();
      };
      if (this.endOnClose) (s as { end(cb: (e?: Error | null) => void): void }).end(done);
      else s.write(Buffer.alloc(0), done);
    });
    this.detach();
  }

  async abort(): Promise<void> {
    this.closedByPeer = true;
    this.detach();
  }

  private detach(): void {
    // Keep swallowing late errors (EPIPE on stdout; a write of our own stream still in flight
    // failing, ENOSPC on /dev/full): without a listener they are fatal. A stream of our own is
    // closed; someone else's loses only our listener.
    if (this.path !== null) {
      (this.s as NodeJS.WritableStream & { destroy(): void }).destroy();
      return;
    }
    if (this.s !== process.stdout && this.s !== process.stderr) this.s.removeListener('error', this.onError);
  }
}

const DEFAULT_BUFFER = 1 << 20;
const MAX_COMMENT_BYTES = 65535; // an option's length is 16 bits (§3.5)

function truncateUtf8(s: string, maxBytes: number): string {
  const b = Buffer.from(s, 'utf8');
  let n = maxBytes;
  while (n > 0 && (b[n] & 0xc0) === 0x80) n--; // do not cut a UTF-8 sequence
  return b.toString('utf8', 0, n);
}

/** A comment already encoded (the rare over-long case of reserveFrame). */
class BytesComment implements CommentEncoder {
  constructor(private readonly b: Uint8Array) {}
  bound(): number { return this.b.length; }
  write(buf: Buffer, off: number): number { buf.set(this.b, off); return off + this.b.length; }
}

/** An output buffer and the sink writes still reading from it. */
class OutBuf {
  pending = 0;
  /** No longer the writer's current buffer: reusable once `pending` drops to 0. */
  retired = false;
  constructor(readonly buf: Buffer) {}
}

/** Spare output buffers kept for reuse (each bufferSize bytes). */
const SPARE_BUFFERS = FLUSH_KEEP_INFLIGHT + 2;

class Writer implements CaptureWriter {
  bytesWritten = 0;
  private buf: Buffer;
  /** The current buffer's bookkeeping, and retired buffers whose writes have finished. */
  private cur: OutBuf;
  private readonly spare: OutBuf[] = [];
  private start = 0;
  private len = 0;
  private readonly ifaces: CaptureInterface[] = [];
  private readonly pcapng: boolean;
  private pcapHeaderDone = false;
  private closed = false;
  private readonly bufferSize: number;

  constructor(
    private readonly sink: Sink,
    private readonly label: string,
    opts: WriterOptions,
  ) {
    this.pcapng = opts.format === 'pcapng';
    this.bufferSize = opts.bufferSize !== undefined && opts.bufferSize >= 4096 ? opts.bufferSize : DEFAULT_BUFFER;
    this.cur = new OutBuf(Buffer.allocUnsafeSlow(this.bufferSize));
    this.buf = this.cur.buf;
    if (this.pcapng) this.append(encodeShb(opts.userAppl ?? 'ipsecov2'));
  }

  get closedByPeer(): boolean {
    return this.sink.closedByPeer;
  }

  get sinkKind(): SinkKind {
    return this.sink.kind;
  }

  private checkOpen(): void {
    if (this.closed) throw new CaptureWriteError(`${this.label}: the capture writer is closed`);
  }

  /** Make room for `size` bytes at `len`, handing the filled part to the sink if needed. */
  private reserve(size: number): void {
    if (this.len + size <= this.buf.length) return;
    this.emit();
    // the handed-over bytes belong to the sink until it is done with them: take a spare buffer
    // whose writes have all finished (no page faults, no garbage), else a fresh one
    const old = this.cur;
    old.retired = true;
    if (old.pending === 0) this.recycle(old);
    const next = size <= this.bufferSize ? this.spare.pop() : undefined;
    this.cur = next ?? new OutBuf(Buffer.allocUnsafeSlow(Math.max(this.bufferSize, size)));
    this.cur.retired = false;
    this.buf = this.cur.buf;
    this.start = 0;
    this.len = 0;
  }

  private recycle(ob: OutBuf): void {
    if (ob.buf.length === this.bufferSize && this.spare.length < SPARE_BUFFERS) this.spare.push(ob);
  }

  private emit(): void {
    if (this.len > this.start) {
      const ob = this.cur;
      ob.pending++;
      this.sink.write(this.buf.subarray(this.start, this.len), () => {
        if (--ob.pending === 0 && ob.retired) this.recycle(ob);
      });
      this.start = this.len;
    }
  }

  private append(b: Buffer): void {
    this.reserve(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
    this.bytesWritten += b.length;
  }

  private static nano(iface: CaptureInterface): boolean {
    // pcap has micro and nano magics only: any other resolution is converted to nanoseconds
    return iface.tsResol !== 6;
  }

  addInterface(iface: CaptureInterface): number {
    this.checkOpen();
    const copy: CaptureInterface = { ...iface };
    if (this.pcapng) {
      this.append(encodeIdb(copy));
    } else if (this.ifaces.length > 0) {
      const first = this.ifaces[0];
      if (first.linkType !== copy.linkType) {
        throw new CaptureWriteError(
          `pcap output cannot mix link types (${first.linkType} ${linkTypeName(first.linkType)} and ${copy.linkType} ${linkTypeName(copy.linkType)}); use pcapng`,
        );
      }
      if (Writer.nano(first) !== Writer.nano(copy)) {
        throw new CaptureWriteError('pcap output cannot mix timestamp resolutions (microseconds and nanoseconds); use pcapng');
      }
    }
    this.ifaces.push(copy);
    return this.ifaces.length - 1;
  }

  private pcapHeader(): void {
    this.pcapHeaderDone = true;
    // no interface declared at all: an empty Ethernet capture, still a valid file
    const first = this.ifaces[0] ?? { linkType: 1, snapLen: 262144, tsResol: 6 };
    let snap = 0;
    for (const i of this.ifaces) if (i.snapLen > snap) snap = i.snapLen;
    this.reserve(PCAP_HEADER_LEN);
    this.len = encodePcapHeader(this.buf, this.len, first.tsResol !== 6, snap === 0 ? 262144 : snap, first.linkType);
    this.bytesWritten += PCAP_HEADER_LEN;
  }

  writeFrame(ifId: number, tsHi: number, tsLo: number, data: Uint8Array, origLen: number, comment: string | null, epbFlags: number | null = null): void {
    if (this.sink.closedByPeer) return;
    const iface = this.ifaceFor(ifId);
    if (this.pcapng) {
      let cb = -1;
      if (comment !== null) {
        cb = Buffer.byteLength(comment, 'utf8');
        if (cb > MAX_COMMENT_BYTES) {
          comment = truncateUtf8(comment, MAX_COMMENT_BYTES);
          cb = Buffer.byteLength(comment, 'utf8');
        }
      }
      const size = epbSize(data.length, cb, epbFlags !== null);
      this.reserve(size);
      this.len = encodeEpb(this.buf, this.len, size, ifId, tsHi, tsLo, data, origLen, comment, cb, epbFlags);
      this.bytesWritten += size;
      return;
    }
    if (!this.pcapHeaderDone) this.pcapHeader();
    tsToSecFrac(iface, tsHi, tsLo, Writer.nano(iface) ? 9 : 6);
    const size = PCAP_RECORD_HEADER_LEN + data.length;
    this.reserve(size);
    this.len = encodePcapRecord(this.buf, this.len, SEC_FRAC[0], SEC_FRAC[1], data, origLen);
    this.bytesWritten += size;
  }

  /** The declared output interface `ifId`; throws for an undeclared one or a closed writer. */
  private ifaceFor(ifId: number): CaptureInterface {
    const iface = this.ifaces[ifId];
    if (iface === undefined || this.closed) {
      this.checkOpen();
      throw new CaptureWriteError(`${this.label}: frame for undeclared output interface ${ifId} (${this.ifaces.length} declared)`);
    }
    return iface;
  }

  get frameBuf(): Buffer {
    return this.buf;
  }

  reserveBlocks(size: number): number {
    if (this.sink.closedByPeer) return -1;
    this.checkOpen();
    if (!this.pcapng) throw new CaptureWriteError(`${this.label}: reserveBlocks is for pcapng output`);
    this.reserve(size);
    this.blocksEnd = this.len + size;
    return this.len;
  }

  commitBlocks(end: number): void {
    if (end < this.len || end > this.blocksEnd) throw new CaptureWriteError(`${this.label}: commitBlocks(${end}) outside the reserved ${this.len}..${this.blocksEnd}`);
    this.bytesWritten += end - this.len;
    this.len = end;
    this.blocksEnd = -1;
  }
  private blocksEnd = -1;

  get scatteredWrites(): boolean {
    return this.pcapng && this.sink.writev !== undefined;
  }

  commitScattered(end: number, bytes: Uint8Array, iov: Int32Array, n: number, total: number, done: () => void): void {
    if (this.sink.writev === undefined) throw new CaptureWriteError(`${this.label}: commitScattered needs pcapng output to a file written by the addon's thread`);
    if (end < this.len || end > this.blocksEnd) throw new CaptureWriteError(`${this.label}: commitScattered(${end}) outside the reserved ${this.len}..${this.blocksEnd}`);
    this.emit(); // what is buffered before the reservation goes first
    // the pieces in this buffer are written by the writev: it is not reused before that is done
    const ob = this.cur;
    ob.pending++;
    this.sink.writev(bytes, iov, n, total, this.buf, () => {
      if (--ob.pending === 0 && ob.retired) this.recycle(ob);
      done();
    });
    this.start = this.len = end;
    this.blocksEnd = -1;
    this.bytesWritten += total;
  }

  reserveFrame(ifId: number, tsHi: number, tsLo: number, capLen: number, origLen: number, comment: CommentEncoder | null, epbFlags: number | null = null): number {
    if (this.sink.closedByPeer) return -1;
    const iface = this.ifaceFor(ifId);
    if (this.pcapng) {
      let cb = -1;
      if (comment !== null) {
        cb = comment.bound();
        if (cb > MAX_COMMENT_BYTES) {
          // encode aside and cut at a character boundary, as writeFrame does
          const tmp = Buffer.allocUnsafe(cb);
          let n = comment.write(tmp, 0);
          if (n > MAX_COMMENT_BYTES) {
            n = MAX_COMMENT_BYTES;
            while (n > 0 && (tmp[n] & 0xc0) === 0x80) n--;
          }
          comment = new BytesComment(tmp.subarray(0, n));
          cb = n;
        }
      }
      this.reserve(epbSize(capLen, cb, epbFlags !== null));
      const start = this.len;
      this.len = encodeEpbReserved(this.buf, start, ifId, tsHi, tsLo, capLen, origLen, comment, epbFlags);
      this.bytesWritten += this.len - start;
      return start + 28;
    }
    if (!this.pcapHeaderDone) this.pcapHeader();
    tsToSecFrac(iface, tsHi, tsLo, Writer.nano(iface) ? 9 : 6);
    const size = PCAP_RECORD_HEADER_LEN + capLen;
    this.reserve(size);
    const start = this.len;
    this.len = encodePcapRecordHeader(this.buf, start, SEC_FRAC[0], SEC_FRAC[1], capLen, origLen);
    this.len += capLen;
    this.bytesWritten += size;
    return start + PCAP_RECORD_HEADER_LEN;
  }

  private failure(): CaptureWriteError | null {
    const e = this.sink.error;
    if (e === null) return null;
    return new CaptureWriteError(`${this.label}: write failed: ${e.message}`, { cause: e });
  }

  async flush(): Promise<void> {
    // A file: whole buffers only, not each batch's part (one write per MiB instead of about two;
    // queuing a write costs the main thread ~50 us of wall time, mostly waiting for a CPU or the
    // I/O pool's lock). A stream (a pipe to tshark): each batch now, so frames flow during the run.
    if (this.sink.whole !== true) this.emit();
    await this.sink.wait(FLUSH_KEEP_INFLIGHT);
    const err = this.failure();
    if (err !== null) throw err;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.pcapng && !this.pcapHeaderDone) this.pcapHeader();
    this.emit();
    this.closed = true;
    try {
      await this.sink.finish();
    } catch (e) {
      await this.sink.abort();
      throw new CaptureWriteError(`${this.label}: could not finish the output: ${(e as Error).message}`, { cause: e });
    }
    const err = this.failure();
    if (err !== null) {
      await this.sink.abort();
      throw err;
    }
  }

  async abort(): Promise<void> {
    this.closed = true;
    await this.sink.abort();
  }
}

/**
 * Write a capture to a file (via a temporary file renamed on close) or to stdout (`'-'`).
 * @throws Node's system errors if the temporary file cannot be created.
 * @example
 * const w = await createCaptureWriter('out.pcapng', { format: 'pcapng' });
 * const id = w.addInterface(reader.interfaces[0]);
 * w.writeFrame(id, f.tsHi, f.tsLo, f.data, f.origLen, 'CRYPTO_SUCCESS');
 * await w.flush(); await w.close();
 */
export async function createCaptureWriter(target: string, opts: WriterOptions): Promise<CaptureWriter> {
  if (target === '-') {
    growPipe(1);
    return new Writer(new StreamSink(process.stdout, false), 'stdout', opts);
  }
  return new Writer(await openFileSink(target, opts.signal), target, opts);
}

/**
 * A sink for a file target: a temporary file beside it (`.<name>.<pid>.tmp`, removed at exit
 * unless finished), renamed onto the target by `finish()`; beside the file a symbolic link names,
 * and onto that file. An existing target that is not a regular file (/dev/null, a FIFO) is
 * written in place, as a stream (see outputPlace). Written by a thread of the addon's own
 * when there is one (ThreadFileSink), else through libuv's pool (FileSink), or with
 * IPSECOV2_NO_WRITE_THREAD=1.
 * @throws Node's system errors if the temporary file cannot be created.
 */
export async function openFileSink(target: string, signal?: AbortSignal): Promise<Sink> {
  const place = outputPlace(target);
  if (place.direct) {
    if (place.fifo) {
      const fd = await openFifoForWriting(place.path, signal);
      growPipe(fd);
      // written from the event loop (libuv's pipe, non-blocking), as standard output is: a write
      // waiting for a slow reader holds no thread, so Ctrl-C and exit work at any time
      return new StreamSink(new Socket({ fd, readable: false, writable: true }), true, place.path);
    }
    // a device, or a directory (EISDIR)
    const fh = await fsOpen(place.path, 'w');
    growPipe(fh.fd);
    return new StreamSink(fh.createWriteStream(), true, place.path);
  }
  const file = place.path;
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const old = await reuseOldOutput(file, tmp);
  const fh = old ?? await fsOpen(tmp, 'w').catch((e: NodeJS.ErrnoException) => {
    e.path = target; // the user's file (its directory missing, not writable), not the temporary one
    throw e;
  });
  trackTmp(tmp);
  const sink = envFlag('IPSECOV2_NO_WRITE_THREAD') ? null : ThreadFileSink.create(fh, tmp, file, old !== null);
  return sink ?? new FileSink(fh, tmp, file, old !== null);
}

/** How often a FIFO target is tried again while no program has it open for reading. */
const FIFO_RETRY_MS = 50;

/** `signal` ended the wait for a reader of FIFO `path`. */
export class FifoWaitAborted extends Error {
  constructor(readonly path: string) {
    super(`stopped while waiting for a program to read the FIFO ${path}`);
    this.name = 'FifoWaitAborted';
  }
}

/**
 * Open FIFO `path` for writing once a program has it open for reading, as `tcpdump -w FIFO`
 * does, but without a blocking open(): that would hold one of libuv's threads, and Node's exit
 * waits for them, so not even a second Ctrl-C ended the run. A non-blocking open fails (ENXIO)
 * while there is no reader; it is tried again every FIFO_RETRY_MS until one comes or `signal`
 * aborts (FifoWaitAborted).
 */
export async function openFifoForWriting(path: string, signal?: AbortSignal): Promise<number> {
  for (;;) {
    try {
      return openSync(path, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
    }
    if (signal?.aborted) throw new FifoWaitAborted(path);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, FIFO_RETRY_MS);
      signal?.addEventListener('abort', done);
    });
  }
}

/** Write a capture to any writable stream (ended on close unless `opts.end === false`). */
export function createCaptureWriterStream(sink: NodeJS.WritableStream, opts: WriterOptions): CaptureWriter {
  const std = sink === process.stdout || sink === process.stderr;
  return new Writer(new StreamSink(sink, !std && opts.end !== false), std ? 'stdout' : 'stream', opts);
}
