/**
 * A text output file (the OOB JSON Lines) written safely: to a temporary name beside the target,
 * renamed when complete, removed on failure. '-' writes to standard output.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { growPipe } from '../capture/pipe.js';
import { replaceFile, trackTmp, untrackTmp } from '../capture/tmpfiles.js';

/** Bytes gathered before a write to the OS. */
const OUT_BUF = 1 << 20;
/** Written buffers kept for reuse. */
const SPARE_BUFFERS = 4;
/** Buffer writes flush() leaves in flight (back-pressure; their buffers come back as spares). */
const FLUSH_KEEP = 2;

export class OutputFile {
  private readonly stream: WriteStream | NodeJS.WriteStream;
  private readonly tmp: string | null;
  private readonly target: string;
  /** Lines are encoded straight into this buffer (no per-line Buffer, no join). */
  private buf: Buffer = Buffer.allocUnsafeSlow(OUT_BUF);
  private size = 0;
  private error: Error | null = null;
  /** The reader of standard output went away (EPIPE): further lines are dropped quietly. */
  closedByPeer = false;

  private constructor(target: string, stream: WriteStream | NodeJS.WriteStream, tmp: string | null) {
    this.target = target;
    this.stream = stream;
    this.tmp = tmp;
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (tmp === null && (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED')) this.closedByPeer = true;
      else this.error = e;
      this.wake();
    });
  }

  static async open(target: string): Promise<OutputFile> {
    if (target === '-') {
      growPipe(1);
      return new OutputFile(target, process.stdout, null);
    }
    const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
    // A high-water mark of a few output buffers: flush() then waits only when the disk is really
    // behind, so OOB writing overlaps with processing.
    const s = createWriteStream(tmp, { flags: 'w', mode: 0o644, highWaterMark: 4 * OUT_BUF });
    await new Promise<void>((res, rej) => { s.once('open', () => res()); s.once('error', rej); });
    trackTmp(tmp);
    return new OutputFile(target, s, tmp);
  }

  write(line: string): void {
    // A UTF-8 character takes at most 3 bytes per UTF-16 unit.
    if (this.size + line.length * 3 > this.buf.length) {
      this.drain();
      if (line.length * 3 > this.buf.length) { if (!this.closedByPeer) this.stream.write(line); return; }
    }
    this.size += this.buf.write(line, this.size, 'utf8');
  }

  /**
   * Room for `n` bytes written straight into the buffer: returns the offset in `buffer` to
   * write at; then `commit(end)`. No other call in between.
   */
  reserve(n: number): number {
    if (this.size + n > this.buf.length) {
      this.drain();
      if (n > this.buf.length) this.buf = Buffer.allocUnsafeSlow(n);
    }
    return this.size;
  }

  /** The buffer reserve's offset points into. */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Take the bytes written after reserve() up to `end`. */
  commit(end: number): void {
    this.size = end;
  }

  private drain(): void {
    if (this.size === 0) return;
    if (this.error) throw this.error;
    if (this.closedByPeer) { this.size = 0; return; }
    // The stream keeps a reference until written: take a spare buffer it is done with (no page
    // faults, no garbage), else a fresh one; this one comes back when its write completes.
    const full = this.buf;
    this.pending++;
    this.stream.write(full.subarray(0, this.size), () => {
      this.pending--;
      if (full.length === OUT_BUF && this.spare.length < SPARE_BUFFERS) this.spare.push(full);
      this.wake();
    });
    this.buf = this.spare.pop() ?? Buffer.allocUnsafeSlow(OUT_BUF);
    this.size = 0;
  }
  private readonly spare: Buffer[] = [];
  /** Buffers handed to the stream whose write has not called back yet. */
  private pending = 0;
  private waiter: (() => void) | null = null;

  /** Buffer writes not called back yet (after flush(): at most FLUSH_KEEP). */
  get inFlight(): number {
    return this.pending;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /**
   * Back-pressure: wait while the OS side is behind. At most FLUSH_KEEP buffer writes stay in
   * flight: without that wait a main thread busy for many batches in a row never ran the write
   * callbacks that return buffers, and a fresh 1 MiB buffer was made instead each time (138 of
   * them in a 1.6M-frame 64 B run: peak RSS 118 -> 143 MB).
   */
  async flush(): Promise<void> {
    while (this.pending > FLUSH_KEEP && this.error === null && !this.closedByPeer) {
      await new Promise<void>((res) => { this.waiter = res; });
    }
    const s = this.stream as WriteStream;
    if (!s.writableNeedDrain || this.error || this.closedByPeer) return;
    await new Promise<void>((res) => {
      const done = (): void => { s.off('drain', done); s.off('error', done); res(); };
      s.on('drain', done);
      s.on('error', done);
    });
  }

  async close(): Promise<void> {
    this.drain();
    if (this.tmp === null) return;
    await new Promise<void>((res, rej) => (this.stream as WriteStream).end((e?: Error | null) => (e ? rej(e) : res())));
    if (this.error) throw this.error;
    await replaceFile(this.tmp, this.target);
    untrackTmp(this.tmp);
  }

  async abort(): Promise<void> {
    if (this.tmp === null) return;
    (this.stream as WriteStream).destroy();
    await unlink(this.tmp).catch(() => undefined);
    untrackTmp(this.tmp);
  }
}
